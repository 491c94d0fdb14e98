package cors_test

import (
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
)

// The fuzz targets check the hand-optimised matchers against the obvious
// implementation, and the decision against properties that must hold for
// every request. The decide table seeds them.

var fuzzPolicies = []cors.Config{credentialedAPI, publicAPI, credentialedAny,
	{AllowOrigins: []string{"null", "https://a.example"}, AllowHeaders: []string{"*", "authorization"}, UnmatchedPreflight: cors.PreflightForward},
	{AllowOriginRegexes: []string{`https://[a-z0-9-]+\.preview\.example\.com`}, AllowCredentials: true, AllowPrivateNetwork: true},
}

func FuzzDecideProperties(f *testing.F) {
	for _, tc := range decideCases {
		f.Add(tc.req.Method, tc.req.Origin, tc.req.AccessControlRequestMethod, tc.req.AccessControlRequestHeaders, tc.req.AccessControlRequestPrivateNetwork)
	}
	policies := make([]*cors.Policy, len(fuzzPolicies))
	for i, cfg := range fuzzPolicies {
		policies[i] = mustCompile(f, cfg)
	}
	f.Fuzz(func(t *testing.T, method, origin, acrm, acrh, acrpn string) {
		req := cors.Request{Method: method, Origin: origin, HasOrigin: true, AccessControlRequestMethod: acrm,
			AccessControlRequestHeaders: acrh, AccessControlRequestPrivateNetwork: acrpn}
		for i, p := range policies {
			d := p.Decide(&req)
			acao, hasACAO := d.Headers.Get("access-control-allow-origin")
			if _, cred := d.Headers.Get("access-control-allow-credentials"); cred {
				// Fetch §3.2.5: with credentials, "*" is never a wildcard.
				for _, hd := range d.Headers.All() {
					if hd.Value == "*" {
						t.Fatalf("policy %d: credentialed answer carries %s: *", i, hd.Name)
					}
				}
			}
			if d.Kind == cors.KindPreflight && d.Allowed && !hasACAO {
				t.Fatalf("policy %d: allowed preflight without Access-Control-Allow-Origin: %+v", i, d)
			}
			if !d.Allowed && d.Headers.Len() != 0 {
				t.Fatalf("policy %d: denied request answered with headers %v", i, d.Headers.All())
			}
			if hasACAO && acao != "*" && acao != origin {
				t.Fatalf("policy %d: ACAO %q is neither * nor the request's origin %q", i, acao, origin)
			}
			if _, host, _ := strings.Cut(origin, "://"); d.Allowed && origin != "null" &&
				(host == "" || strings.ContainsAny(host, ",/?#@ \t\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
				t.Fatalf("policy %d: malformed origin %q allowed", i, origin)
			}
			if (d.Kind == cors.KindPreflight) != (method == "OPTIONS" && acrm != "") {
				t.Fatalf("policy %d: classified %q/%q as %v", i, method, acrm, d.Kind)
			}
		}
	})
}

// referenceOriginAllowed is the obvious implementation of credentialedAPI's
// origin rule: one exact origin and "https://*.tenants.example.com".
func referenceOriginAllowed(o string) bool {
	if o == "https://app.example.com" {
		return true
	}
	rest, ok := strings.CutPrefix(o, "https://")
	if !ok {
		return false
	}
	labels, ok := strings.CutSuffix(rest, ".tenants.example.com")
	if !ok || labels == "" {
		return false
	}
	for l := range strings.SplitSeq(labels, ".") {
		if l == "" || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
}

func FuzzOriginMatchesReference(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "https://x.tenants.example.com", "https://a.b.tenants.example.com",
		"https://tenants.example.com", "https://.tenants.example.com", "https://a..tenants.example.com", "https://eviltenants.example.com",
		"https://x.tenants.example.com:443", "https://X.tenants.example.com", "null", ""} {
		f.Add(s)
	}
	p := mustCompile(f, credentialedAPI)
	f.Fuzz(func(t *testing.T, origin string) {
		d := p.Decide(&cors.Request{Method: "GET", Origin: origin, HasOrigin: true})
		if want := referenceOriginAllowed(origin); d.Allowed != want {
			t.Fatalf("origin %q: allowed = %v, reference says %v (reason %v)", origin, d.Allowed, want, d.Reason)
		}
	})
}

// referenceHeadersAllowed is the obvious ACRH check for credentialedAPI.
func referenceHeadersAllowed(acrh string) bool {
	if len(acrh) > 4096 {
		return false
	}
	for name := range strings.SplitSeq(acrh, ",") {
		name = strings.Trim(name, " \t")
		if name == "" {
			continue
		}
		switch strings.ToLower(name) {
		case "content-type", "x-request-id":
		default:
			return false
		}
	}
	return true
}

func FuzzACRHMatchesReference(f *testing.F) {
	for _, s := range []string{"", "content-type", "content-type,x-request-id", " Content-Type ,,X-Request-Id ", "x-foo", "authorization",
		strings.Repeat(",", 5000), "content-type\x00", "content-type;x"} {
		f.Add(s)
	}
	p := mustCompile(f, credentialedAPI)
	f.Fuzz(func(t *testing.T, acrh string) {
		d := p.Decide(&cors.Request{Method: "OPTIONS", Origin: "https://app.example.com", HasOrigin: true, AccessControlRequestMethod: "PUT", AccessControlRequestHeaders: acrh})
		if want := referenceHeadersAllowed(acrh); d.Allowed != want {
			t.Fatalf("ACRH %q: allowed = %v, reference says %v (reason %v %q)", acrh, d.Allowed, want, d.Reason, d.Detail)
		}
	})
}
