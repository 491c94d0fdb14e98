package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		args    []string
		want    options
		wantErr string
	}{
		{
			desc: "defaults",
			want: options{listen: "127.0.0.1:8000", extproc: "127.0.0.1:9002", messageTimeout: 500 * time.Millisecond, allowModeOverride: true},
		},
		{
			desc: "all flags",
			args: []string{"--listen", ":9000", "--extproc", "corsgate:9002", "--upstream", "http://127.0.0.1:3000",
				"--message-timeout", "1s", "--allow-mode-override=false", "--failure-mode-allow"},
			want: options{listen: ":9000", extproc: "corsgate:9002", upstream: "http://127.0.0.1:3000",
				messageTimeout: time.Second, failureModeAllow: true},
		},
		{desc: "upstream without scheme", args: []string{"--upstream", "127.0.0.1:3000"}, wantErr: "write it like http://127.0.0.1:3000"},
		{desc: "stray argument", args: []string{"serve"}, wantErr: "devproxy takes flags only"},
		{desc: "negative timeout", args: []string{"--message-timeout", "-1s"}, wantErr: "is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseFlags(%q) error = %v, want one containing %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseFlags(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
			}
		})
	}
}

func TestDemoUpstream(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(demoHandler())
	t.Cleanup(srv.Close)
	tests := []struct {
		desc       string
		method     string
		path       string
		wantStatus int
		wantACAO   string
		wantEcho   bool
	}{
		{desc: "OPTIONS is refused, as by many apps", method: "OPTIONS", path: "/v1/items", wantStatus: 405},
		{desc: "legacy endpoint sets a wrong wildcard", method: "GET", path: "/v1/legacy", wantStatus: 200, wantACAO: "*", wantEcho: true},
		{desc: "other requests are echoed", method: "POST", path: "/v1/items?x=1", wantStatus: 200, wantEcho: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, strings.NewReader("hi"))
			req.Header.Set("Origin", "https://app.example")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Access-Control-Allow-Origin") != tc.wantACAO {
				t.Fatalf("got %d ACAO %q, want %d %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), tc.wantStatus, tc.wantACAO)
			}
			if !tc.wantEcho {
				return
			}
			var e echo
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if e.Method != tc.method || !strings.HasPrefix(tc.path, e.Path) || e.Body != "hi" || e.Headers["origin"][0] != "https://app.example" {
				t.Errorf("echo = %+v", e)
			}
		})
	}
}

// preflightProcessor answers preflights at the edge and marks other
// responses, enough to see devproxy run the ext_proc phases.
type preflightProcessor struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (preflightProcessor) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		m, err := s.Recv()
		if err != nil {
			return nil
		}
		var resp *extprocv3.ProcessingResponse
		switch {
		case m.GetRequestHeaders() != nil && header(m.GetRequestHeaders().GetHeaders(), ":method") == "OPTIONS":
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_NoContent},
				Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{
					Header: &corev3.HeaderValue{Key: "access-control-allow-origin", RawValue: []byte("https://app.example")},
					Append: wrapperspb.Bool(false),
				}}},
			}}}
		case m.GetRequestHeaders() != nil:
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}
		default:
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{
				Response: &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{RemoveHeaders: []string{"access-control-allow-origin"}}},
			}}}
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

func header(hm *corev3.HeaderMap, key string) string {
	for _, h := range hm.GetHeaders() {
		if h.GetKey() == key {
			return string(h.GetRawValue())
		}
	}
	return ""
}

// TestRun starts devproxy with the demo upstream against a real gRPC
// ext_proc server, sends requests through it, then shuts it down.
func TestRun(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, preflightProcessor{})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan string, 1)
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--extproc", lis.Addr().String(), "--message-timeout", "10s"}, logs, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("devproxy did not start")
	}

	get := func(method, path string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), method, "http://"+addr+path, nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "PUT")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// The demo upstream would answer 405; the edge answers the preflight.
	if resp := get("OPTIONS", "/v1/items"); resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// The demo upstream's wrong wildcard is removed in the response phase.
	if resp := get("GET", "/v1/legacy"); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("legacy: %d %v", resp.StatusCode, resp.Header)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after shutdown: %v", err)
	}
	if log := logs.String(); !strings.Contains(log, "OPTIONS 127.0.0.1") || !strings.Contains(log, "status=204") {
		t.Errorf("log lacks the request lines:\n%s", log)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
