//go:build e2e

package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
)

// seen is one request as a server received it.
type seen struct {
	Method string
	Path   string // path and query, as sent
	Header http.Header
	Body   string
	Status int // what the server answered
	// RespHeader is what the server answered with (the edge's recorder
	// only): the closest equivalent of the browser's network events for an
	// engine that reports none.
	RespHeader http.Header
}

// recorder keeps every request a server received, for the assertions on what
// reached it.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (r *recorder) add(s seen) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, s)
}

// reset forgets every request, between engines: each engine's scenarios
// count only their own requests.
func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = nil
}

// matching returns the requests for exactly urlPath (query ignored) with the
// given method; an empty method matches every method.
func (r *recorder) matching(method, urlPath string) []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []seen
	for _, s := range r.reqs {
		p, _, _ := strings.Cut(s.Path, "?")
		if p == urlPath && (method == "" || s.Method == method) {
			out = append(out, s)
		}
	}
	return out
}

// upstreamApp answers as real applications do, CORS mistakes included. What
// it does depends on the request, never on corsgate:
//
//   - OPTIONS under a path segment "auth": 401 with WWW-Authenticate, as apps
//     behind an authentication middleware answer every unauthenticated
//     request, preflights included.
//   - any other OPTIONS: 404, as apps whose router has no OPTIONS routes.
//   - a last path segment "wrong-cors": its own, wrong, CORS headers
//     (Access-Control-Allow-Origin: *, -Allow-Headers: *, -Expose-Headers:
//     x-internal) and Vary: Accept-Encoding, as a framework's default CORS
//     middleware would add.
//   - a last path segment "login": sets a session cookie for cross-site use
//     (SameSite=None; Secure).
//   - a path under /dryrun/words/: the crafted CORS answer of
//     wordsAnswers for its last segment (words_test.go), to provoke each
//     failure class in each browser; the DryRun policy there lets it pass
//     untouched.
//   - everything else: 200 with a JSON echo of the request.
//
// Every answer carries X-Trace-Id (exposed by some policies), X-Internal
// (never exposed) and Cache-Control: no-store, so that no browser cache
// hides a request from the recorder.
func upstreamApp(t *testing.T) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		status := http.StatusOK
		defer func() {
			rec.add(seen{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(body), Status: status})
		}()
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Trace-Id", "trace-"+path.Base(r.URL.Path))
		h.Set("X-Internal", "secret")

		segments := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		last := segments[len(segments)-1]
		if a, ok := wordsAnswers[last]; ok && strings.HasPrefix(r.URL.Path, "/dryrun/words/") {
			preflight := r.Method == http.MethodOptions
			for _, kv := range a.headers(preflight) {
				h.Add(kv[0], kv[1])
			}
			status = a.status(preflight)
			w.WriteHeader(status)
			if !preflight {
				io.WriteString(w, `{"words":"`+last+`"}`)
			}
			return
		}
		if r.Method == http.MethodOptions {
			if slices.Contains(segments, "auth") {
				status = http.StatusUnauthorized
				h.Set("WWW-Authenticate", `Bearer realm="upstream"`)
				http.Error(w, "authentication required", status)
				return
			}
			status = http.StatusNotFound
			http.NotFound(w, r)
			return
		}
		switch last {
		case "wrong-cors":
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Allow-Headers", "*")
			h.Set("Access-Control-Expose-Headers", "x-internal")
			h.Set("Vary", "Accept-Encoding")
		case "login":
			http.SetCookie(w, &http.Cookie{
				Name: "session", Value: "s3cr3t", Path: "/",
				Secure: true, HttpOnly: true, SameSite: http.SameSiteNoneMode,
			})
		}
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(echo{
			Method:    r.Method,
			Path:      r.URL.RequestURI(),
			Origin:    r.Header.Get("Origin"),
			Cookie:    r.Header.Get("Cookie"),
			RequestID: r.Header.Get("X-Request-Id"),
			Body:      string(body),
		})
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

// echo is the upstream's JSON answer, which the page reads back.
type echo struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Origin    string `json:"origin"`
	Cookie    string `json:"cookie"`
	RequestID string `json:"requestId"`
	Body      string `json:"body"`
}
