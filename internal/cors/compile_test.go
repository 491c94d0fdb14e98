package cors_test

import (
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
)

func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	origin := func(o string) cors.Config { return cors.Config{AllowOrigins: []string{o}} }
	cases := []struct {
		desc  string
		cfg   cors.Config
		field string
		want  string // substring of the message: what to write instead
	}{
		{desc: "no origins", cfg: cors.Config{}, field: "spec.allowOrigins", want: `list origins such as "https://app.example.com"`},
		{desc: "path", cfg: origin("https://a.example/app"), field: "spec.allowOrigins[0]", want: `(it has a path), so no browser ever sends it: write "https://a.example"`},
		{desc: "trailing slash", cfg: origin("https://a.example/"), field: "spec.allowOrigins[0]", want: `a trailing /`},
		{desc: "query", cfg: origin("https://a.example?x=1"), field: "spec.allowOrigins[0]", want: `a query`},
		{desc: "fragment", cfg: origin("https://a.example#x"), field: "spec.allowOrigins[0]", want: `a fragment`},
		{desc: "userinfo", cfg: origin("https://user@a.example"), field: "spec.allowOrigins[0]", want: `userinfo`},
		{desc: "upper case", cfg: origin("https://App.Example.com"), field: "spec.allowOrigins[0]", want: `upper case), so no browser ever sends it: write "https://app.example.com"`},
		{desc: "default https port", cfg: origin("https://a.example:443"), field: "spec.allowOrigins[0]", want: `the default port 443), so no browser ever sends it: write "https://a.example"`},
		{desc: "default http port", cfg: origin("http://a.example:80"), field: "spec.allowOrigins[0]", want: `write "http://a.example"`},
		{desc: "non-ASCII", cfg: origin("https://résumé.example"), field: "spec.allowOrigins[0]", want: `Punycode, e.g. "https://xn--rsum-bpad.example"`},
		{desc: "no scheme", cfg: origin("app.example.com"), field: "spec.allowOrigins[0]", want: `write scheme://host[:port]`},
		{desc: "wildcard in the middle", cfg: origin("https://api.*.example.com"), field: "spec.allowOrigins[0]", want: `leftmost label`},
		{desc: "wildcard inside a label", cfg: origin("https://*example.com"), field: "spec.allowOrigins[0]", want: `leftmost label`},
		{desc: "bare wildcard host", cfg: origin("https://*"), field: "spec.allowOrigins[0]", want: `leftmost label`},
		{desc: "bad port", cfg: origin("https://a.example:99999"), field: "spec.allowOrigins[0]", want: `1 to 65535`},
		{desc: "signed port", cfg: origin("https://a.example:+80"), field: "spec.allowOrigins[0]", want: `1 to 65535`},
		{desc: "IPv6 not compressed", cfg: origin("http://[0:0:0:0:0:0:0:1]"), field: "spec.allowOrigins[0]", want: `write "http://[::1]"`},
		{desc: "* not alone", cfg: cors.Config{AllowOrigins: []string{"*", "https://a.example"}}, field: "spec.allowOrigins[0]", want: `must stand alone`},
		{desc: "* with credentials", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowCredentials: true}, field: "spec.allowOrigins[0]", want: `list the origins you trust`},
		{desc: "null with credentials", cfg: cors.Config{AllowOrigins: []string{"null"}, AllowCredentials: true}, field: "spec.allowOrigins[0]", want: `remove "null"`},
		{desc: "public suffix wildcard with credentials", cfg: cors.Config{AllowOrigins: []string{"https://*.github.io"}, AllowCredentials: true}, field: "spec.allowOrigins[0]", want: `public suffix "github.io"`},
		{desc: "public suffix wildcard co.uk with credentials", cfg: cors.Config{AllowOrigins: []string{"https://*.co.uk"}, AllowCredentials: true}, field: "spec.allowOrigins[0]", want: `public suffix "co.uk"`},
		{desc: "regex that does not compile", cfg: cors.Config{AllowOriginRegexes: []string{`https://(a`}}, field: "spec.allowOriginRegexes[0]", want: `not a valid RE2 pattern`},
		{desc: "regex too long", cfg: cors.Config{AllowOriginRegexes: []string{strings.Repeat("a", 2000)}}, field: "spec.allowOriginRegexes[0]", want: `keep it under 1024`},
		{desc: "regex program too large", cfg: cors.Config{AllowOriginRegexes: []string{`x{1,1000}y{1,1000}z{1,1000}w{1,1000}v{1,1000}`}}, field: "spec.allowOriginRegexes[0]", want: `too large`},
		{desc: "credentialed regex matching any origin", cfg: cors.Config{AllowOriginRegexes: []string{`https://.*`}, AllowCredentials: true}, field: "spec.allowOriginRegexes[0]", want: `also matches "https://corsgate-probe.invalid"`},
		{desc: "credentialed regex open at the end", cfg: cors.Config{AllowOriginRegexes: []string{`https://app\.example\.com.*`}, AllowCredentials: true}, field: "spec.allowOriginRegexes[0]", want: `also matches "https://app.example.com.corsgate-probe.invalid"`},
		{desc: "credentialed regex with an unescaped dot", cfg: cors.Config{AllowOriginRegexes: []string{`https://app.example.com`}, AllowCredentials: true}, field: "spec.allowOriginRegexes[0]", want: `also matches`},
		{desc: "credentialed regex open at the start", cfg: cors.Config{AllowOriginRegexes: []string{`https://.*example\.com`}, AllowCredentials: true}, field: "spec.allowOriginRegexes[0]", want: `also matches "https://corsgate-probe`},
		{desc: "credentialed regex open in the middle", cfg: cors.Config{AllowOriginRegexes: []string{`https://.*\.example\.com.*`}, AllowCredentials: true}, field: "spec.allowOriginRegexes[0]", want: `also matches`},
		{desc: "method not a token", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"GET POST"}}, field: "spec.allowMethods[0]", want: `not an HTTP method name`},
		{desc: "forbidden method", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"trace"}}, field: "spec.allowMethods[0]", want: `forbidden method`},
		{desc: "CONNECT", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"CONNECT"}}, field: "spec.allowMethods[0]", want: `forbidden method`},
		{desc: "TRACK", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"TRACK"}}, field: "spec.allowMethods[0]", want: `forbidden method`},
		{desc: "method * not alone", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"*", "GET"}}, field: "spec.allowMethods[0]", want: `must stand alone`},
		{desc: "header not a token", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowHeaders: []string{"x foo"}}, field: "spec.allowHeaders[0]", want: `not a header name`},
		{desc: "header * beside another name", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowHeaders: []string{"*", "x-foo"}}, field: "spec.allowHeaders[0]", want: `must stand alone or beside "Authorization"`},
		{desc: "expose header not a token", cfg: cors.Config{AllowOrigins: []string{"*"}, ExposeHeaders: []string{"x:y"}}, field: "spec.exposeHeaders[0]", want: `not a header name`},
		{desc: "maxAge too large", cfg: cors.Config{AllowOrigins: []string{"*"}, MaxAge: new(int32(86401))}, field: "spec.maxAge", want: `from 0 (no caching) to 86400`},
		{desc: "maxAge negative", cfg: cors.Config{AllowOrigins: []string{"*"}, MaxAge: new(int32(-1))}, field: "spec.maxAge", want: `from 0 (no caching) to 86400`},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p, _, err := cors.Compile(tc.cfg)
			if err == nil || p != nil {
				t.Fatalf("Compile(%+v) = %v, nil; want an error on %s", tc.cfg, p, tc.field)
			}
			for _, fe := range cors.FieldErrors(err) {
				if fe.Field == tc.field && strings.Contains(fe.Message, tc.want) {
					return
				}
			}
			t.Errorf("Compile error = %q; want one on %s containing %q", err, tc.field, tc.want)
		})
	}
}

func TestCompileReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	_, _, err := cors.Compile(cors.Config{
		AllowOrigins: []string{"https://A.example", "https://b.example/"},
		AllowMethods: []string{"TRACE"},
		MaxAge:       new(int32(100000)),
	})
	if got := len(cors.FieldErrors(err)); got != 4 {
		t.Errorf("got %d field errors, want 4: %v", got, err)
	}
}

func TestCompileWarns(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc  string
		cfg   cors.Config
		field string
		want  string
	}{
		{desc: "null origin", cfg: cors.Config{AllowOrigins: []string{"null"}}, field: "spec.allowOrigins[0]", want: "sandboxed iframes"},
		{desc: "plain http with credentials", cfg: cors.Config{AllowOrigins: []string{"http://app.example.com"}, AllowCredentials: true}, field: "spec.allowOrigins[0]", want: "prefer https"},
		{desc: "maxAge above Chromium's cap", cfg: cors.Config{AllowOrigins: []string{"*"}, MaxAge: new(int32(86400))}, field: "spec.maxAge", want: "7200"},
		{desc: "lower-case patch", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"patch"}}, field: "spec.allowMethods[0]", want: `write "PATCH"`},
		// Fetch §2.2.1 "normalize a method": fetch upper-cases put, so "put"
		// never matches a browser; it sends patch as written, so "patch"
		// matches the pages that write it so.
		{desc: "lower-case put never matches a browser", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"put"}}, field: "spec.allowMethods[0]", want: `fetch sends "PUT", which "put" never matches`},
		{desc: "lower-case patch is sent as written", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"patch"}}, field: "spec.allowMethods[0]", want: `fetch sends "patch" as written`},
		{desc: "allowPrivateNetwork: legacy", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}, AllowPrivateNetwork: true}, field: "spec.allowPrivateNetwork", want: "no effect in current browsers"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p, warnings, err := cors.Compile(tc.cfg)
			if err != nil || p == nil {
				t.Fatalf("Compile: %v; want a policy with a warning", err)
			}
			for _, w := range warnings {
				if w.Field == tc.field && strings.Contains(w.Message, tc.want) {
					return
				}
			}
			t.Errorf("warnings = %v; want one on %s containing %q", warnings, tc.field, tc.want)
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	t.Parallel()
	for _, cfg := range []cors.Config{
		{AllowOrigins: []string{"http://localhost:3000"}, AllowCredentials: true},
		{AllowOrigins: []string{"http://127.0.0.1:8080", "http://[::1]:8080"}, AllowCredentials: true},
		{AllowOrigins: []string{"https://*.github.io"}}, // no credentials: no worse than "*"
		{AllowOrigins: []string{"https://xn--rsum-bpad.example"}},
		{AllowOrigins: []string{"https://*.example.com:8443"}, AllowCredentials: true},
		{AllowOrigins: []string{"*"}, AllowHeaders: []string{"*", "Authorization"}},
		{AllowOriginRegexes: []string{`https://[a-z0-9-]+\.example\.com`}, AllowCredentials: true},
		{AllowOriginRegexes: []string{`https://(www|app|pr-[0-9]+\.preview)\.example\.com(:8443)?`}, AllowCredentials: true},
		{AllowOriginRegexes: []string{`https://.*`}}, // no credentials: no worse than "*"
		{AllowOrigins: []string{"*"}, ExposeHeaders: []string{"*"}},
		{AllowOrigins: []string{"https://a.example"}, ExposeHeaders: []string{"*"}, AllowCredentials: true},
		// fetch sends patch as written (Fetch §2.2.1 "normalize a method"):
		// listing both spellings serves pages that write either.
		{AllowOrigins: []string{"https://a.example"}, AllowMethods: []string{"PATCH", "patch"}},
	} {
		if _, w, err := cors.Compile(cfg); err != nil || len(w) != 0 {
			t.Errorf("Compile(%+v) = warnings %v, error %v; want neither", cfg, w, err)
		}
	}
}
