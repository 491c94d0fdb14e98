package explain_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/explain"
	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/test/gen"
)

func objects(ps ...*v1alpha1.CorsPolicy) []filesource.Object {
	out := make([]filesource.Object, len(ps))
	for i, p := range ps {
		out[i] = filesource.Object{File: "policies.yaml", Policy: *p}
	}
	return out
}

var shop = objects(
	gen.CorsPolicy("api", gen.WithHosts("api.example.com"), gen.WithPathPrefixes("/v2"),
		gen.WithOrigins("https://app.example.com"), gen.WithMethods("PUT"), gen.WithHeaders("content-type"), gen.WithCredentials()),
	gen.CorsPolicy("api-public", gen.WithHosts("api.example.com"), gen.WithPathPrefixes("/v2/public"), gen.WithOrigins("*")),
	gen.CorsPolicy("subdomains", gen.WithHosts("*.example.com"), gen.WithOrigins("https://app.example.com")),
	gen.CorsPolicy("older", gen.WithHosts("legacy.example.com"), gen.WithOrigins("https://app.example.com")),
	gen.CorsPolicy("younger", gen.WithAge(time.Hour), gen.WithHosts("legacy.example.com"), gen.WithOrigins("https://other.example.com")),
)

func preflight(url, origin, method, headers string) explain.Request {
	h := []string{"Origin: " + origin, "Access-Control-Request-Method: " + method}
	if headers != "" {
		h = append(h, "Access-Control-Request-Headers: "+headers)
	}
	return explain.Request{Method: "OPTIONS", URL: url, Headers: h}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc        string
		req         explain.Request
		policy      string // "" = none
		losers      []string
		why         string // substring of the first loser's why
		outcome     string
		status      int
		chrome      string // substring
		firefox     string // substring
		fix         string // substring of a change; "-" = no fix expected at all
		noFix       string // substring of Fix.None
		blocked     bool
		allowHeader string // a header the edge sets, name=value
	}{
		{desc: "allowed preflight: 204 and the exact headers", req: preflight("https://api.example.com/v2/orders", "https://app.example.com", "PUT", "content-type"),
			policy: "default/api", losers: []string{"default/subdomains"}, why: "exact host beats a wildcard", outcome: "preflight-allowed", status: 204,
			fix: "-", allowHeader: "access-control-allow-methods=PUT"},
		{desc: "the longer path prefix wins", req: explain.Request{URL: "https://api.example.com/v2/public/x", Headers: []string{"Origin: https://x.example"}},
			policy: "default/api-public", losers: []string{"default/api", "default/subdomains"}, why: "longer path prefix", outcome: "actual-allowed", fix: "-",
			allowHeader: "access-control-allow-origin=*"},
		{desc: "same host and prefix: the older policy wins", req: explain.Request{URL: "https://legacy.example.com/", Headers: []string{"Origin: https://app.example.com"}},
			policy: "default/older", losers: []string{"default/younger", "default/subdomains"}, why: "older policy wins", outcome: "actual-allowed", fix: "-"},
		{desc: "method not allowed: 403, browsers' wording, and the fix", req: preflight("https://api.example.com/v2/orders", "https://app.example.com", "PATCH", ""),
			policy: "default/api", losers: []string{"default/subdomains"}, outcome: "preflight-rejected", status: 403, blocked: true,
			chrome:  "Response to preflight request doesn't pass access control check: No 'Access-Control-Allow-Origin' header is present on the requested resource.",
			firefox: "(Reason: CORS header ‘Access-Control-Allow-Origin’ missing). Status code: 403.", fix: `add "PATCH" to spec.allowMethods`},
		{desc: "denied actual request: the edge strips CORS headers", req: explain.Request{URL: "https://api.example.com/v2/x", Headers: []string{"Origin: https://evil.example"}},
			policy: "default/api", outcome: "actual-denied", blocked: true, losers: []string{"default/subdomains"},
			chrome:  "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
			firefox: "(Reason: CORS header ‘Access-Control-Allow-Origin’ missing).", fix: `add "https://evil.example" to spec.allowOrigins`},
		{desc: "credentials under a policy without them: the browser refuses what the edge allowed",
			req:    explain.Request{URL: "https://shop.example.com/", Headers: []string{"Origin: https://app.example.com"}, Credentials: true},
			policy: "default/subdomains", outcome: "actual-allowed", blocked: true,
			chrome:  "The value of the 'Access-Control-Allow-Credentials' header in the response is '' which must be 'true' when the request's credentials mode is 'include'.",
			firefox: "expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’", fix: "set spec.allowCredentials: true"},
		{desc: "null with credentials has no safe fix", req: explain.Request{URL: "https://api.example.com/v2/x", Headers: []string{"Origin: null"}, Credentials: true},
			policy: "default/api", outcome: "actual-denied", blocked: true, losers: []string{"default/subdomains"}, noFix: `"null"`},
		{desc: "no policy: a new one is proposed", req: explain.Request{URL: "https://api.example.org/", Headers: []string{"Origin: https://app.example.com"}},
			outcome: "no-policy", blocked: true, fix: "create CorsPolicy default/cors-api-example-org"},
		{desc: "no Origin: not CORS", req: explain.Request{URL: "https://api.example.com/v2/x"}, policy: "default/api", losers: []string{"default/subdomains"},
			outcome: "not-cors", fix: "-"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			res, err := explain.Explain(shop, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := ptrString(res.Policy); got != tc.policy {
				t.Errorf("policy %q, want %q", got, tc.policy)
			}
			var losers []string
			for _, l := range res.Losers {
				losers = append(losers, l.Policy)
			}
			if strings.Join(losers, ",") != strings.Join(tc.losers, ",") {
				t.Errorf("losers %v, want %v", losers, tc.losers)
			}
			if tc.why != "" && (len(res.Losers) == 0 || !strings.Contains(res.Losers[0].Why, tc.why)) {
				t.Errorf("why = %+v, want it to say %q", res.Losers, tc.why)
			}
			if res.Outcome != tc.outcome || res.Status != tc.status {
				t.Errorf("outcome %s status %d, want %s %d", res.Outcome, res.Status, tc.outcome, tc.status)
			}
			if res.Browser.Allowed == tc.blocked {
				t.Errorf("browser allowed %v, want %v (%+v)", res.Browser.Allowed, !tc.blocked, res.Browser)
			}
			if !strings.Contains(res.Browser.Chrome, tc.chrome) || !strings.Contains(res.Browser.Firefox, tc.firefox) {
				t.Errorf("browser messages:\n chrome  %q\n firefox %q\nwant %q / %q", res.Browser.Chrome, res.Browser.Firefox, tc.chrome, tc.firefox)
			}
			switch {
			case tc.fix == "-":
				if res.Fix != nil {
					t.Errorf("fix %+v for a request the browser allows", res.Fix)
				}
			case tc.noFix != "":
				if res.Fix == nil || !strings.Contains(res.Fix.None, tc.noFix) {
					t.Errorf("fix %+v, want none saying %q", res.Fix, tc.noFix)
				}
			case tc.fix != "":
				if res.Fix == nil || res.Fix.None != "" || !strings.Contains(strings.Join(res.Fix.Changes, "; "), tc.fix) || res.Fix.YAML == "" {
					t.Errorf("fix %+v, want a change %q", res.Fix, tc.fix)
				}
			}
			if tc.allowHeader != "" {
				n, v, _ := strings.Cut(tc.allowHeader, "=")
				if res.Headers[n] != v {
					t.Errorf("header %s = %q, want %q (all %v)", n, res.Headers[n], v, res.Headers)
				}
			}
		})
	}
}

// TestFixIsVerified applies each proposed fix and explains again: the
// browser must then be let through.
func TestFixIsVerified(t *testing.T) {
	t.Parallel()
	req := preflight("https://api.example.com/v2/orders", "https://new.example.com", "DELETE", "x-trace-id,content-type")
	req.Credentials = true
	res, err := explain.Explain(shop, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Fix == nil || res.Fix.None != "" || len(res.Fix.Changes) != 3 {
		t.Fatalf("fix %+v, want three changes (origin, method, header)", res.Fix)
	}
	fixed, err := filesource.Load(writeFile(t, res.Fix.YAML))
	if err != nil {
		t.Fatal(err)
	}
	objs := append([]filesource.Object{}, shop[1:]...)
	objs = append(objs, fixed...)
	again, err := explain.Explain(objs, req)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Browser.Allowed || again.Outcome != "preflight-allowed" {
		t.Errorf("after the fix: outcome %s, browser %+v", again.Outcome, again.Browser)
	}
}

func TestJSONShape(t *testing.T) {
	t.Parallel()
	res, err := explain.Explain(shop, explain.Request{URL: "https://none.example.org/", Headers: []string{"Origin: https://a.example"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"policy", "kind", "outcome", "reason", "headers"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b)
		}
	}
	if m["policy"] != nil {
		t.Errorf("policy = %v, want null when no policy applies", m["policy"])
	}
}

func TestRequestErrors(t *testing.T) {
	t.Parallel()
	for _, req := range []explain.Request{
		{URL: ""},
		{URL: "/v2/orders"},
		{URL: "https://api.example.com/", Headers: []string{"Origin https://a.example"}},
	} {
		if _, err := explain.Explain(shop, req); err == nil {
			t.Errorf("Explain(%+v) succeeded; want an error saying what to write", req)
		}
	}
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := t.TempDir() + "/fixed.yaml"
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}
