package engine_test

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"

	jub0bs "github.com/jub0bs/cors"
	rscors "github.com/rs/cors"

	"github.com/corsgate/corsgate/internal/cors"
)

// The cases follow jub0bs/cors-benchmarks (same origin sets, same requests,
// same allowed method and request headers, named by the same dimensions:
// n = allowed origins, r = actual (a) or preflight (p), o = origin allowed),
// plus two adversarial Access-Control-Request-Headers of about 64 KiB and
// 1 MiB of ", " (the rs/cors#170 shape), to show that the work stops
// growing past the engine's bound.

const (
	disallowedOrigin = "https://example.org:6060"
	hostMaxLen       = 253
)

// multipleOrigins mixes exact, wildcard and non-default-port origins.
var multipleOrigins = []string{
	"https://*.example.net", "https://example.net:8080", "https://example.net",
	"https://*.example.org", "https://example.org:8080", "https://example.org",
	"https://*.example.com", "https://example.com:8080", "https://example.com",
}

// twoOrigins are two pathologically long (253-byte host) origins.
var twoOrigins = []string{
	"https://a" + strings.Repeat(".a", hostMaxLen/2),
	"https://b" + strings.Repeat(".a", hostMaxLen/2),
}

// manyOrigins are 1,000 origins of the same length.
var manyOrigins = func() []string {
	const n = 1000
	width := int(math.Ceil(math.Log10(n)))
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("https://%0*d.example.com", width, i)
	}
	return out
}()

// allowedRequestHeaders are rs/cors's default allowed headers, as in
// jub0bs/cors-benchmarks.
var allowedRequestHeaders = []string{"Accept", "Content-Type", "X-Requested-With"}

type benchCase struct {
	// name is n=…/r=…/o=…[/m=…], for benchstat.
	name    string
	origins []string
	// The request.
	method, origin, acrm, acrh string
	// allowed is what every library decides: the origin gets
	// Access-Control-Allow-Origin. For the adversarial request headers the
	// libraries disagree (a policy choice, not a bug), so it is not checked.
	allowed     bool
	adversarial bool
}

func last(s []string) string { return s[len(s)-1] }

var cases = func() []benchCase {
	type set struct {
		n        string
		origins  []string
		allowed  string // an allowed origin
		rejected string // "" for "*"
	}
	sets := []set{
		{"one", []string{"https://example.com"}, "https://example.com", "https://example.org"},
		{"multiple", multipleOrigins, last(multipleOrigins), disallowedOrigin},
		{"two", twoOrigins, twoOrigins[0], "https://c" + strings.Repeat(".a", hostMaxLen/2)},
		{"many", manyOrigins, last(manyOrigins), disallowedOrigin},
		{"all", []string{"*"}, "https://example.com", ""},
	}
	var out []benchCase
	for _, r := range []string{"a", "p"} {
		for _, s := range sets {
			for _, o := range []string{"y", "n"} {
				origin := s.allowed
				if o == "n" {
					if s.rejected == "" {
						continue
					}
					origin = s.rejected
				}
				c := benchCase{name: "n=" + s.n + "/r=" + r + "/o=" + o, origins: s.origins, method: http.MethodGet, origin: origin, allowed: o == "y"}
				if r == "p" {
					c.method, c.acrm = http.MethodOptions, http.MethodPut
				}
				out = append(out, c)
			}
		}
	}
	evil := benchCase{origins: []string{"*"}, method: http.MethodOptions, origin: "https://example.com", acrm: http.MethodPut, adversarial: true}
	for _, e := range []struct{ m, acrh string }{
		{"evil_acrh", strings.Repeat(",", 1024)}, // jub0bs/cors-benchmarks' own case
		{"acrh_64k", strings.Repeat(", ", 32<<10)},
		{"acrh_1m", strings.Repeat(", ", 512<<10)}, // rs/cors#170: about 1 MiB of commas and spaces
	} {
		c := evil
		c.name, c.acrh = "n=all/r=p/o=y/m="+e.m, e.acrh
		out = append(out, c)
	}
	return out
}()

// corsgateConfig is the case's policy in corsgate's terms.
func (c benchCase) corsgateConfig() cors.Config {
	return cors.Config{AllowOrigins: c.origins, AllowMethods: []string{http.MethodPut}, AllowHeaders: allowedRequestHeaders}
}

func (c benchCase) corsgatePolicy() (*cors.Policy, error) {
	p, _, err := cors.Compile(c.corsgateConfig())
	return p, err
}

// corsgateRequest is the request as the ext_proc server hands it to the engine.
func (c benchCase) corsgateRequest() cors.Request {
	return cors.Request{Method: c.method, Origin: c.origin, HasOrigin: true, AccessControlRequestMethod: c.acrm, AccessControlRequestHeaders: c.acrh}
}

// rsCORS also lists GET: rs/cors checks an actual request's method against
// AllowedMethods (the Fetch standard does not; GET is CORS-safelisted), so
// without it every actual request would take rs/cors's rejection path. That
// is the one departure from jub0bs/cors-benchmarks, whose rs/cors actual
// requests are all rejected for that reason.
func (c benchCase) rsCORS() *rscors.Cors {
	return rscors.New(rscors.Options{AllowedOrigins: c.origins, AllowedMethods: []string{http.MethodGet, http.MethodPut}, AllowedHeaders: allowedRequestHeaders})
}

func (c benchCase) jub0bsCORS() (*jub0bs.Middleware, error) {
	return jub0bs.NewMiddleware(jub0bs.Config{Origins: c.origins, Methods: []string{http.MethodPut}, RequestHeaders: allowedRequestHeaders})
}

// httpRequest is the request as net/http hands it to a middleware.
func (c benchCase) httpRequest() *http.Request {
	r := httptest.NewRequest(c.method, "https://example.com/whatever", nil)
	r.Header = http.Header{"Origin": {c.origin}}
	if c.acrm != "" {
		r.Header["Access-Control-Request-Method"] = []string{c.acrm}
	}
	if c.acrh != "" {
		r.Header["Access-Control-Request-Headers"] = []string{c.acrh}
	}
	return r
}

// middleware is one library's middleware around next.
type middleware struct {
	name string
	wrap func(c benchCase, next http.Handler) (http.Handler, error)
}

var middlewares = []middleware{
	{"corsgate", func(c benchCase, next http.Handler) (http.Handler, error) {
		p, err := c.corsgatePolicy()
		if err != nil {
			return nil, err
		}
		return newCorsgateHandler(p, next), nil
	}},
	{"jub0bs-cors", func(c benchCase, next http.Handler) (http.Handler, error) {
		m, err := c.jub0bsCORS()
		if err != nil {
			return nil, err
		}
		return m.Wrap(next), nil
	}},
	{"rs-cors", func(c benchCase, next http.Handler) (http.Handler, error) {
		return c.rsCORS().Handler(next), nil
	}},
}
