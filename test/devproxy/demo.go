package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// demoServer is the built-in upstream used when --upstream is empty.
type demoServer struct {
	lis net.Listener
	srv *http.Server
}

func startDemoUpstream() (*demoServer, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &demoServer{lis: lis, srv: &http.Server{Handler: demoHandler(), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = d.srv.Serve(lis) }()
	return d, nil
}

func (d *demoServer) Addr() net.Addr { return d.lis.Addr() }
func (d *demoServer) Close() error   { return d.srv.Close() }

// echo is what the demo upstream answers: the request as it arrived.
type echo struct {
	Method  string              `json:"method"`
	Host    string              `json:"host"`
	Path    string              `json:"path"`
	Query   string              `json:"query,omitempty"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body,omitempty"`
}

// demoHandler behaves like many real applications, CORS mistakes included:
// it refuses OPTIONS (so preflights fail without an edge that answers them)
// and sets a wrong wildcard Access-Control-Allow-Origin on GET /v1/legacy.
func demoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/v1/legacy" {
			w.Header().Set("Access-Control-Allow-Origin", "*")
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		e := echo{
			Method:  r.Method,
			Host:    r.Host,
			Path:    r.URL.Path,
			Query:   r.URL.RawQuery,
			Headers: map[string][]string{},
			Body:    string(body),
		}
		for k, v := range r.Header {
			e.Headers[strings.ToLower(k)] = v
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(e)
	})
}
