package controllers_test

import (
	"context"
	"testing"

	"github.com/corsgate/corsgate/test/envoystandin"
	"github.com/corsgate/corsgate/test/servebench"
)

// A route-attached policy end to end: Gateway and HTTPRoute objects in the
// API server, the policy targeting the route, the table builder's scope,
// the ext_proc server on real gRPC, asked through the Envoy stand-in.
func TestRouteAttachedPolicyThroughEnvoy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim := servebench.ServeExtProc(t, store)
	ns := namespace(t)
	infra := namespace(t)
	host := "shop." + ns + ".example.com"
	createGateway(t, infra, "edge", "http=*."+ns+".example.com")
	createRoute(t, ns, "shop", infra+"/edge", []string{host}, []string{"api=/api"}, true)
	if err := k8s.Create(ctx, attachedPolicy(ns, "cors", "https://app.example.com", targetRef("HTTPRoute", "shop", "api"))); err != nil {
		t.Fatal(err)
	}
	waitServedBy(t, host, "/api", ns+"/cors")

	preflight := func(path, origin string) *envoystandin.Response {
		t.Helper()
		res, err := sim.Do(ctx, envoystandin.Request{Method: "OPTIONS", Authority: host, Path: path,
			Headers: envoystandin.NewHeaders("origin", origin, "access-control-request-method", "GET")},
			envoystandin.Upstream{Status: 404})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := preflight("/api/orders", "https://app.example.com"); res.Status != 204 || res.UpstreamReached ||
		res.Headers.Get("access-control-allow-origin") != "https://app.example.com" {
		t.Errorf("preflight to the route's rule: %d %v (upstream reached %v); want 204 from the edge allowing the origin", res.Status, res.Headers, res.UpstreamReached)
	}
	if res := preflight("/api/orders", "https://evil.example"); res.Headers.Get("access-control-allow-origin") != "" {
		t.Errorf("preflight from another origin allowed: %d %v", res.Status, res.Headers)
	}
	// Outside the rule's PathPrefix no policy applies: the edge leaves the
	// preflight alone, and the upstream's answer comes back.
	if res := preflight("/admin", "https://app.example.com"); res.Status != 404 || !res.UpstreamReached || res.Headers.Get("access-control-allow-origin") != "" {
		t.Errorf("preflight outside the route's rule: %d %v (upstream reached %v); want the upstream's 404 without CORS headers", res.Status, res.Headers, res.UpstreamReached)
	}
}
