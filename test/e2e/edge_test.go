//go:build e2e

package e2e_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// startEdge serves https://api.example.test: the Envoy stand-in's front
// proxy (envoystandin.Proxy, the ext_proc filter in front of a router to
// upstream), asking corsgate over conn about every request. The returned
// recorder holds every request that reached the edge, with the status the
// edge answered, so scenarios can count preflights the upstream never saw.
func startEdge(t *testing.T, pki *testPKI, conn *grpc.ClientConn, upstream string, artifacts string) (addr string, rec *recorder) {
	t.Helper()
	up, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	sim := envoystandin.New(conn, envoystandin.Config{
		Filter: &extprocfilterv3.ExternalProcessor{
			// Envoy's default is 200 ms; on a loaded 2-core machine that
			// would fail requests for reasons that have nothing to do with
			// CORS. A timeout is a hang guard here, not an assertion.
			MessageTimeout:    durationpb.New(10 * time.Second),
			AllowModeOverride: true,
		},
	})
	proxy := envoystandin.NewProxy(sim, up)
	logFile, err := os.Create(filepath.Join(artifacts, "edge.log"))
	if err != nil {
		t.Fatal(err)
	}
	proxy.Log = slog.New(slog.NewTextHandler(logFile, nil))

	rec = &recorder{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			rec.add(seen{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Status: sw.status, RespHeader: sw.Header().Clone()})
		}()
		proxy.ServeHTTP(sw, r)
	})
	addr = serveTLS(t, pki, handler)
	t.Cleanup(func() { logFile.Close() })
	return addr, rec
}

// startPages serves the pages the browser opens: every https://*.example.test
// origin other than the API gets the same page, whose script makes the
// fetch() calls (corsProbe) and prints what it saw.
func startPages(t *testing.T, pki *testPKI) string {
	t.Helper()
	return serveTLS(t, pki, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, pageHTML)
	}))
}

// pageHTML is the page at every origin. corsProbe is the only code that
// calls fetch(); it returns what any script on the page could learn.
const pageHTML = `<!doctype html>
<meta charset="utf-8">
<title>corsgate e2e</title>
<link rel="icon" href="data:,">
<style>
body { font: 14px/1.4 monospace; margin: 16px; }
.ok { color: #060; } .blocked { color: #b00; font-weight: bold; }
</style>
<h1 id="origin"></h1>
<p>fetch() calls made by this page's JavaScript, and what it could read:</p>
<div id="log"></div>
<script>
document.getElementById("origin").textContent = "page " + location.origin;
window.corsProbe = async function (spec) {
  const init = { method: spec.method || "GET", headers: spec.headers || {}, mode: "cors" };
  if (spec.body) init.body = spec.body;
  if (spec.credentials) init.credentials = spec.credentials;
  let result;
  try {
    const r = await fetch(spec.url, init);
    const body = await r.text();
    const read = {};
    for (const n of spec.read || []) read[n] = r.headers.get(n);
    result = { ok: r.ok, status: r.status, type: r.type, body: body, read: read, visible: [...r.headers.keys()] };
  } catch (e) {
    result = { error: e.name + ": " + e.message };
  }
  const line = document.createElement("pre");
  line.className = result.error ? "blocked" : "ok";
  line.textContent = init.method + " " + spec.url + " (credentials: " + (init.credentials || "same-origin") + ")\n  => " +
    (result.error ? result.error : result.status + " " + JSON.stringify(result.read) + " " + result.body.slice(0, 100));
  document.getElementById("log").appendChild(line);
  return result;
};
</script>
`

// serveTLS serves h on a random loopback port with the suite's certificate.
func serveTLS(t *testing.T, pki *testPKI, h http.Handler) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: pki.serverConfig(), ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := srv.ServeTLS(lis, "", ""); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serving: %v", err)
		}
	}()
	t.Cleanup(func() { srv.Close() })
	return lis.Addr().String()
}

// edgeClient is a Go HTTPS client that sends every request to the edge, for
// waiting until corsgate serves a changed policy. It is not the judge of any
// scenario: the browser is.
func edgeClient(pki *testPKI, edgeAddr string) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, edgeAddr)
			},
			ForceAttemptHTTP2: true,
		},
	}
}

// statusWriter remembers the status written through it; Unwrap keeps
// http.ResponseController's Flush working for the proxy's streaming.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
