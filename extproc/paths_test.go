package extproc_test

// Paths matched as the upstream will read them (docs/paths.md), through the
// Envoy stand-in: a path whose readings select different policies is granted
// by none of them.

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/test/envoystandin"
)

// The setup: a permissive policy on /public (a partner's origin may
// read it with credentials), a strict one on everything else of the host.
var (
	strictRootPolicy = policy{
		name: "strict", hosts: []string{"paths.example.com"},
		cfg: cors.Config{AllowOrigins: []string{"https://app.example"}, AllowCredentials: true},
	}
	publicPolicy = policy{
		name: "public", hosts: []string{"paths.example.com"}, prefixes: []string{"/public"},
		cfg: cors.Config{AllowOrigins: []string{"https://partner.example"}, AllowMethods: []string{"PUT"}, AllowCredentials: true},
	}
	dryRootPolicy = policy{
		name: "dry-root", hosts: []string{"dry.example.com"},
		cfg: cors.Config{AllowOrigins: []string{"https://app.example"}, Mode: cors.ModeDryRun},
	}
	dryPublicPolicy = policy{
		name: "dry-public", hosts: []string{"dry.example.com"}, prefixes: []string{"/public"},
		cfg: cors.Config{AllowOrigins: []string{"https://partner.example"}, AllowMethods: []string{"PUT"}, Mode: cors.ModeDryRun},
	}
)

func pathRequest(host, method, path string, headers ...string) envoystandin.Request {
	return envoystandin.Request{Method: method, Scheme: "https", Authority: host, Path: path, Headers: h(headers...)}
}

func partnerPreflight(host, path string) envoystandin.Request {
	return pathRequest(host, "OPTIONS", path, "origin", "https://partner.example", "access-control-request-method", "PUT")
}

func TestAmbiguousPathsThroughEnvoy(t *testing.T) {
	t.Parallel()
	conn := serve(t, newStore(t, strictRootPolicy, publicPolicy, dryRootPolicy, dryPublicPolicy))
	partnerAllowed := h(
		"access-control-allow-origin", "https://partner.example",
		"access-control-allow-credentials", "true",
		"access-control-allow-methods", "PUT",
		"vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
	)
	cases := []envoyCase{{
		desc:        "control: a preflight for /public from the partner is answered 204",
		req:         partnerPreflight("paths.example.com", "/public/data"),
		wantStatus:  204,
		wantCORS:    partnerAllowed,
		wantDetails: "cors_preflight_allowed",
	}, {
		desc:        "readings that agree (%2F under one policy): as before",
		req:         pathRequest("paths.example.com", "OPTIONS", "/files/a%2Fb", "origin", "https://app.example", "access-control-request-method", "GET"),
		wantStatus:  204,
		wantCORS:    h("access-control-allow-origin", "https://app.example", "access-control-allow-credentials", "true", "vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
		wantDetails: "cors_preflight_allowed",
	}, {
		desc:     "actual request whose readings agree: the policy's headers",
		req:      pathRequest("paths.example.com", "GET", "/public/a%2Fb?x=..%2F", "origin", "https://partner.example"),
		upstream: upstreamWithCORS,
		wantCORS: h("access-control-allow-origin", "https://partner.example", "access-control-allow-credentials", "true",
			"vary", "Accept-Encoding, Origin"),
		wantStatus: 200, wantUpstream: true,
	}, {
		desc:     "actual request to /public/..%2Fprivate: reaches the upstream, leaves without any CORS header",
		req:      pathRequest("paths.example.com", "GET", "/public/..%2Fprivate", "origin", "https://partner.example"),
		upstream: upstreamWithCORS,
		// upstreamWithCORS says ACAO "*": removed, so the browser withholds
		// /private from the partner's page.
		wantCORS:   h("vary", "Accept-Encoding, Origin"),
		wantStatus: 200, wantUpstream: true,
	}, {
		desc:         "DryRun policies on both readings: nothing changes, the upstream answers the preflight",
		req:          partnerPreflight("dry.example.com", "/public/..%2Fprivate"),
		upstream:     upstreamWithCORS,
		wantStatus:   200,
		wantCORS:     h("access-control-allow-origin", "*", "access-control-allow-methods", "GET", "vary", "Accept-Encoding"),
		wantUpstream: true,
	}}
	for _, path := range []string{
		"/public/..%2Fprivate", "/public/..%2fprivate", "/public/%2e%2e/private", "/public/%2E%2e/private",
		"/public/../private", "/public/..%5Cprivate", `/public/..\private`, "/public/..;/private",
		"/public/a%2Fb/../../private", "/public/..%2Fprivate?page=2",
	} {
		cases = append(cases, envoyCase{
			desc:        "preflight for " + path + ": 403 without CORS headers",
			req:         partnerPreflight("paths.example.com", path),
			upstream:    upstreamWithCORS,
			wantStatus:  403,
			wantDetails: "cors_preflight_rejected_path_ambiguous",
		})
	}
	for _, v := range []envoystandin.Version{envoystandin.Envoy133, envoystandin.Latest} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%v/%s", v, tc.desc), func(t *testing.T) {
				t.Parallel()
				sim := newSim(conn, true, v)
				res, err := sim.Do(context.Background(), tc.req, tc.upstream)
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				checkResponse(t, &tc, res)
				if st := sim.Stats(); st.RejectedHeaderMutations != 0 || st.SpuriousMsgsReceived != 0 || st.StreamsFailed != 0 {
					t.Errorf("Envoy rejected part of the server's answers: stats %+v\nlog: %q", st, res.Log)
				}
			})
		}
	}
}

// The observer sees an ambiguous path as the policy of its most normalised
// reading, with reason path ambiguous and the path (without its query) as
// the detail.
func TestObserverSeesAmbiguousPaths(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	conn := serve(t, newStore(t, strictRootPolicy, publicPolicy, dryRootPolicy, dryPublicPolicy), extproc.WithObserver(rec))
	sim := newSim(conn, true, envoystandin.Latest)
	for _, req := range []envoystandin.Request{
		partnerPreflight("paths.example.com", "/public/..%2Fprivate?token=secret"),
		pathRequest("paths.example.com", "GET", "/public/%2e%2e/private", "origin", "https://partner.example"),
		pathRequest("paths.example.com", "GET", "/public/../private"),
		partnerPreflight("dry.example.com", "/public/..%2Fprivate"),
	} {
		if _, err := sim.Do(context.Background(), req, envoystandin.Upstream{}); err != nil {
			t.Fatalf("Do: %v", err)
		}
	}
	want := []observed{
		{policy: "strict", kind: cors.KindPreflight, action: cors.ActionRespond, reason: cors.ReasonPathAmbiguous, detail: "/public/..%2Fprivate"},
		{policy: "strict", kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonPathAmbiguous, detail: "/public/%2e%2e/private"},
		{policy: "strict", kind: cors.KindNotCORS, action: cors.ActionContinue, reason: cors.ReasonPathAmbiguous, detail: "/public/../private"},
		{policy: "dry-root", kind: cors.KindPreflight, action: cors.ActionPassThrough, reason: cors.ReasonPathAmbiguous, detail: "/public/..%2Fprivate", dryRun: true},
	}
	if got := rec.all(); !slices.Equal(got, want) {
		t.Errorf("observed:\n%+v\nwant:\n%+v", got, want)
	}
}
