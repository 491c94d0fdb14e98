package envoystandin_test

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// corsLike is a small CORS processor in the shape docs/envoy.md#what-the-corsgate-server-does recommends:
// preflights answered with an ImmediateResponse, actual requests decorated in
// the response phase, requests without Origin skip the response phase.
func corsLike(s *procStream) error {
	m := s.recv()
	if m == nil {
		return nil
	}
	if m.GetResponseHeaders() != nil { // a local reply from an earlier stage
		s.send(responseHeadersReply(nil))
		s.drain()
		return nil
	}
	var origin, method, acrm string
	for _, h := range m.GetRequestHeaders().GetHeaders().GetHeaders() {
		switch h.GetKey() {
		case "origin":
			origin = string(h.GetRawValue())
		case ":method":
			method = string(h.GetRawValue())
		case "access-control-request-method":
			acrm = string(h.GetRawValue())
		}
	}
	switch {
	case origin == "":
		s.send(requestHeadersReply(nil, skipResponse()))
	case method == "OPTIONS" && acrm != "":
		s.send(immediate(&extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_NoContent},
			Headers: sets(
				set("access-control-allow-origin", origin, false),
				set("access-control-allow-methods", acrm, false),
				set("vary", "Origin", false),
			),
			Details: "cors preflight",
		}))
	default:
		s.send(requestHeadersReply(nil, nil))
		if s.recv() == nil {
			return nil
		}
		s.send(responseHeadersReply(&extprocv3.HeaderMutation{
			RemoveHeaders: []string{"access-control-allow-origin"},
			SetHeaders: []*corev3.HeaderValueOption{
				set("access-control-allow-origin", origin, false),
				set("vary", "Origin", true),
			},
		}))
	}
	s.drain()
	return nil
}

type proxyEnv struct {
	proxy    *httptest.Server
	sim      *envoystandin.Sim
	proc     *processor
	upstream *atomic.Int32 // requests the upstream received
	log      *lockedWriter
}

func startProxy(t *testing.T, upstream http.Handler, route func(*http.Request) *extprocfilterv3.ExtProcPerRoute) *proxyEnv {
	t.Helper()
	conn, proc := startProcessor(t, corsLike)
	env := &proxyEnv{proc: proc, upstream: new(atomic.Int32), log: &lockedWriter{w: new(bytes.Buffer)}}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.upstream.Add(1)
		upstream.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	env.sim = newSim(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{AllowModeOverride: true}})
	p := envoystandin.NewProxy(env.sim, u)
	p.Route = route
	p.Log = slog.New(slog.NewTextHandler(env.log, nil))
	env.proxy = httptest.NewServer(p)
	t.Cleanup(env.proxy.Close)
	return env
}

func (e *proxyEnv) do(t *testing.T, method, path string, body io.Reader, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.proxy.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "api.example"
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestProxyPreflightAnsweredAtTheEdge(t *testing.T) {
	t.Parallel()
	env := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusMethodNotAllowed)
	}), nil)
	resp := env.do(t, "OPTIONS", "/v1/items", nil, "Origin", "https://app.example", "Access-Control-Request-Method", "PUT")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		resp.Header.Get("Access-Control-Allow-Methods") != "PUT" {
		t.Errorf("got %d %v, want 204 with the CORS headers", resp.StatusCode, resp.Header)
	}
	if n := env.upstream.Load(); n != 0 {
		t.Errorf("upstream got %d requests, want none", n)
	}
	// Proxy logs before it writes the response, so the line is there.
	if log := env.log.String(); !strings.Contains(log, "OPTIONS api.example/v1/items") || !strings.Contains(log, "status=204") ||
		!strings.Contains(log, "details=cors_preflight") {
		t.Errorf("log %q lacks the request line, status or details", log)
	}
}

func TestProxyActualRequest(t *testing.T) {
	t.Parallel()
	seenc := make(chan *http.Request, 1)
	env := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenc <- r.Clone(r.Context())
		w.Header().Set("Access-Control-Allow-Origin", "*") // a wrong upstream CORS header
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Add("Set-Cookie", "a=1; Path=/")
		w.Header().Add("Set-Cookie", "b=2; Path=/")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}), nil)
	resp := env.do(t, "GET", "/v1/items?q=a%20b&x=1", nil, "Origin", "https://app.example", "Proxy-Connection", "keep-alive")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != `{"ok":true}` {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Values("Access-Control-Allow-Origin"); !slices.Equal(got, []string{"https://app.example"}) {
		t.Errorf("Access-Control-Allow-Origin = %q, want only the edge's value", got)
	}
	if got := resp.Header.Get("Vary"); got != "Accept-Encoding,Origin" {
		t.Errorf("Vary = %q, want Accept-Encoding,Origin", got)
	}
	if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"a=1; Path=/", "b=2; Path=/"}) {
		t.Errorf("Set-Cookie = %q, want both cookies, separately", got)
	}
	seen := <-seenc
	if seen.Host != "api.example" || seen.URL.RawQuery != "q=a%20b&x=1" || seen.URL.Path != "/v1/items" {
		t.Errorf("upstream saw Host %q path %q query %q", seen.Host, seen.URL.Path, seen.URL.RawQuery)
	}
	if seen.Header.Get("Origin") != "https://app.example" || seen.Header.Get("Proxy-Connection") != "" {
		t.Errorf("upstream headers %v: want Origin forwarded and no hop-by-hop header", seen.Header)
	}
}

func TestProxyRequestBody(t *testing.T) {
	t.Parallel()
	env := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Content-Length", r.Header.Get("Content-Length"))
		w.Write(bytes.ToUpper(b))
	}), nil)
	resp := env.do(t, "POST", "/echo", strings.NewReader("hello"), "Content-Type", "text/plain")
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "HELLO" || resp.Header.Get("X-Content-Length") != "5" {
		t.Errorf("got %q, upstream content-length %q; want HELLO and 5", body, resp.Header.Get("X-Content-Length"))
	}
}

// Bodies stream: the client reads the first chunk before the upstream has
// written the second (server-sent events, long polls).
func TestProxyStreamsResponses(t *testing.T) {
	t.Parallel()
	second := make(chan struct{})
	env := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-second:
		case <-time.After(liveness):
		}
		io.WriteString(w, "data: second\n\n")
	}), nil)
	resp := env.do(t, "GET", "/events", nil, "Origin", "https://app.example")
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(second)
	rest, _ := io.ReadAll(r)
	if string(rest) != "\ndata: second\n\n" {
		t.Errorf("rest %q", rest)
	}
}

// docs/envoy.md#streams-that-start-with-response-headers: the router's own 503 goes through ext_proc's encode path.
func TestProxyUpstreamDown(t *testing.T) {
	t.Parallel()
	conn, proc := startProcessor(t, answer(passThrough))
	sim := newSim(conn, envoystandin.Config{})
	dead := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(dead.URL)
	dead.Close()
	proxy := httptest.NewServer(envoystandin.NewProxy(sim, u))
	t.Cleanup(proxy.Close)

	resp, err := http.Get(proxy.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.HasPrefix(string(body), "upstream connect error") {
		t.Errorf("got %d %q, want Envoy's 503", resp.StatusCode, body)
	}
	rec := proc.next()
	if len(rec.msgs) != 2 || pairs(t, rec.msgs[1].GetResponseHeaders().GetHeaders())[1] != "503" {
		t.Errorf("ext_proc did not see the 503 in response_headers: %v", rec.msgs)
	}
}

func TestProxyHeadAndRoute(t *testing.T) {
	t.Parallel()
	env := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	}), func(r *http.Request) *extprocfilterv3.ExtProcPerRoute {
		if r.URL.Path == "/healthz" {
			return &extprocfilterv3.ExtProcPerRoute{Override: &extprocfilterv3.ExtProcPerRoute_Disabled{Disabled: true}}
		}
		return nil
	})
	resp := env.do(t, "HEAD", "/x", nil, "Origin", "https://app.example")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("HEAD: got %d %q %v", resp.StatusCode, body, resp.Header)
	}
	before := env.sim.Stats().StreamsStarted
	resp = env.do(t, "GET", "/healthz", nil, "Origin", "https://app.example")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("/healthz: got %d %v, want the upstream answer untouched", resp.StatusCode, resp.Header)
	}
	if after := env.sim.Stats().StreamsStarted; after != before {
		t.Errorf("a disabled route opened a stream")
	}
}

// lockedWriter serialises log writes and reads.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
