package main_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// pathsPolicies is issue 10's finding 4 as it was seen: a permissive policy
// on /public (a partner may read it with credentials) and a strict one on
// every other path of the host.
const pathsPolicies = `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata: {name: strict, namespace: shop}
spec:
  hosts: [api.example.com]
  allowOrigins: [https://app.example.com]
  allowCredentials: true
---
apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata: {name: public, namespace: shop}
spec:
  hosts: [api.example.com]
  pathPrefixes: [/public]
  allowOrigins: [https://partner.example]
  allowMethods: [PUT]
  allowCredentials: true
`

// A preflight whose path /public's policy sees as its own, and an upstream
// that decodes %2F or resolves dot segments serves as /private, is refused:
// answered 403 without CORS headers, never with /public's. Before, the binary
// answered each of these 204 with Access-Control-Allow-Origin:
// https://partner.example.
func TestAmbiguousPathsThroughTheBinary(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "policies.yaml")
	if err := os.WriteFile(file, []byte(pathsPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, file)
	sim := envoy(t, s.addr)
	preflight := func(path string) *envoystandin.Response {
		t.Helper()
		res, err := sim.Do(context.Background(), envoystandin.Request{Method: "OPTIONS", Scheme: "https", Authority: "api.example.com", Path: path,
			Headers: envoystandin.NewHeaders("origin", "https://partner.example", "access-control-request-method", "PUT")}, upstream)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	// The control: /public itself is the partner's.
	if res := preflight("/public/data"); res.Status != 204 || res.Headers.Get("access-control-allow-origin") != "https://partner.example" {
		t.Fatalf("preflight for /public/data: %d, ACAO %q; want 204 for the partner (output:\n%s)", res.Status, res.Headers.Get("access-control-allow-origin"), s.output)
	}
	for _, path := range []string{
		"/public/..%2Fprivate",   // the spelling
		"/public/%2e%2e/private", // encoded dots
		"/public/../private",     // raw dots, from a non-browser client
		"/public/..%5Cprivate",   // encoded backslash
		"/public/..;/private",    // a path parameter on the dots
	} {
		res := preflight(path)
		if res.Status != 403 || res.UpstreamReached || res.Details != "cors_preflight_rejected_path_ambiguous" {
			t.Errorf("preflight for %s: status %d, details %q, upstream reached %v; want 403 at the edge, path ambiguous",
				path, res.Status, res.Details, res.UpstreamReached)
		}
		for _, hv := range res.Headers {
			if hv.Name == "access-control-allow-origin" || hv.Name == "access-control-allow-credentials" {
				t.Errorf("preflight for %s carries %s: %q", path, hv.Name, hv.Value)
			}
		}
	}

	// An actual request on an ambiguous path reaches the upstream, but its
	// response leaves without the upstream's ACAO "*": the partner's page
	// cannot read /private.
	res, err := sim.Do(context.Background(), envoystandin.Request{Method: "GET", Scheme: "https", Authority: "api.example.com", Path: "/public/..%2Fprivate",
		Headers: envoystandin.NewHeaders("origin", "https://partner.example")}, upstream)
	if err != nil {
		t.Fatal(err)
	}
	if !res.UpstreamReached || res.Status != 200 || len(res.Headers.Values("access-control-allow-origin")) != 0 {
		t.Errorf("GET /public/..%%2Fprivate: status %d, upstream reached %v, ACAO %q; want the upstream's 200 without ACAO",
			res.Status, res.UpstreamReached, res.Headers.Values("access-control-allow-origin"))
	}
}
