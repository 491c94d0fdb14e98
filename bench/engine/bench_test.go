package engine_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkEngine decides one request into response headers, without HTTP
// plumbing: Policy.Decide for corsgate; for the references, their middleware
// over a prepared request and a reused writer (see fakeWriter), around a
// handler that does nothing. One goroutine, so ns/op is CPU time per
// decision.
//
//	go test -run '^$' -bench Engine -benchmem -count 6 ./bench/engine/ | benchstat -col /mw -
func BenchmarkEngine(b *testing.B) {
	for _, c := range cases {
		b.Run("mw=corsgate/"+c.name, func(b *testing.B) {
			p, err := c.corsgatePolicy()
			if err != nil {
				b.Fatal(err)
			}
			req := c.corsgateRequest()
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				_ = p.Decide(&req)
			}
			cpu.report(b)
		})
		for _, mw := range middlewares[1:] {
			b.Run("mw="+mw.name+"/"+c.name, func(b *testing.B) {
				h, err := mw.wrap(c, nothing)
				if err != nil {
					b.Fatal(err)
				}
				req := c.httpRequest()
				w := &fakeWriter{header: make(http.Header, 8)}
				b.ReportAllocs()
				cpu := startCPU()
				for b.Loop() {
					clear(w.header)
					h.ServeHTTP(w, req)
				}
				cpu.report(b)
			})
		}
	}
}

// BenchmarkHTTP is the jub0bs/cors-benchmarks shape: a handler writing
// "Hello, World!" behind each middleware, a new httptest.ResponseRecorder per
// operation, b.RunParallel. mw=none is the harness alone.
//
//	go test -run '^$' -bench HTTP -benchmem -count 6 ./bench/engine/ | benchstat -col /mw -
func BenchmarkHTTP(b *testing.B) {
	none := cases[0].httpRequest()
	b.Run("mw=none", parallelServe(hello, none))
	for _, c := range cases {
		for _, mw := range middlewares {
			h, err := mw.wrap(c, hello)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("mw="+mw.name+"/"+c.name, parallelServe(h, c.httpRequest()))
		}
	}
}

func parallelServe(h http.Handler, req *http.Request) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
		cpu.report(b)
	}
}

var (
	hello   = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "Hello, World!") })
	nothing = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
)

// fakeWriter is a ResponseWriter reused across operations: its header map is
// cleared (keeping its buckets) so that the references' header writes, which
// are their decision, cost what they cost in a server that reuses maps.
type fakeWriter struct {
	header http.Header
	status int
}

func (w *fakeWriter) Header() http.Header         { return w.header }
func (w *fakeWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *fakeWriter) WriteHeader(status int)      { w.status = status }
