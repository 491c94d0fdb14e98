package cors_test

import (
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
)

func mustCompile(t testing.TB, cfg cors.Config) *cors.Policy {
	t.Helper()
	p, _, err := cors.Compile(cfg)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

// h is a compact way to write expected headers: name, value, name, value...
func h(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

var (
	credentialedAPI = cors.Config{
		AllowOrigins:     []string{"https://app.example.com", "https://*.tenants.example.com"},
		AllowMethods:     []string{"GET", "PUT", "DELETE"},
		AllowHeaders:     []string{"Content-Type", "X-Request-Id"},
		ExposeHeaders:    []string{"X-Trace-Id"},
		MaxAge:           new(int32(600)),
		AllowCredentials: true,
	}
	publicAPI = cors.Config{
		AllowOrigins:  []string{"*"},
		AllowMethods:  []string{"*"},
		AllowHeaders:  []string{"*"},
		ExposeHeaders: []string{"*"},
	}
	credentialedAny = cors.Config{
		AllowOrigins:     []string{"https://app.example.com"},
		AllowMethods:     []string{"*"},
		AllowHeaders:     []string{"*"},
		ExposeHeaders:    []string{"*"},
		AllowCredentials: true,
	}
)

const vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"

func preflight(origin, method, headers string) cors.Request {
	return cors.Request{Method: "OPTIONS", Origin: origin, HasOrigin: true, AccessControlRequestMethod: method, AccessControlRequestHeaders: headers}
}

func actual(method, origin string) cors.Request {
	return cors.Request{Method: method, Origin: origin, HasOrigin: true}
}

type decideCase struct {
	desc    string
	cfg     cors.Config
	req     cors.Request
	kind    cors.Kind
	action  cors.Action
	allowed bool
	reason  cors.Reason
	detail  string
	status  int
	headers map[string]string // exactly these, nothing else
	exposeU bool
}

var decideCases = []decideCase{
	// Classification (Fetch §3.2.2).
	{desc: "no Origin is not a CORS request", cfg: credentialedAPI, req: cors.Request{Method: "GET"},
		kind: cors.KindNotCORS, action: cors.ActionContinue, reason: cors.ReasonNotCORS},
	{desc: "OPTIONS without Access-Control-Request-Method is an actual request", cfg: credentialedAPI,
		req:  cors.Request{Method: "OPTIONS", Origin: "https://app.example.com", HasOrigin: true},
		kind: cors.KindActual, action: cors.ActionContinue, allowed: true,
		headers: h("access-control-allow-origin", "https://app.example.com", "access-control-allow-credentials", "true", "access-control-expose-headers", "x-trace-id")},
	{desc: "empty Origin header is malformed, not absent", cfg: publicAPI, req: actual("GET", ""),
		kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginMalformed},

	// Preflights.
	{desc: "allowed credentialed preflight", cfg: credentialedAPI, req: preflight("https://app.example.com", "PUT", "content-type,x-request-id"),
		kind: cors.KindPreflight, action: cors.ActionRespond, allowed: true, status: 204,
		headers: h("access-control-allow-origin", "https://app.example.com", "access-control-allow-credentials", "true",
			"access-control-allow-methods", "PUT,DELETE", "access-control-allow-headers", "content-type,x-request-id",
			"access-control-max-age", "600", "vary", vary)},
	{desc: "safelisted method passes without being listed (Fetch §2.2.1)", cfg: cors.Config{AllowOrigins: []string{"https://app.example.com"}},
		req: preflight("https://app.example.com", "POST", ""), kind: cors.KindPreflight, action: cors.ActionRespond, allowed: true, status: 204,
		headers: h("access-control-allow-origin", "https://app.example.com", "vary", vary)},
	{desc: "method comparison is case-sensitive: patch is not PATCH (Fetch §2.2.1 normalize)", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}, AllowMethods: []string{"PATCH"}},
		req: preflight("https://a.example", "patch", ""), kind: cors.KindPreflight, action: cors.ActionRespond, status: 403,
		reason: cors.ReasonMethodNotAllowed, detail: "patch"},
	{desc: "disallowed origin: 403 and no CORS headers (Fetch §3.2.3)", cfg: credentialedAPI, req: preflight("https://evil.example", "PUT", ""),
		kind: cors.KindPreflight, action: cors.ActionRespond, status: 403, reason: cors.ReasonOriginNotAllowed, detail: "https://evil.example"},
	{desc: "disallowed method", cfg: credentialedAPI, req: preflight("https://app.example.com", "PATCH", ""),
		kind: cors.KindPreflight, action: cors.ActionRespond, status: 403, reason: cors.ReasonMethodNotAllowed, detail: "PATCH"},
	{desc: "disallowed header names the header", cfg: credentialedAPI, req: preflight("https://app.example.com", "PUT", "content-type,x-foo"),
		kind: cors.KindPreflight, action: cors.ActionRespond, status: 403, reason: cors.ReasonHeaderNotAllowed, detail: "x-foo"},
	{desc: "request header names are case-insensitive", cfg: credentialedAPI, req: preflight("https://app.example.com", "PUT", "Content-Type, X-REQUEST-ID"),
		kind: cors.KindPreflight, action: cors.ActionRespond, allowed: true, status: 204,
		headers: h("access-control-allow-origin", "https://app.example.com", "access-control-allow-credentials", "true",
			"access-control-allow-methods", "PUT,DELETE", "access-control-allow-headers", "content-type,x-request-id",
			"access-control-max-age", "600", "vary", vary)},
	{desc: "ACRH tolerates OWS and empty elements from intermediaries", cfg: credentialedAPI, req: preflight("https://app.example.com", "PUT", " content-type ,, x-request-id,"),
		kind: cors.KindPreflight, action: cors.ActionRespond, allowed: true, status: 204,
		headers: h("access-control-allow-origin", "https://app.example.com", "access-control-allow-credentials", "true",
			"access-control-allow-methods", "PUT,DELETE", "access-control-allow-headers", "content-type,x-request-id",
			"access-control-max-age", "600", "vary", vary)},
	{desc: "ACRH over its bound is refused before parsing", cfg: publicAPI, req: preflight("https://a.example", "PUT", strings.Repeat(",", 5000)),
		kind: cors.KindPreflight, action: cors.ActionRespond, status: 403, reason: cors.ReasonHeadersTooLarge},
	{desc: "ACRH element that is not a token", cfg: publicAPI, req: preflight("https://a.example", "PUT", "x foo"),
		kind: cors.KindPreflight, action: cors.ActionRespond, status: 403, reason: cors.ReasonHeaderNotAllowed, detail: "x foo"},
	{desc: "ACRM that is not a token", cfg: publicAPI, req: preflight("https://a.example", "P U T", ""),
		kind: cors.KindPreflight, action: cors.ActionRespond, status: 403, reason: cors.ReasonMethodNotAllowed, detail: "P U T"},

	// "*" semantics (Fetch §3.2.3: "*" is a wildcard only without credentials).
	{desc: "* everywhere, uncredentialed: answer *", cfg: publicAPI, req: preflight("https://a.example", "PATCH", "x-foo"),
		kind: cors.KindPreflight, action: cors.ActionRespond, allowed: true, status: 204,
		headers: h("access-control-allow-origin", "*", "access-control-allow-methods", "*", "access-control-allow-headers", "*", "vary", vary)},
	{desc: "* headers never cover Authorization (Fetch §2.2.2 CORS non-wildcard request-header name)", cfg: publicAPI,
		req: preflight("https://a.example", "GET", "authorization,x-foo"), kind: cors.KindPreflight, action: cors.ActionRespond, status: 403,
		reason: cors.ReasonHeaderNotAllowed, detail: "authorization"},
	{desc: "* plus Authorization by name answers *,authorization", cfg: cors.Config{AllowOrigins: []string{"*"}, AllowHeaders: []string{"*", "Authorization"}},
		req: preflight("https://a.example", "GET", "authorization,x-foo"), kind: cors.KindPreflight, action: cors.ActionRespond, allowed: true, status: 204,
		headers: h("access-control-allow-origin", "*", "access-control-allow-headers", "*,authorization", "vary", vary)},
	{desc: "credentialed *: echo the requested method and headers", cfg: credentialedAny,
		req: preflight("https://app.example.com", "PATCH", "x-b,x-a"), kind: cors.KindPreflight, action: cors.ActionRespond, allowed: true, status: 204,
		headers: h("access-control-allow-origin", "https://app.example.com", "access-control-allow-credentials", "true",
			"access-control-allow-methods", "PATCH", "access-control-allow-headers", "x-b,x-a", "vary", vary)},
	{desc: "a requested header named * is never echoed as the wildcard", cfg: credentialedAny,
		req: preflight("https://app.example.com", "GET", "x-a,*"), kind: cors.KindPreflight, action: cors.ActionRespond, status: 403,
		reason: cors.ReasonHeaderNotAllowed, detail: "*"},
	{desc: "a requested method * is never echoed as the wildcard", cfg: credentialedAny,
		req: preflight("https://app.example.com", "*", ""), kind: cors.KindPreflight, action: cors.ActionRespond, status: 403,
		reason: cors.ReasonMethodNotAllowed, detail: "*"},
	{desc: "credentialed * headers still refuses Authorization", cfg: credentialedAny,
		req: preflight("https://app.example.com", "GET", "Authorization"), kind: cors.KindPreflight, action: cors.ActionRespond, status: 403,
		reason: cors.ReasonHeaderNotAllowed, detail: "Authorization"},

	// Origins (docs/design.md#matching-rules).
	{desc: "origin compared byte for byte: upper case never matches", cfg: credentialedAPI, req: actual("GET", "https://APP.example.com"),
		kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginMalformed, detail: "https://APP.example.com"},
	{desc: "scheme must match", cfg: credentialedAPI, req: actual("GET", "http://app.example.com"),
		kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginNotAllowed, detail: "http://app.example.com"},
	{desc: "port must match", cfg: credentialedAPI, req: actual("GET", "https://app.example.com:8443"),
		kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginNotAllowed, detail: "https://app.example.com:8443"},
	{desc: "trailing slash is not a serialized origin", cfg: credentialedAPI, req: actual("GET", "https://app.example.com/"),
		kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginMalformed, detail: "https://app.example.com/"},
	{desc: "two Origin lines joined by Envoy are malformed", cfg: publicAPI, req: actual("GET", "https://a.example,https://b.example"),
		kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginMalformed, detail: "https://a.example,https://b.example"},
	{desc: "wildcard: one label", cfg: credentialedAPI, req: actual("GET", "https://x.tenants.example.com"),
		kind: cors.KindActual, action: cors.ActionContinue, allowed: true,
		headers: h("access-control-allow-origin", "https://x.tenants.example.com", "access-control-allow-credentials", "true", "access-control-expose-headers", "x-trace-id")},
	{desc: "wildcard: several labels", cfg: credentialedAPI, req: actual("GET", "https://a.b.tenants.example.com"),
		kind: cors.KindActual, action: cors.ActionContinue, allowed: true,
		headers: h("access-control-allow-origin", "https://a.b.tenants.example.com", "access-control-allow-credentials", "true", "access-control-expose-headers", "x-trace-id")},
	{desc: "wildcard never matches the apex", cfg: credentialedAPI, req: actual("GET", "https://tenants.example.com"),
		kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginNotAllowed, detail: "https://tenants.example.com"},
	{desc: "wildcard keeps label boundaries", cfg: credentialedAPI, req: actual("GET", "https://eviltenants.example.com"),
		kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginNotAllowed, detail: "https://eviltenants.example.com"},
	{desc: "wildcard is a suffix, not a substring", cfg: credentialedAPI, req: actual("GET", "https://x.tenants.example.com.evil.com"),
		kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginNotAllowed, detail: "https://x.tenants.example.com.evil.com"},
	{desc: "wildcard keeps the port", cfg: credentialedAPI, req: actual("GET", "https://x.tenants.example.com:444"),
		kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginNotAllowed, detail: "https://x.tenants.example.com:444"},
	{desc: "regex matches the whole origin", cfg: cors.Config{AllowOriginRegexes: []string{`https://pr-[0-9]+\.preview\.example\.com`}},
		req: actual("GET", "https://pr-42.preview.example.com"), kind: cors.KindActual, action: cors.ActionContinue, allowed: true,
		headers: h("access-control-allow-origin", "https://pr-42.preview.example.com")},
	{desc: "regex is anchored: a longer origin does not match", cfg: cors.Config{AllowOriginRegexes: []string{`https://pr-[0-9]+\.preview\.example\.com`}},
		req: actual("GET", "https://pr-42.preview.example.com.evil.com"), kind: cors.KindActual, action: cors.ActionContinue,
		reason: cors.ReasonOriginNotAllowed, detail: "https://pr-42.preview.example.com.evil.com"},
	{desc: "a malformed origin is never allowed, whatever a regex says", cfg: cors.Config{AllowOriginRegexes: []string{`.*`}},
		req: actual("GET", "https://a.example/path"), kind: cors.KindActual, action: cors.ActionContinue,
		reason: cors.ReasonOriginMalformed, detail: "https://a.example/path"},
	{desc: "null is denied by *", cfg: publicAPI, req: actual("GET", "null"),
		kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginNotAllowed, detail: "null"},
	{desc: "null listed literally is reflected as null", cfg: cors.Config{AllowOrigins: []string{"null"}}, req: actual("GET", "null"),
		kind: cors.KindActual, action: cors.ActionContinue, allowed: true, headers: h("access-control-allow-origin", "null")},
	{desc: "* answers * on actual requests", cfg: publicAPI, req: actual("GET", "https://a.example"),
		kind: cors.KindActual, action: cors.ActionContinue, allowed: true,
		headers: h("access-control-allow-origin", "*", "access-control-expose-headers", "*")},
	{desc: "IPv6 origin", cfg: cors.Config{AllowOrigins: []string{"http://[::1]:8080"}}, req: actual("GET", "http://[::1]:8080"),
		kind: cors.KindActual, action: cors.ActionContinue, allowed: true, headers: h("access-control-allow-origin", "http://[::1]:8080")},

	// Expose headers with credentials: "*" is literal (Fetch §3.2.3), expanded at the edge.
	{desc: "credentialed exposeHeaders * asks the edge to list upstream names", cfg: credentialedAny, req: actual("GET", "https://app.example.com"),
		kind: cors.KindActual, action: cors.ActionContinue, allowed: true, exposeU: true,
		headers: h("access-control-allow-origin", "https://app.example.com", "access-control-allow-credentials", "true")},

	// Private network access (WICG PNA).
	{desc: "private network asked and allowed", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}, AllowPrivateNetwork: true},
		req:  cors.Request{Method: "OPTIONS", Origin: "https://a.example", HasOrigin: true, AccessControlRequestMethod: "GET", AccessControlRequestPrivateNetwork: "true"},
		kind: cors.KindPreflight, action: cors.ActionRespond, allowed: true, status: 204,
		headers: h("access-control-allow-origin", "https://a.example", "access-control-allow-private-network", "true", "vary", vary)},
	{desc: "private network asked but not allowed rejects the preflight", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}},
		req:  cors.Request{Method: "OPTIONS", Origin: "https://a.example", HasOrigin: true, AccessControlRequestMethod: "GET", AccessControlRequestPrivateNetwork: "true"},
		kind: cors.KindPreflight, action: cors.ActionRespond, status: 403, reason: cors.ReasonPrivateNetworkNotAllowed, detail: "true"},
	{desc: "private network allowed but not asked: no header", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}, AllowPrivateNetwork: true},
		req: preflight("https://a.example", "GET", ""), kind: cors.KindPreflight, action: cors.ActionRespond, allowed: true, status: 204,
		headers: h("access-control-allow-origin", "https://a.example", "vary", vary)},

	// maxAge.
	{desc: "maxAge 0 is sent: no caching", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}, MaxAge: new(int32(0))},
		req: preflight("https://a.example", "GET", ""), kind: cors.KindPreflight, action: cors.ActionRespond, allowed: true, status: 204,
		headers: h("access-control-allow-origin", "https://a.example", "access-control-max-age", "0", "vary", vary)},

	// unmatchedPreflight and mode.
	{desc: "Forward passes a denied preflight upstream untouched", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}, UnmatchedPreflight: cors.PreflightForward},
		req: preflight("https://evil.example", "GET", ""), kind: cors.KindPreflight, action: cors.ActionPassThrough,
		reason: cors.ReasonOriginNotAllowed, detail: "https://evil.example"},
	{desc: "Forward still answers an allowed preflight at the edge", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}, UnmatchedPreflight: cors.PreflightForward},
		req: preflight("https://a.example", "GET", ""), kind: cors.KindPreflight, action: cors.ActionRespond, allowed: true, status: 204,
		headers: h("access-control-allow-origin", "https://a.example", "vary", vary)},
}

func TestDecide(t *testing.T) {
	t.Parallel()
	for _, tc := range decideCases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := mustCompile(t, tc.cfg)
			d := p.Decide(&tc.req)
			if d.Kind != tc.kind || d.Action != tc.action || d.Allowed != tc.allowed || d.Reason != tc.reason ||
				d.Detail != tc.detail || d.Status != tc.status || d.ExposeResponseHeaders != tc.exposeU {
				t.Errorf("Decide(%+v)\n got kind=%v action=%v allowed=%v reason=%q detail=%q status=%d exposeU=%v\nwant kind=%v action=%v allowed=%v reason=%q detail=%q status=%d exposeU=%v",
					tc.req, d.Kind, d.Action, d.Allowed, d.Reason, d.Detail, d.Status, d.ExposeResponseHeaders,
					tc.kind, tc.action, tc.allowed, tc.reason, tc.detail, tc.status, tc.exposeU)
			}
			got := map[string]string{}
			for _, hd := range d.Headers.All() {
				if _, dup := got[hd.Name]; dup {
					t.Errorf("header %q set twice", hd.Name)
				}
				got[hd.Name] = hd.Value
			}
			if len(got) != len(tc.headers) {
				t.Errorf("headers:\n got %v\nwant %v", got, tc.headers)
				return
			}
			for k, v := range tc.headers {
				if got[k] != v {
					t.Errorf("header %s: got %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestDecideDryRunRecordsWhatEnforceWouldDo(t *testing.T) {
	t.Parallel()
	for _, tc := range decideCases {
		cfg := tc.cfg
		cfg.Mode = cors.ModeDryRun
		p := mustCompile(t, cfg)
		d := p.Decide(&tc.req)
		if !d.DryRun || d.Action != cors.ActionPassThrough || d.EnforceAction != tc.action || d.Allowed != tc.allowed || d.Reason != tc.reason {
			t.Errorf("%s: DryRun decision = %+v; want pass-through recording action %v, allowed %v, reason %v", tc.desc, d, tc.action, tc.allowed, tc.reason)
		}
	}
}

func TestDecideAllocatesNothing(t *testing.T) {
	for _, tc := range decideCases {
		p := mustCompile(t, tc.cfg)
		req := tc.req
		if n := testing.AllocsPerRun(100, func() { _ = p.Decide(&req) }); n != 0 {
			t.Errorf("%s: %v allocs per Decide, want 0", tc.desc, n)
		}
	}
}
