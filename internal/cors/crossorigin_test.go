package cors_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
)

// The cases follow Go's own tests of net/http.CrossOriginProtection
// (src/net/http/csrf_test.go: TestCrossOriginProtectionSecFetchSite and
// TestCrossOriginProtectionTrustedOriginBypass), with "trusted" being the
// policy's origin rules.

var protected = cors.Config{
	AllowOrigins:          []string{"https://app.example.com", "https://*.tenants.example.com"},
	AllowOriginRegexes:    []string{`https://pr-[0-9]+\.preview\.example\.com`},
	AllowMethods:          []string{"PUT", "DELETE"},
	AllowCredentials:      true,
	CrossOriginProtection: cors.CrossOriginEnforce,
}

func withCOP(cfg cors.Config, m cors.CrossOriginMode) cors.Config {
	cfg.CrossOriginProtection = m
	return cfg
}

func req(method, host, origin, site string) cors.Request {
	return cors.Request{Method: method, Host: host, Origin: origin, HasOrigin: origin != "", SecFetchSite: site}
}

func TestCrossOriginProtection(t *testing.T) {
	t.Parallel()
	const host = "api.example.com"
	cases := []struct {
		desc    string
		cfg     cors.Config
		req     cors.Request
		refused bool
	}{
		{desc: "Sec-Fetch-Site same-origin passes", cfg: protected, req: req("POST", host, "https://api.example.com", "same-origin")},
		{desc: "Sec-Fetch-Site none passes (address bar, bookmark)", cfg: protected, req: req("POST", host, "", "none")},
		{desc: "Sec-Fetch-Site cross-site from an untrusted origin is refused", cfg: protected, req: req("POST", host, "https://evil.example", "cross-site"), refused: true},
		{desc: "Sec-Fetch-Site same-site from an untrusted sibling is refused", cfg: protected, req: req("POST", host, "https://blog.example.com", "same-site"), refused: true},
		{desc: "an unknown Sec-Fetch-Site value is refused (only same-origin and none pass)", cfg: protected, req: req("POST", host, "https://evil.example", "bogus"), refused: true},
		{desc: "cross-site without Origin is refused: nothing to trust", cfg: protected, req: req("POST", host, "", "cross-site"), refused: true},
		{desc: "Sec-Fetch-Site wins over a matching Origin host", cfg: protected, req: req("POST", host, "https://api.example.com", "cross-site"), refused: true},
		{desc: "neither header: not a browser, passes", cfg: protected, req: req("POST", host, "", "")},
		{desc: "no Sec-Fetch-Site, Origin host equals the request host: passes", cfg: protected, req: req("POST", host, "https://api.example.com", "")},
		{desc: "no Sec-Fetch-Site, http Origin on the same host passes (scheme unknown, as in Go)", cfg: protected, req: req("POST", host, "http://api.example.com", "")},
		{desc: "no Sec-Fetch-Site, Origin port differs from the host: refused", cfg: protected, req: req("POST", host, "https://api.example.com:8443", ""), refused: true},
		{desc: "no Sec-Fetch-Site, untrusted Origin from another host: refused (old browser)", cfg: protected, req: req("POST", host, "https://evil.example", ""), refused: true},
		{desc: "no Sec-Fetch-Site, Origin null: refused", cfg: protected, req: req("POST", host, "null", ""), refused: true},
		{desc: "trusted exact origin, cross-site: passes", cfg: protected, req: req("POST", host, "https://app.example.com", "cross-site")},
		{desc: "trusted wildcard origin, cross-site: passes", cfg: protected, req: req("DELETE", host, "https://acme.tenants.example.com", "cross-site")},
		{desc: "trusted regex origin, no Sec-Fetch-Site: passes", cfg: protected, req: req("PUT", host, "https://pr-42.preview.example.com", "")},
		{desc: "wildcard never covers the apex", cfg: protected, req: req("POST", host, "https://tenants.example.com", "cross-site"), refused: true},
		{desc: "GET is safe: never refused", cfg: protected, req: req("GET", host, "https://evil.example", "cross-site")},
		{desc: "HEAD is safe: never refused", cfg: protected, req: req("HEAD", host, "https://evil.example", "cross-site")},
		{desc: "OPTIONS is safe: a preflight is the CORS protocol's business", cfg: protected, req: req("OPTIONS", host, "https://evil.example", "cross-site")},
		{desc: "PUT cross-site untrusted: refused", cfg: protected, req: req("PUT", host, "https://evil.example", "cross-site"), refused: true},
		{desc: "methods are case-sensitive: post is not safe", cfg: protected, req: req("post", host, "https://evil.example", "cross-site"), refused: true},
		{desc: "protection off: nothing refused", cfg: withCOP(protected, cors.CrossOriginOff), req: req("POST", host, "https://evil.example", "cross-site")},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := mustCompile(t, tc.cfg)
			d := p.Decide(&tc.req)
			if got := d.Reason == cors.ReasonCrossOriginRefused; got != tc.refused {
				t.Fatalf("refused = %v, want %v (decision %+v)", got, tc.refused, d)
			}
			if !tc.refused {
				return
			}
			if d.Action != cors.ActionRespond || d.Status != 403 || d.Allowed || d.Headers.Len() != 0 || cors.OutcomeOf(&d) != cors.OutcomeRefused {
				t.Fatalf("a refused request must be answered 403 at the edge without CORS headers, got %+v", d)
			}
			// The same request under DryRun protection reaches the upstream,
			// recorded as what Enforce would refuse.
			dry := mustCompile(t, withCOP(tc.cfg, cors.CrossOriginDryRun)).Decide(&tc.req)
			if dry.Action == cors.ActionRespond || dry.Reason != cors.ReasonCrossOriginDryRun || dry.Headers.Len() != 0 {
				t.Fatalf("DryRun protection: want the request through, reason %v and no CORS headers, got %+v", cors.ReasonCrossOriginDryRun, dry)
			}
		})
	}
}

// A DryRun policy changes nothing, cross-origin protection included; it
// records that Enforce would have answered 403.
func TestCrossOriginProtectionUnderDryRunPolicy(t *testing.T) {
	t.Parallel()
	cfg := protected
	cfg.Mode = cors.ModeDryRun
	r := req("POST", "api.example.com", "https://evil.example", "cross-site")
	d := mustCompile(t, cfg).Decide(&r)
	if d.Action != cors.ActionPassThrough || !d.DryRun || d.EnforceAction != cors.ActionRespond || d.Reason != cors.ReasonCrossOriginRefused {
		t.Fatalf("got %+v", d)
	}
}

func TestCrossOriginProtectionWarnsOnAnyOrigin(t *testing.T) {
	t.Parallel()
	_, warnings, err := cors.Compile(cors.Config{AllowOrigins: []string{"*"}, CrossOriginProtection: cors.CrossOriginEnforce})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		if w.Field == "spec.crossOriginProtection" {
			return
		}
	}
	t.Fatalf("no warning on spec.crossOriginProtection with allowOrigins [*]: %v", warnings)
}

func TestCrossOriginProtectionAllocatesNothing(t *testing.T) {
	p := mustCompile(t, protected)
	for _, r := range []cors.Request{
		req("POST", "api.example.com", "https://evil.example", "cross-site"),
		req("POST", "api.example.com", "https://acme.tenants.example.com", "cross-site"),
		req("POST", "api.example.com", "https://api.example.com", ""),
	} {
		if n := testing.AllocsPerRun(100, func() { _ = p.Decide(&r) }); n != 0 {
			t.Errorf("%+v: %v allocs per decision, want 0", r, n)
		}
	}
}

// FuzzCrossOriginMatchesNetHTTP plays arbitrary requests through the engine
// and through Go's own net/http.CrossOriginProtection with the same trusted
// origins. Properties: every request Go refuses, the engine refuses, and a
// refusal is always answered at the edge (the upstream never sees it); the
// engine refuses more only when the Origin is not a serialized origin (no
// browser sends one), never a same-origin request.
func FuzzCrossOriginMatchesNetHTTP(f *testing.F) {
	for _, s := range [][4]string{
		{"POST", "api.example.com", "https://api.example.com", ""},
		{"POST", "api.example.com", "https://evil.example", "cross-site"},
		{"PUT", "api.example.com", "https://app.example.com", "same-site"},
		{"DELETE", "api.example.com:8443", "https://api.example.com:8443", ""},
		{"POST", "api.example.com", "null", ""},
		{"GET", "api.example.com", "https://evil.example", "cross-site"},
		{"POST", "api.example.com", "", "none"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	trusted := []string{"https://app.example.com", "http://localhost:3000"}
	p := mustCompile(f, cors.Config{AllowOrigins: trusted, CrossOriginProtection: cors.CrossOriginEnforce})
	cop := http.NewCrossOriginProtection()
	for _, o := range trusted {
		if err := cop.AddTrustedOrigin(o); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, method, host, origin, site string) {
		if !validToken(method) {
			return // not a request net/http would parse
		}
		hr := &http.Request{Method: method, Host: host, Header: http.Header{}}
		if origin != "" {
			hr.Header.Set("Origin", origin)
		}
		if site != "" {
			hr.Header.Set("Sec-Fetch-Site", site)
		}
		r := req(method, host, origin, site)
		d := p.Decide(&r)
		refused := d.Reason == cors.ReasonCrossOriginRefused
		if refused && (d.Action != cors.ActionRespond || d.Status != 403) {
			t.Fatalf("refused but not answered 403 at the edge: %+v", d)
		}
		goRefused := cop.Check(hr) != nil
		switch {
		case goRefused && !refused:
			t.Fatalf("net/http refuses %q %q Origin %q Sec-Fetch-Site %q; the engine lets it through (%+v)", method, host, origin, site, d)
		case refused && !goRefused && isSerializedOrigin(origin):
			t.Fatalf("the engine refuses %q %q Origin %q Sec-Fetch-Site %q, which net/http passes", method, host, origin, site)
		}
	})
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == ',' || c == '/' || c == ':' || c == ';' || c == '<' ||
			c == '=' || c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' || c == ']' || c == '{' || c == '}' || c == '"' {
			return false
		}
	}
	return true
}

// isSerializedOrigin: scheme "://" host, nothing else (what url.Parse gives
// back whole).
func isSerializedOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && u.Host != "" && u.Scheme+"://"+u.Host == s
}
