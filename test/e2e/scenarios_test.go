//go:build e2e

package e2e_test

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// scenarios each open their own tab and assert the browser's own outcome
// (what the page's JavaScript could read, or the TypeError fetch() rejected
// with, and the engine's own words for why) and what reached the edge and
// the upstream. They run in every engine; what one engine cannot observe,
// the tab says by name (tab.cannot) and replaces with the closest
// equivalent it has.
var scenarios = []struct {
	name string
	run  func(t *testing.T, s *suite)
}{
	{"simple GET from an allowed origin", simpleGET},
	{"preflighted PUT with JSON and a custom header", preflightedPUT},
	{"credentialed fetch with a cookie", credentialedCookie},
	{"wildcard origin never with credentials", wildcardOriginCredentials},
	{"disallowed origin", disallowedOrigin},
	{"disallowed request header", disallowedHeader},
	{"wildcard subdomain origins", wildcardSubdomains},
	{"exposed header read by the page", exposedHeader},
	{"upstream sets its own Access-Control-Allow-Origin", upstreamWrongCORS},
	{"upstream answers every OPTIONS with 401", upstreamOptions401},
	{"maxAge caches the preflight", maxAgeHonoured},
	{"DryRun changes nothing", dryRun},
	{"policy changed while the page is open", policyChange},
	{"cross-site form POST refused by cross-origin protection", crossSiteFormPOST},
	{"each failure class in the browser's own words", browserWords},
}

// A GET without custom headers is a "simple" request: no preflight (Fetch
// §4.1 main fetch, "CORS-preflight flag" unset), so the only CORS check is
// the browser's on the actual response.
func simpleGET(t *testing.T, s *suite) {
	tb := s.browser.open(t, app)
	url := api + "/v1/simple/items"
	o := tb.fetch(t, request{URL: url})
	readable(t, o, 200)
	if o.Type != "cors" {
		t.Errorf("Response.type = %q, want cors", o.Type)
	}
	if e := o.echo(t); e.Origin != app || e.Method != "GET" {
		t.Errorf("the upstream echoed %+v, want GET from %s", e, app)
	}
	count(t, "OPTIONS at the edge", s.edge.matching("OPTIONS", "/v1/simple/items"), 0)
	count(t, "GET at the upstream", s.upstream.matching("GET", "/v1/simple/items"), 1)
}

// A PUT with a JSON body and X-Request-Id needs a preflight (Fetch §4.8
// "CORS-preflight fetch"). The edge answers it; the upstream, whose router
// 404s every OPTIONS, only sees the PUT.
func preflightedPUT(t *testing.T, s *suite) {
	tb := s.browser.open(t, app)
	const path = "/v1/orders/42"
	o := tb.fetch(t, request{URL: api + path, Method: "PUT", Body: `{"qty":2}`,
		Headers: map[string]string{"Content-Type": "application/json", "X-Request-Id": "req-42"}})
	readable(t, o, 200)
	e := o.echo(t)
	if e.Method != "PUT" || e.Body != `{"qty":2}` || e.RequestID != "req-42" {
		t.Errorf("the upstream echoed %+v, want the PUT with its body and X-Request-Id", e)
	}
	pre := count(t, "preflights at the edge", s.edge.matching("OPTIONS", path), 1)
	if len(pre) == 1 {
		if pre[0].Status != 204 {
			t.Errorf("the edge answered the preflight %d, want 204", pre[0].Status)
		}
		if got := pre[0].Header.Get("Access-Control-Request-Method"); got != "PUT" {
			t.Errorf("Access-Control-Request-Method = %q, want PUT", got)
		}
		if got := pre[0].Header.Get("Access-Control-Request-Headers"); got != "content-type,x-request-id" {
			t.Errorf("Access-Control-Request-Headers = %q, want content-type,x-request-id", got)
		}
	}
	pr := tb.preflight(t, api+path)
	if pr.status != 204 || pr.headers["access-control-allow-origin"] != app || pr.headers["access-control-max-age"] != "600" {
		t.Errorf("the browser's preflight got %d %v; want 204 allowing %s, max-age 600", pr.status, pr.headers, app)
	}
	count(t, "OPTIONS at the upstream", s.upstream.matching("OPTIONS", path), 0)
	count(t, "PUT at the upstream", s.upstream.matching("PUT", path), 1)
}

// credentials: 'include' needs Access-Control-Allow-Credentials: true and
// the exact origin (Fetch §4.9 "CORS check"); then the browser stores the
// session cookie the upstream sets and sends it on the next call.
func credentialedCookie(t *testing.T, s *suite) {
	tb := s.browser.open(t, app)
	login := api + "/v1/session/login"
	o := tb.fetch(t, request{URL: login, Method: "GET", Credentials: "include"})
	readable(t, o, 200)
	r := tb.response(t, login)
	if r.headers["access-control-allow-origin"] != app || r.headers["access-control-allow-credentials"] != "true" {
		t.Errorf("login response CORS headers %q / %q, want %s / true", r.headers["access-control-allow-origin"], r.headers["access-control-allow-credentials"], app)
	}
	if !strings.Contains(r.headers["set-cookie"], "session=s3cr3t") {
		t.Errorf("the browser got set-cookie %q; want session=s3cr3t", r.headers["set-cookie"])
	}
	// The cookie's return on the next call (below) is what every engine
	// shows; only Chromium also names the cookies it refused to store.
	if tb.engine == chromium {
		if len(r.blockedCookies) > 0 {
			t.Errorf("Chromium refused to store %q; want session=s3cr3t stored", r.blockedCookies)
		}
	} else {
		tb.cannot(t, "the cookies it refused to store (a Chromium-only network event): the cookie sent back on the next call stands in")
	}

	me := api + "/v1/session/me"
	o = tb.fetch(t, request{URL: me, Credentials: "include"})
	readable(t, o, 200)
	if got := o.echo(t).Cookie; got != "session=s3cr3t" {
		t.Errorf("with credentials the upstream got Cookie %q, want session=s3cr3t", got)
	}
	// The cookie travels only because the page asked for credentials.
	o = tb.fetch(t, request{URL: me, Credentials: "omit"})
	readable(t, o, 200)
	if got := o.echo(t).Cookie; got != "" {
		t.Errorf("with credentials omitted the upstream got Cookie %q, want none", got)
	}
	if got := count(t, "GETs at the upstream", s.upstream.matching("GET", "/v1/session/me"), 2); len(got) == 2 {
		if c := got[0].Header.Get("Cookie"); c != "session=s3cr3t" {
			t.Errorf("the upstream's first GET had Cookie %q, want session=s3cr3t", c)
		}
	}
}

// A policy with allowOrigins ["*"] answers "Access-Control-Allow-Origin: *",
// which the browser accepts without credentials and refuses with them
// (Fetch §4.9 step 3: "*" is no match for a credentialed request).
func wildcardOriginCredentials(t *testing.T, s *suite) {
	tb := s.browser.open(t, evil)
	url := api + "/public/catalog"
	readable(t, tb.fetch(t, request{URL: url}), 200)
	if got := tb.response(t, url).headers["access-control-allow-origin"]; got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
	}
	r := request{URL: url, Credentials: "include"}
	blocked(t, tb.fetch(t, r))
	tb.corsReason(t, url, "WildcardOriginNotAllowed")
	tb.saysWhy(t, r, false)
}

// An origin the policy does not list gets no CORS header, so the browser
// keeps the response from the page. A simple GET still reaches the upstream
// (CORS protects reading, not sending); a preflighted PUT never does.
// Chromium's own error text and a screenshot are kept as artifacts.
func disallowedOrigin(t *testing.T, s *suite) {
	tb := s.browser.open(t, evil)
	const path = "/v1/orders/evil-read"
	url := api + path
	get := request{URL: url, Read: []string{"x-trace-id"}}
	o := tb.fetch(t, get)
	blocked(t, o)
	if want := typeErrors[tb.engine]; o.Error != want {
		t.Errorf("fetch() rejected with %q, want %s's %s", o.Error, tb.engine, want)
	}
	tb.saysWhy(t, get, false)
	tb.corsReason(t, url, "MissingAllowOriginHeader")
	if r := tb.response(t, url); r.status != 200 || r.headers["access-control-allow-origin"] != "" {
		t.Errorf("the browser received status %d and Access-Control-Allow-Origin %q; want 200 (the upstream's answer) without it", r.status, r.headers["access-control-allow-origin"])
	}
	count(t, "GET at the upstream", s.upstream.matching("GET", path), 1)

	const putPath = "/v1/orders/evil-write"
	put := request{URL: api + putPath, Method: "PUT", Body: `{"qty":1000}`,
		Headers: map[string]string{"Content-Type": "application/json"}}
	blocked(t, tb.fetch(t, put))
	tb.saysWhy(t, put, true)
	if pr := tb.preflight(t, api+putPath); pr.status != 403 || pr.headers["access-control-allow-origin"] != "" {
		t.Errorf("the browser's preflight got %d with Access-Control-Allow-Origin %q; want 403 without it", pr.status, pr.headers["access-control-allow-origin"])
	}
	count(t, "preflights at the edge", s.edge.matching("OPTIONS", putPath), 1)
	count(t, "requests at the upstream", s.upstream.matching("", putPath), 0)

	png, console := tb.saveArtifacts(t, s.artifacts, "disallowed-origin")
	for _, f := range []string{png, console} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("artifact %s missing or empty: %v", f, err)
		}
	}
	if b, _ := os.ReadFile(console); tb.ev != nil && !strings.Contains(string(b), url) {
		t.Errorf("%s lacks %s's CORS error for %s", console, tb.engine, url)
	}
	t.Logf("artifacts of the disallowed origin: screenshot %s, console %s", png, console)
}

// A request header the policy does not list fails the preflight: 403 from
// the edge, nothing upstream. The same request without it goes through.
func disallowedHeader(t *testing.T, s *suite) {
	tb := s.browser.open(t, app)
	const path = "/v1/orders/7"
	url := api + path
	put := request{URL: url, Method: "PUT", Body: `{}`,
		Headers: map[string]string{"Content-Type": "application/json", "X-Not-Allowed": "1"}}
	blocked(t, tb.fetch(t, put))
	tb.saysWhy(t, put, true)
	tb.corsReason(t, url, "Preflight*")
	if pre := count(t, "preflights at the edge", s.edge.matching("OPTIONS", path), 1); len(pre) == 1 {
		if pre[0].Status != 403 {
			t.Errorf("the edge answered the preflight %d, want 403", pre[0].Status)
		}
		if got := pre[0].Header.Get("Access-Control-Request-Headers"); got != "content-type,x-not-allowed" {
			t.Errorf("Access-Control-Request-Headers = %q", got)
		}
	}
	count(t, "requests at the upstream", s.upstream.matching("", path), 0)

	o := tb.fetch(t, request{URL: url, Method: "PUT", Body: `{}`, Headers: map[string]string{"Content-Type": "application/json"}})
	readable(t, o, 200)
	count(t, "PUT at the upstream", s.upstream.matching("PUT", path), 1)
}

// "https://*.tenants.example.test" allows any depth of subdomain, never the
// apex and never a name that merely ends in the same letters.
func wildcardSubdomains(t *testing.T, s *suite) {
	for _, c := range []struct {
		origin  string
		allowed bool
	}{
		{origin: "https://x.tenants.example.test", allowed: true},
		{origin: "https://a.b.tenants.example.test", allowed: true},
		{origin: "https://tenants.example.test", allowed: false},
		{origin: "https://eviltenants.example.test", allowed: false},
	} {
		tb := s.browser.open(t, c.origin)
		path := "/tenants/" + strings.TrimPrefix(c.origin, "https://") + "/upload"
		put := request{URL: api + path, Method: "PUT", Body: `"file"`,
			Headers: map[string]string{"Content-Type": "application/json"}}
		o := tb.fetch(t, put)
		if c.allowed {
			readable(t, o, 200)
			if got := o.echo(t).Origin; got != c.origin {
				t.Errorf("the upstream saw Origin %q, want %q", got, c.origin)
			}
			count(t, "PUT at the upstream from "+c.origin, s.upstream.matching("PUT", path), 1)
		} else {
			blocked(t, o)
			tb.saysWhy(t, put, true)
			count(t, "requests at the upstream from "+c.origin, s.upstream.matching("", path), 0)
		}
	}
}

// Only exposed response headers (and the CORS-safelisted ones) are readable
// with response.headers.get; the browser received X-Internal too, and hid it.
func exposedHeader(t *testing.T, s *suite) {
	tb := s.browser.open(t, app)
	url := api + "/v1/orders/exposed"
	o := tb.fetch(t, request{URL: url, Read: []string{"x-trace-id", "x-internal", "content-type"}})
	readable(t, o, 200)
	if got := o.header("x-trace-id"); got != "trace-exposed" {
		t.Errorf("headers.get('x-trace-id') = %s, want trace-exposed", got)
	}
	if got := o.header("x-internal"); got != "<null>" {
		t.Errorf("headers.get('x-internal') = %s, want null: it is not exposed", got)
	}
	if !slices.Contains(o.Names, "x-trace-id") || slices.Contains(o.Names, "x-internal") {
		t.Errorf("the page sees headers %v, want x-trace-id and not x-internal", o.Names)
	}
	if got := tb.response(t, url).headers["x-internal"]; got != "secret" {
		t.Errorf("the browser received X-Internal %q, want secret (hidden from the page, not missing)", got)
	}
}

// The upstream sends its own Access-Control-Allow-Origin: * (and -Allow-
// Headers, -Expose-Headers). With credentials the browser would refuse "*",
// and two values fail any CORS check; the edge removes the upstream's and
// sends exactly one, correct, value.
func upstreamWrongCORS(t *testing.T, s *suite) {
	tb := s.browser.open(t, app)
	url := api + "/v1/legacy/wrong-cors"
	o := tb.fetch(t, request{URL: url, Credentials: "include", Read: []string{"x-internal", "x-trace-id"}})
	readable(t, o, 200)
	h := tb.response(t, url).headers
	if got := h["access-control-allow-origin"]; got != app {
		t.Errorf("the browser received Access-Control-Allow-Origin %q, want exactly %q", got, app)
	}
	if got := h["access-control-allow-credentials"]; got != "true" {
		t.Errorf("Access-Control-Allow-Credentials = %q, want true", got)
	}
	if got, ok := h["access-control-allow-headers"]; ok {
		t.Errorf("the upstream's Access-Control-Allow-Headers %q reached the browser", got)
	}
	if got := h["access-control-expose-headers"]; got != "x-trace-id" {
		t.Errorf("Access-Control-Expose-Headers = %q, want the policy's x-trace-id only", got)
	}
	if got := o.header("x-internal"); got != "<null>" {
		t.Errorf("the page read x-internal = %s, which only the upstream's header exposed", got)
	}
	if vary := h["vary"]; !strings.Contains(vary, "Accept-Encoding") || !strings.Contains(vary, "Origin") {
		t.Errorf("Vary = %q, want the upstream's Accept-Encoding kept and Origin added", vary)
	}
	count(t, "GETs at the upstream", s.upstream.matching("GET", "/v1/legacy/wrong-cors"), 1)
}

// The upstream answers 401 to every OPTIONS, as an authentication middleware
// does. The preflight is answered at the edge, so the upstream never sees it
// and the PUT goes through.
func upstreamOptions401(t *testing.T, s *suite) {
	tb := s.browser.open(t, app)
	const path = "/v1/auth/profile"
	o := tb.fetch(t, request{URL: api + path, Method: "PUT", Body: `{"name":"ada"}`,
		Headers: map[string]string{"Content-Type": "application/json"}})
	readable(t, o, 200)
	if pr := tb.preflight(t, api+path); pr.status != 204 || pr.headers["www-authenticate"] != "" {
		t.Errorf("the browser's preflight got %d %v; want the edge's 204, never the upstream's 401", pr.status, pr.headers)
	}
	count(t, "preflights at the edge", s.edge.matching("OPTIONS", path), 1)
	count(t, "OPTIONS at the upstream", s.upstream.matching("OPTIONS", path), 0)
	count(t, "PUT at the upstream", s.upstream.matching("PUT", path), 1)
}

// maxAge: 600 lets Chromium cache the preflight (Fetch §4.8 step 7, the
// CORS-preflight cache, keyed by origin, URL and credentials), so a second
// PUT within the window sends no OPTIONS. The control, maxAge: 0, preflights
// every time.
func maxAgeHonoured(t *testing.T, s *suite) {
	tb := s.browser.open(t, app)
	put := request{Method: "PUT", Body: `{}`, Headers: map[string]string{"Content-Type": "application/json"}}
	for _, c := range []struct {
		path     string
		maxAge   string
		wantPres int
	}{
		{path: "/v1/cached/item", maxAge: "600", wantPres: 1},
		{path: "/nocache/item", maxAge: "0", wantPres: 2},
	} {
		r := put
		r.URL = api + c.path
		readable(t, tb.fetch(t, r), 200)
		if got := tb.preflight(t, r.URL).headers["access-control-max-age"]; got != c.maxAge {
			t.Errorf("the browser's preflight got Access-Control-Max-Age %q, want %s", got, c.maxAge)
		}
		readable(t, tb.fetch(t, r), 200)
		pre := count(t, "preflights at the edge for "+c.path, s.edge.matching("OPTIONS", c.path), c.wantPres)
		if len(pre) > 0 {
			if got := pre[0].Status; got != 204 {
				t.Errorf("the edge answered the preflight %d, want 204", got)
			}
		}
		count(t, "PUTs at the upstream for "+c.path, s.upstream.matching("PUT", c.path), 2)
	}
}

// DryRun decides and records but changes nothing: the browser sees exactly
// what the upstream sent, as if corsgate were not there.
func dryRun(t *testing.T, s *suite) {
	tb := s.browser.open(t, app)

	// The upstream sends no CORS header: blocked, though Enforce would allow.
	url := api + "/dryrun/items"
	blocked(t, tb.fetch(t, request{URL: url}))
	tb.corsReason(t, url, "MissingAllowOriginHeader")
	tb.saysWhy(t, request{URL: url}, false)
	count(t, "GET at the upstream", s.upstream.matching("GET", "/dryrun/items"), 1)

	// The upstream's own, wrong, headers reach the browser untouched.
	url = api + "/dryrun/wrong-cors"
	o := tb.fetch(t, request{URL: url, Read: []string{"x-internal"}})
	readable(t, o, 200)
	h := tb.response(t, url).headers
	if h["access-control-allow-origin"] != "*" || h["access-control-allow-headers"] != "*" {
		t.Errorf("CORS headers at the browser %q / %q, want the upstream's * / *", h["access-control-allow-origin"], h["access-control-allow-headers"])
	}
	if got := o.header("x-internal"); got != "secret" {
		t.Errorf("headers.get('x-internal') = %s, want secret, exposed by the upstream's own header", got)
	}
	if got := h["vary"]; got != "Accept-Encoding" {
		t.Errorf("Vary = %q, want the upstream's Accept-Encoding alone", got)
	}

	// The preflight goes to the upstream, which answers 401: blocked.
	const path = "/dryrun/auth/profile"
	put := request{URL: api + path, Method: "PUT", Body: `{}`, Headers: map[string]string{"Content-Type": "application/json"}}
	blocked(t, tb.fetch(t, put))
	tb.saysWhy(t, put, true)
	if pr := tb.preflight(t, api+path); pr.status != 401 {
		t.Errorf("the browser's preflight got %d, want the upstream's own 401", pr.status)
	}
	count(t, "OPTIONS at the upstream", s.upstream.matching("OPTIONS", path), 1)
	count(t, "PUT at the upstream", s.upstream.matching("PUT", path), 0)
}

// The page stays open while the policy changes (a file edit, or kubectl
// apply); its next fetch follows the new policy, both ways.
func policyChange(t *testing.T, s *suite) {
	tb := s.browser.open(t, partner)
	url := api + "/live/page"
	blocked(t, tb.fetch(t, request{URL: url}))

	s.policies.apply(t, "live", livePolicy(app, partner))
	s.waitServed(t, "/live/probe", partner, true)
	o := tb.fetch(t, request{URL: url})
	readable(t, o, 200)
	if got := o.echo(t).Origin; got != partner {
		t.Errorf("the upstream saw Origin %q, want %q", got, partner)
	}

	s.policies.apply(t, "live", livePolicy(app))
	s.waitServed(t, "/live/probe", partner, false)
	blocked(t, tb.fetch(t, request{URL: url}))
	count(t, "GETs at the upstream", s.upstream.matching("GET", "/live/page"), 3)
}

// readable fails unless the page could read a response with status want.
func readable(t *testing.T, o outcome, want int) {
	t.Helper()
	if o.Error != "" || o.Status != want {
		t.Fatalf("the page could not read the response: %v; want status %d", o, want)
	}
}

// blocked fails unless fetch() rejected with a TypeError, which is how the
// browser reports a CORS failure to script.
func blocked(t *testing.T, o outcome) {
	t.Helper()
	if !o.blocked() {
		t.Fatalf("the page read the response (%v); want fetch() to reject with a TypeError", o)
	}
}

// count checks how many requests a recorder holds and returns them.
func count(t *testing.T, what string, got []seen, want int) []seen {
	t.Helper()
	if len(got) != want {
		var lines []string
		for _, s := range got {
			lines = append(lines, s.Method+" "+s.Path)
		}
		t.Errorf("%s: %d, want %d %v", what, len(got), want, lines)
	}
	return got
}
