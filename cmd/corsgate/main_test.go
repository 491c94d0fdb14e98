package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/corsgate/corsgate/test/envoystandin"
	"github.com/corsgate/corsgate/test/envtesting"
)

// These tests run the built binary, as a user would, and drive it through
// the Envoy stand-in over real gRPC on loopback.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "corsgate-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "corsgate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building corsgate: %v\n%s", err, out)
		os.Exit(1)
	}
	// CORSGATE_TEST_BINARY runs the tests against another build, e.g. an
	// earlier commit's, to measure what a fix changed.
	if other := os.Getenv("CORSGATE_TEST_BINARY"); other != "" {
		binary = other
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string { return envtesting.FreeAddr(t) }

type server struct {
	cmd    *exec.Cmd
	addr   string
	output *bytes.Buffer
	// mu guards output when the process writes through guarded(): the
	// test may read the output while the process runs.
	mu sync.Mutex
}

// guarded is a writer into s.output under s.mu.
func (s *server) guarded() io.Writer { return guardedWriter{s} }

type guardedWriter struct{ s *server }

func (w guardedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.output.Write(p)
}

// text is the output so far.
func (s *server) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.output.String()
}

// start runs corsgate on policies and waits for gRPC health to say SERVING.
func start(t *testing.T, policies string) *server {
	t.Helper()
	s := &server{addr: freePort(t), output: &bytes.Buffer{}}
	s.cmd = exec.Command(binary, "--policies", policies, "--grpc-bind-address", s.addr,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	s.cmd.Stdout, s.cmd.Stderr = s.guarded(), s.guarded()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	})
	waitServing(t, s)
	return s
}

// waitServing waits for gRPC health to report the ext_proc service SERVING.
func waitServing(t *testing.T, s *server) {
	t.Helper()
	hc := healthpb.NewHealthClient(dial(t, s.addr))
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "envoy.service.ext_proc.v3.ExternalProcessor"})
		if err == nil && r.Status == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("corsgate never became SERVING (last error %v); output:\n%s", err, s.text())
		}
	}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// envoy is the stand-in with Envoy's recommended filter config (examples/envoy):
// allow_mode_override on. The message timeout is generous because the test
// machine may be loaded; nothing here measures time.
func envoy(t *testing.T, addr string) *envoystandin.Sim {
	return envoystandin.New(dial(t, addr), envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{
		AllowModeOverride: true, MessageTimeout: durationpb.New(10 * time.Second),
	}})
}

// preflightStatus sends a preflight through the stand-in and returns the
// status the browser would see.
func preflightStatus(t *testing.T, sim *envoystandin.Sim, authority, origin, method string) int {
	t.Helper()
	res, err := sim.Do(context.Background(), envoystandin.Request{Method: "OPTIONS", Authority: authority, Path: "/",
		Headers: envoystandin.NewHeaders("origin", origin, "access-control-request-method", method)}, upstream)
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

// upstream answers like many real apps: 405 to OPTIONS, and its own wrong
// CORS headers.
var upstream = envoystandin.Upstream{Handler: func(_ context.Context, r *envoystandin.UpstreamRequest) (*envoystandin.UpstreamResponse, error) {
	if r.Method == "OPTIONS" {
		return &envoystandin.UpstreamResponse{Status: 405, Headers: envoystandin.NewHeaders("access-control-allow-origin", "*")}, nil
	}
	return &envoystandin.UpstreamResponse{Status: 200, Headers: envoystandin.NewHeaders(
		"content-type", "application/json", "x-trace-id", "t-1", "x-internal", "i",
		"access-control-allow-origin", "*", "access-control-allow-methods", "DELETE", "vary", "Accept-Encoding"),
		Body: []byte(`{}`)}, nil
}}

func TestDesignExamplesThroughTheBinary(t *testing.T) {
	t.Parallel()
	s := start(t, "testdata/design.yaml")
	sim := envoy(t, s.addr)
	type want struct {
		status   int
		upstream bool              // did the request reach the upstream
		headers  map[string]string // exact values; "" means absent
	}
	absentCORS := map[string]string{"access-control-allow-origin": "", "access-control-allow-credentials": "", "access-control-allow-methods": ""}
	cases := []struct {
		desc      string
		authority string
		method    string
		path      string
		headers   []string
		want      want
	}{
		{desc: "preflight answered at the edge", authority: "api.example.com", method: "OPTIONS", path: "/v2/orders",
			headers: []string{"origin", "https://app.example.com", "access-control-request-method", "PUT", "access-control-request-headers", "content-type,x-request-id"},
			want: want{status: 204, headers: map[string]string{"access-control-allow-origin": "https://app.example.com", "access-control-allow-credentials": "true",
				"access-control-allow-methods": "PUT", "access-control-allow-headers": "content-type,x-request-id", "access-control-max-age": "600"}}},
		{desc: "preflight from a disallowed origin: 403, no CORS headers, upstream untouched", authority: "api.example.com", method: "OPTIONS", path: "/v2/orders",
			headers: []string{"origin", "https://evil.example", "access-control-request-method", "PUT"},
			want:    want{status: 403, headers: absentCORS}},
		{desc: "preflight for a header not allowed", authority: "api.example.com", method: "OPTIONS", path: "/v2/orders",
			headers: []string{"origin", "https://app.example.com", "access-control-request-method", "PUT", "access-control-request-headers", "x-foo"},
			want:    want{status: 403, headers: absentCORS}},
		{desc: "actual request: edge headers replace the upstream's, Vary merged", authority: "api.example.com", method: "GET", path: "/v2/orders?page=2",
			headers: []string{"origin", "https://x.tenants.example.com"},
			want: want{status: 200, upstream: true, headers: map[string]string{"access-control-allow-origin": "https://x.tenants.example.com",
				"access-control-allow-credentials": "true", "access-control-expose-headers": "x-trace-id", "access-control-allow-methods": "", "vary": "Accept-Encoding, Origin"}}},
		{desc: "actual request from a denied origin: no CORS header at all", authority: "api.example.com", method: "GET", path: "/v2/orders",
			headers: []string{"origin", "https://evil.example"},
			want:    want{status: 200, upstream: true, headers: map[string]string{"access-control-allow-origin": "", "access-control-allow-methods": "", "vary": "Accept-Encoding, Origin"}}},
		{desc: "no Origin under a policy: Vary Origin, upstream CORS headers removed", authority: "api.example.com", method: "GET", path: "/v2/orders",
			want: want{status: 200, upstream: true, headers: map[string]string{"access-control-allow-origin": "", "vary": "Accept-Encoding, Origin"}}},
		{desc: "longest prefix: /v2/public is public", authority: "API.example.com:443", method: "OPTIONS", path: "/v2/public/items",
			headers: []string{"origin", "https://anyone.example", "access-control-request-method", "GET", "access-control-request-headers", "x-anything"},
			want:    want{status: 204, headers: map[string]string{"access-control-allow-origin": "*", "access-control-allow-headers": "*", "access-control-allow-credentials": ""}}},
		{desc: "segment-wise prefix: /v2publicity is not /v2/public nor /v2", authority: "api.example.com", method: "GET", path: "/v2publicity",
			headers: []string{"origin", "https://app.example.com"},
			// falls to the wildcard host policy, which exposes the upstream's own headers
			want: want{status: 200, upstream: true, headers: map[string]string{"access-control-allow-origin": "https://app.example.com", "access-control-expose-headers": "x-trace-id, x-internal, vary"}}},
		{desc: "wildcard host, credentialed exposeHeaders * lists upstream names", authority: "www.example.com", method: "GET", path: "/",
			headers: []string{"origin", "https://app.example.com"},
			want: want{status: 200, upstream: true, headers: map[string]string{"access-control-allow-origin": "https://app.example.com", "access-control-allow-credentials": "true",
				"access-control-expose-headers": "x-trace-id, x-internal, vary"}}},
		{desc: "private network access asked and allowed", authority: "www.example.com", method: "OPTIONS", path: "/",
			headers: []string{"origin", "https://app.example.com", "access-control-request-method", "GET", "access-control-request-private-network", "true"},
			want:    want{status: 204, headers: map[string]string{"access-control-allow-private-network": "true", "access-control-allow-origin": "https://app.example.com"}}},
		{desc: "wildcard host never matches the apex: no policy, untouched", authority: "example.com", method: "GET", path: "/",
			headers: []string{"origin", "https://app.example.com"},
			want:    want{status: 200, upstream: true, headers: map[string]string{"access-control-allow-origin": "*", "access-control-allow-methods": "DELETE", "vary": "Accept-Encoding"}}},
		{desc: "null listed literally is reflected", authority: "legacy.example.org", method: "GET", path: "/",
			headers: []string{"origin", "null"},
			want:    want{status: 200, upstream: true, headers: map[string]string{"access-control-allow-origin": "null"}}},
		{desc: "Forward: a denied preflight reaches the upstream untouched", authority: "legacy.example.org", method: "OPTIONS", path: "/",
			headers: []string{"origin", "https://evil.example", "access-control-request-method", "PUT"},
			want:    want{status: 405, upstream: true, headers: map[string]string{"access-control-allow-origin": "*"}}},
		{desc: "DryRun changes nothing", authority: "trial.example.org", method: "OPTIONS", path: "/",
			headers: []string{"origin", "https://app.example.com", "access-control-request-method", "PUT"},
			want:    want{status: 405, upstream: true, headers: map[string]string{"access-control-allow-origin": "*"}}},
		{desc: "DryRun leaves actual responses alone", authority: "trial.example.org", method: "GET", path: "/",
			headers: []string{"origin", "https://app.example.com"},
			want:    want{status: 200, upstream: true, headers: map[string]string{"access-control-allow-origin": "*", "access-control-allow-methods": "DELETE", "vary": "Accept-Encoding"}}},
		{desc: "malformed origin (two joined) is never allowed", authority: "api.example.com", method: "GET", path: "/v2",
			headers: []string{"origin", "https://app.example.com", "origin", "https://evil.example"},
			want:    want{status: 200, upstream: true, headers: map[string]string{"access-control-allow-origin": ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			res, err := sim.Do(context.Background(), envoystandin.Request{Method: tc.method, Authority: tc.authority, Path: tc.path,
				Headers: envoystandin.NewHeaders(tc.headers...)}, upstream)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.want.status || res.UpstreamReached != tc.want.upstream {
				t.Errorf("status %d, upstream reached %v; want %d, %v (details %q)", res.Status, res.UpstreamReached, tc.want.status, tc.want.upstream, res.Details)
			}
			for name, v := range tc.want.headers {
				if got := res.Headers.Values(name); (v == "" && len(got) != 0) || (v != "" && (len(got) != 1 || got[0] != v)) {
					t.Errorf("%s = %q, want %q (all: %s)", name, got, v, res.Headers)
				}
			}
		})
	}
}

func TestInvalidPoliciesAtStartup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\nmetadata: {name: api}\nspec:\n  allowOrigins: [\"*\"]\n  allowCredentials: true\n"), 0o644)
	out, err := exec.Command(binary, "--policies", dir, "--grpc-bind-address", freePort(t), "--metrics-bind-address", "0", "--health-probe-bind-address", "0").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("exit: %v; want a non-zero exit", err)
	}
	for _, want := range []string{bad, "CorsPolicy default/api", "spec.allowOrigins[0]", "list the origins you trust"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestReloadAndGracefulStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	policy := "apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\nmetadata: {name: api}\nspec:\n  allowOrigins: [%q]\n"
	os.WriteFile(file, []byte(fmt.Sprintf(policy, "https://one.example")), 0o644)
	s := start(t, dir)
	sim := envoy(t, s.addr)
	preflight := func(origin string) int { return preflightStatus(t, sim, "a.example", origin, "POST") }
	if got := preflight("https://two.example"); got != 403 {
		t.Fatalf("before the edit: %d, want 403", got)
	}
	os.WriteFile(file, []byte(fmt.Sprintf(policy, "https://two.example")), 0o644)
	for deadline := time.Now().Add(30 * time.Second); preflight("https://two.example") != 204; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("edit never served; output:\n%s", s.text())
		}
	}
	// A broken edit keeps the last good policy and says why.
	os.WriteFile(file, []byte(fmt.Sprintf(policy, "https://TWO.example")), 0o644)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(s.text(), "last good"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("broken edit not reported; output:\n%s", s.text())
		}
	}
	if got := preflight("https://two.example"); got != 204 {
		t.Errorf("after a broken edit: %d, want the last good policy (204)", got)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("SIGTERM: exit %v, want a clean exit; output:\n%s", err, s.text())
	}
}
