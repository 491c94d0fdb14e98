package engine_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestCasesAgree checks that every library takes the path a case is named
// for (origin allowed or not), so that the benchmarks compare like with like.
func TestCasesAgree(t *testing.T) {
	t.Parallel()
	for _, c := range cases {
		for _, mw := range middlewares {
			t.Run("mw="+mw.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				h, err := mw.wrap(c, hello)
				if err != nil {
					t.Fatalf("configuring %s: %v", mw.name, err)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, c.httpRequest())
				acao := rec.Header().Get("Access-Control-Allow-Origin")
				if c.adversarial {
					t.Logf("status %d, Access-Control-Allow-Origin %q", rec.Code, acao)
					return
				}
				if got := acao != ""; got != c.allowed {
					t.Errorf("origin %q allowed = %v (status %d, Access-Control-Allow-Origin %q), want %v", c.origin, got, rec.Code, acao, c.allowed)
				}
			})
		}
	}
}

// TestAdapter pins what the corsgate adapter writes, since the HTTP
// benchmark's numbers are only comparable if it does the whole job.
func TestAdapter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc       string
		c          benchCase
		wantStatus int
		wantHeader http.Header
		wantBody   string
	}{
		{
			desc: "allowed preflight answered at the edge", c: find(t, "n=one/r=p/o=y"), wantStatus: http.StatusNoContent,
			wantHeader: http.Header{
				"Access-Control-Allow-Origin":  {"https://example.com"},
				"Access-Control-Allow-Methods": {"PUT"},
				"Vary":                         {"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"},
			},
		},
		{desc: "denied preflight is a bare 403", c: find(t, "n=many/r=p/o=n"), wantStatus: http.StatusForbidden, wantHeader: http.Header{}},
		{
			desc: "allowed actual request reaches the handler with CORS headers", c: find(t, "n=multiple/r=a/o=y"), wantStatus: http.StatusOK,
			wantHeader: http.Header{
				"Access-Control-Allow-Origin": {"https://example.com"},
				"Vary":                        {"Origin"},
				"Content-Type":                {"text/plain; charset=utf-8"},
			},
			wantBody: "Hello, World!",
		},
		{
			desc: "denied actual request reaches the handler with Vary only", c: find(t, "n=two/r=a/o=n"), wantStatus: http.StatusOK,
			wantHeader: http.Header{"Vary": {"Origin"}, "Content-Type": {"text/plain; charset=utf-8"}},
			wantBody:   "Hello, World!",
		},
		{desc: "1 MiB of request headers is refused without parsing", c: find(t, "n=all/r=p/o=y/m=acrh_1m"), wantStatus: http.StatusForbidden, wantHeader: http.Header{}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p, err := tc.c.corsgatePolicy()
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			newCorsgateHandler(p, hello).ServeHTTP(rec, tc.c.httpRequest())
			if rec.Code != tc.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := rec.Header(); !equalHeaders(got, tc.wantHeader) {
				t.Errorf("headers\n got %v\nwant %v", got, tc.wantHeader)
			}
			if got := rec.Body.String(); got != tc.wantBody {
				t.Errorf("body %q, want %q", got, tc.wantBody)
			}
		})
	}
}

func find(t *testing.T, name string) benchCase {
	t.Helper()
	for _, c := range cases {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no case %q", name)
	return benchCase{}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv := b[k]
		if len(av) != len(bv) {
			return false
		}
		for i := range av {
			if av[i] != bv[i] {
				return false
			}
		}
	}
	return true
}

// TestDecideAllocs pins the engine target: deciding allocates nothing, on
// every case. Allocation counts are stable, unlike timings. Not parallel:
// AllocsPerRun counts the whole process's allocations.
func TestDecideAllocs(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := c.corsgatePolicy()
			if err != nil {
				t.Fatal(err)
			}
			req := c.corsgateRequest()
			if n := testing.AllocsPerRun(100, func() { _ = p.Decide(&req) }); n != 0 {
				t.Errorf("Decide allocates %v times per request, want 0", n)
			}
		})
	}
}
