package extproc_test

// These tests run HTTP requests through test/envoystandin, a Go ext_proc
// client that reproduces Envoy's ext_proc filter (no Envoy binary can run
// here), talking to the real server over real gRPC on loopback. They assert
// what the browser would receive.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/test/envoystandin"
)

// filterConfig is the ext_proc filter as the project documents it, except
// for message_timeout: Envoy's 200 ms default is a production knob, and on a
// loaded CI machine under -race it would turn scheduling noise into 504s.
// Nothing here asserts on time.
func filterConfig(allowModeOverride bool) *extprocfilterv3.ExternalProcessor {
	return &extprocfilterv3.ExternalProcessor{
		AllowModeOverride: allowModeOverride,
		MessageTimeout:    durationpb.New(time.Minute),
	}
}

func newSim(conn *grpc.ClientConn, allowModeOverride bool, v envoystandin.Version) *envoystandin.Sim {
	return envoystandin.New(conn, envoystandin.Config{Filter: filterConfig(allowModeOverride), Version: v})
}

// corsView is the part of a response these tests judge: the CORS headers
// and Vary, in order, one entry per header line.
func corsView(h envoystandin.Headers) envoystandin.Headers {
	var out envoystandin.Headers
	for _, e := range h {
		if n := strings.ToLower(e.Name); strings.HasPrefix(n, "access-control-") || n == "vary" {
			out = append(out, envoystandin.Header{Name: n, Value: e.Value})
		}
	}
	return out
}

var h = envoystandin.NewHeaders

// envoyCase is one HTTP exchange and what the browser must see.
type envoyCase struct {
	desc     string
	req      envoystandin.Request
	upstream envoystandin.Upstream
	// allowModeOverride false: Envoy ignores mode_override and always sends
	// response_headers.
	ignoreModeOverride bool

	wantStatus   int
	wantCORS     envoystandin.Headers // access-control-* and vary, exactly
	wantUpstream bool                 // the request reached the upstream
	wantDetails  string               // "" = not checked
	// wantMessages is how many messages Envoy sent on the stream (Stats):
	// 1 when the response phase is skipped; 0 = not checked.
	wantMessages uint64
	// wantHeaders are other response headers that must be present as given.
	wantHeaders envoystandin.Headers
}

func apiRequest(method string, headers ...string) envoystandin.Request {
	return envoystandin.Request{Method: method, Scheme: "https", Authority: "api.example.com", Path: "/api/items?page=2", Headers: h(headers...)}
}

func hostRequest(host, method string, headers ...string) envoystandin.Request {
	return envoystandin.Request{Method: method, Scheme: "https", Authority: host, Path: "/", Headers: h(headers...)}
}

// upstreamWithCORS is an application that sets its own, wrong, CORS headers.
var upstreamWithCORS = envoystandin.Upstream{Status: 200, Headers: h(
	"content-type", "application/json",
	"access-control-allow-origin", "*",
	"access-control-allow-methods", "GET",
	"vary", "Accept-Encoding",
	"x-request-id", "r-1",
), Body: []byte(`{}`)}

var envoyCases = []envoyCase{{
	desc: "allowed preflight: 204 at the edge with the exact CORS headers; the upstream never sees it",
	req: apiRequest("OPTIONS", "origin", "https://app.example", "access-control-request-method", "PUT",
		"access-control-request-headers", "x-trace-id,content-type"),
	upstream:   upstreamWithCORS,
	wantStatus: 204,
	wantCORS: h(
		"access-control-allow-origin", "https://app.example",
		"access-control-allow-credentials", "true",
		"access-control-allow-methods", "PUT,DELETE",
		"access-control-allow-headers", "x-trace-id,content-type",
		"access-control-max-age", "600",
		"vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
	),
	wantDetails:  "cors_preflight_allowed",
	wantMessages: 1,
}, {
	desc:         "preflight from an origin not allowed: 403 without any CORS header (Fetch §3.2.3), reason in details",
	req:          apiRequest("OPTIONS", "origin", "https://evil.example", "access-control-request-method", "PUT"),
	upstream:     upstreamWithCORS,
	wantStatus:   403,
	wantDetails:  "cors_preflight_rejected_origin_not_allowed",
	wantMessages: 1,
}, {
	desc: "preflight asking for a header not allowed: 403",
	req: apiRequest("OPTIONS", "origin", "https://app.example", "access-control-request-method", "PUT",
		"access-control-request-headers", "x-trace-id,x-admin"),
	upstream:    upstreamWithCORS,
	wantStatus:  403,
	wantDetails: "cors_preflight_rejected_header_not_allowed",
}, {
	desc: "preflight under unmatchedPreflight Forward: reaches the upstream, whose answer passes untouched",
	req: hostRequest("forward.example.com", "OPTIONS", "origin", "https://evil.example",
		"access-control-request-method", "PUT"),
	upstream:     envoystandin.Upstream{Status: 200, Headers: h("access-control-allow-origin", "https://evil.example", "allow", "GET, PUT")},
	wantStatus:   200,
	wantCORS:     h("access-control-allow-origin", "https://evil.example"),
	wantHeaders:  h("allow", "GET, PUT"),
	wantUpstream: true,
	wantDetails:  "via_upstream",
	wantMessages: 1,
}, {
	desc:       "allowed actual request: the edge's ACAO replaces the upstream's *, exactly one ACAO; Origin joins Vary",
	req:        apiRequest("GET", "origin", "https://app.example"),
	upstream:   upstreamWithCORS,
	wantStatus: 200,
	wantCORS: h(
		"access-control-allow-origin", "https://app.example",
		"access-control-allow-credentials", "true",
		"access-control-expose-headers", "x-request-id",
		"vary", "Accept-Encoding, Origin",
	),
	wantHeaders:  h("content-type", "application/json", "x-request-id", "r-1"),
	wantUpstream: true,
	wantMessages: 2,
}, {
	desc:         "actual request from an origin not allowed: no CORS header at all, upstream's removed, Vary: Origin",
	req:          apiRequest("POST", "origin", "https://evil.example"),
	upstream:     upstreamWithCORS,
	wantStatus:   200,
	wantCORS:     h("vary", "Accept-Encoding, Origin"),
	wantUpstream: true,
}, {
	desc:         "malformed Origin (two origins joined by Envoy): denied like any other",
	req:          apiRequest("GET", "origin", "https://app.example", "origin", "https://evil.example"),
	upstream:     upstreamWithCORS,
	wantStatus:   200,
	wantCORS:     h("vary", "Accept-Encoding, Origin"),
	wantUpstream: true,
}, {
	desc:         "no Origin under a policy: not CORS, but the answer varies on Origin and upstream CORS headers go",
	req:          apiRequest("GET"),
	upstream:     upstreamWithCORS,
	wantStatus:   200,
	wantCORS:     h("vary", "Accept-Encoding, Origin"),
	wantUpstream: true,
}, {
	desc:         "upstream Vary already names Origin (any case): kept as is, not repeated",
	req:          apiRequest("GET"),
	upstream:     envoystandin.Upstream{Headers: h("vary", "accept-encoding, origin")},
	wantStatus:   200,
	wantCORS:     h("vary", "accept-encoding, origin"),
	wantUpstream: true,
}, {
	desc:         "upstream Vary: * already varies on everything: kept",
	req:          apiRequest("GET", "origin", "https://evil.example"),
	upstream:     envoystandin.Upstream{Headers: h("vary", "*")},
	wantStatus:   200,
	wantCORS:     h("vary", "*"),
	wantUpstream: true,
}, {
	desc:         "no upstream Vary: Vary: Origin",
	req:          apiRequest("GET"),
	upstream:     envoystandin.Upstream{},
	wantStatus:   200,
	wantCORS:     h("vary", "Origin"),
	wantUpstream: true,
}, {
	desc:         "no policy for the host: the response phase is skipped (mode_override), the response untouched",
	req:          hostRequest("other.example.com", "GET", "origin", "https://app.example"),
	upstream:     upstreamWithCORS,
	wantStatus:   200,
	wantCORS:     h("access-control-allow-origin", "*", "access-control-allow-methods", "GET", "vary", "Accept-Encoding"),
	wantUpstream: true,
	wantMessages: 1,
}, {
	desc:               "no policy, Envoy ignoring mode_override (allow_mode_override false): response_headers still comes and passes unmodified",
	req:                hostRequest("other.example.com", "GET", "origin", "https://app.example"),
	upstream:           upstreamWithCORS,
	ignoreModeOverride: true,
	wantStatus:         200,
	wantCORS:           h("access-control-allow-origin", "*", "access-control-allow-methods", "GET", "vary", "Accept-Encoding"),
	wantUpstream:       true,
	wantMessages:       2,
}, {
	desc:         "no policy for the path (policy covers /api only)",
	req:          envoystandin.Request{Method: "GET", Authority: "api.example.com", Path: "/apix", Headers: h("origin", "https://app.example")},
	upstream:     upstreamWithCORS,
	wantStatus:   200,
	wantCORS:     h("access-control-allow-origin", "*", "access-control-allow-methods", "GET", "vary", "Accept-Encoding"),
	wantUpstream: true,
	wantMessages: 1,
}, {
	desc: "DryRun, allowed preflight: not answered at the edge, the upstream answers, nothing changed",
	req: hostRequest("dryrun.example.com", "OPTIONS", "origin", "https://app.example",
		"access-control-request-method", "PUT"),
	upstream:     upstreamWithCORS,
	wantStatus:   200,
	wantCORS:     h("access-control-allow-origin", "*", "access-control-allow-methods", "GET", "vary", "Accept-Encoding"),
	wantUpstream: true,
	wantMessages: 1,
}, {
	desc:         "DryRun, denied actual request: nothing removed, nothing added",
	req:          hostRequest("dryrun.example.com", "GET", "origin", "https://evil.example"),
	upstream:     upstreamWithCORS,
	wantStatus:   200,
	wantCORS:     h("access-control-allow-origin", "*", "access-control-allow-methods", "GET", "vary", "Accept-Encoding"),
	wantUpstream: true,
	wantMessages: 1,
}, {
	desc:               "DryRun with Envoy ignoring mode_override: still nothing changed",
	req:                hostRequest("dryrun.example.com", "GET", "origin", "https://app.example"),
	upstream:           upstreamWithCORS,
	ignoreModeOverride: true,
	wantStatus:         200,
	wantCORS:           h("access-control-allow-origin", "*", "access-control-allow-methods", "GET", "vary", "Accept-Encoding"),
	wantUpstream:       true,
	wantMessages:       2,
}, {
	desc: "local reply from an earlier filter (jwt 401): the stream starts with response_headers and passes through",
	req: envoystandin.Request{Method: "GET", Authority: "api.example.com", Path: "/api/items",
		Headers:    h("origin", "https://app.example"),
		LocalReply: &envoystandin.LocalReply{Status: 401, Headers: h("www-authenticate", "Bearer"), Details: "jwt_authn_access_denied"}},
	upstream:     upstreamWithCORS,
	wantStatus:   401,
	wantHeaders:  h("www-authenticate", "Bearer"),
	wantDetails:  "jwt_authn_access_denied",
	wantMessages: 1,
}, {
	desc: "exposeHeaders * with credentials: the upstream's own header names, minus safelisted, Set-Cookie and CORS ones",
	req:  hostRequest("expose.example.com", "GET", "origin", "https://app.example"),
	upstream: envoystandin.Upstream{Headers: h(
		"content-type", "text/plain",
		"x-request-id", "r-1",
		"set-cookie", "a=1",
		"x-ratelimit-remaining", "9",
		"access-control-expose-headers", "*",
		"cache-control", "no-store",
		"x-request-id", "r-2",
	)},
	wantStatus: 200,
	wantCORS: h(
		"access-control-allow-origin", "https://app.example",
		"access-control-allow-credentials", "true",
		"access-control-expose-headers", "x-request-id, x-ratelimit-remaining",
		"vary", "Origin",
	),
	wantUpstream: true,
}, {
	desc:       "exposeHeaders * with credentials and nothing to expose: no Access-Control-Expose-Headers",
	req:        hostRequest("expose.example.com", "GET", "origin", "https://app.example"),
	upstream:   envoystandin.Upstream{Headers: h("content-type", "text/plain")},
	wantStatus: 200,
	wantCORS: h(
		"access-control-allow-origin", "https://app.example",
		"access-control-allow-credentials", "true",
		"vary", "Origin",
	),
	wantUpstream: true,
}}

func TestThroughEnvoy(t *testing.T) {
	t.Parallel()
	conn := serve(t, newStore(t, appPolicy, forwardPolicy, dryRunPolicy, exposeAllPolicy))
	// Every case runs against the oldest and the newest Envoy behaviour the
	// stand-in reproduces: mode_override semantics, stream closing and
	// spurious-reply handling changed between them (docs/envoy.md#version-timeline).
	for _, v := range []envoystandin.Version{envoystandin.Envoy133, envoystandin.Latest} {
		for _, tc := range envoyCases {
			t.Run(fmt.Sprintf("%v/%s", v, tc.desc), func(t *testing.T) {
				t.Parallel()
				sim := newSim(conn, !tc.ignoreModeOverride, v)
				res, err := sim.Do(context.Background(), tc.req, tc.upstream)
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				checkResponse(t, &tc, res)
				if st := sim.Stats(); tc.wantMessages != 0 && st.StreamMsgsSent != tc.wantMessages {
					t.Errorf("Envoy sent %d ext_proc messages, want %d (stats %+v)", st.StreamMsgsSent, tc.wantMessages, st)
				}
				if st := sim.Stats(); st.RejectedHeaderMutations != 0 || st.SpuriousMsgsReceived != 0 || st.StreamsFailed != 0 {
					t.Errorf("Envoy rejected part of the server's answers: stats %+v\nlog: %q", st, res.Log)
				}
			})
		}
	}
}

func checkResponse(t *testing.T, tc *envoyCase, res *envoystandin.Response) {
	t.Helper()
	if res.Status != tc.wantStatus {
		t.Errorf("status %d, want %d (details %q, log %q)", res.Status, tc.wantStatus, res.Details, res.Log)
	}
	if got := corsView(res.Headers); !slices.Equal(got, tc.wantCORS) {
		t.Errorf("CORS headers and Vary:\n%s\nwant:\n%s", got, tc.wantCORS)
	}
	for _, w := range tc.wantHeaders {
		if got := res.Headers.Values(w.Name); !slices.Contains(got, w.Value) {
			t.Errorf("header %s: got %q, want %q among them", w.Name, got, w.Value)
		}
	}
	if res.UpstreamReached != tc.wantUpstream {
		t.Errorf("upstream reached: %v, want %v", res.UpstreamReached, tc.wantUpstream)
	}
	if tc.wantUpstream && res.UpstreamRequest != nil {
		// The request itself is never changed: same method and CORS request
		// headers as sent.
		if res.UpstreamRequest.Method != tc.req.Method {
			t.Errorf("upstream saw method %q, want %q", res.UpstreamRequest.Method, tc.req.Method)
		}
		for _, name := range []string{"origin", "access-control-request-method", "access-control-request-headers"} {
			if got, want := res.UpstreamRequest.Headers.Get(name), joinedValues(tc.req.Headers, name); got != want {
				t.Errorf("upstream saw %s %q, want %q", name, got, want)
			}
		}
	}
	if tc.wantDetails != "" && res.Details != tc.wantDetails {
		t.Errorf("details %q, want %q", res.Details, tc.wantDetails)
	}
}

// joinedValues is what Envoy forwards for an inline request header sent
// several times: the values joined with ",".
func joinedValues(hs envoystandin.Headers, name string) string {
	return strings.Join(hs.Values(name), ",")
}

// The observer sees one decision per HTTP request a policy decided, with its
// reason and the offending value; requests no policy applies to are not
// observed.
func TestObserverSeesEveryDecision(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	conn := serve(t, newStore(t, appPolicy, dryRunPolicy), extproc.WithObserver(rec))
	sim := newSim(conn, true, envoystandin.Latest)

	requests := []envoystandin.Request{
		apiRequest("OPTIONS", "origin", "https://app.example", "access-control-request-method", "PUT"),
		apiRequest("OPTIONS", "origin", "https://app.example", "access-control-request-method", "PATCH"),
		apiRequest("GET", "origin", "https://evil.example"),
		apiRequest("GET"),
		hostRequest("other.example.com", "GET", "origin", "https://app.example"),
		hostRequest("dryrun.example.com", "OPTIONS", "origin", "https://app.example", "access-control-request-method", "PUT"),
	}
	for _, req := range requests { // in order, so the observed order is known
		if _, err := sim.Do(context.Background(), req, envoystandin.Upstream{}); err != nil {
			t.Fatalf("Do: %v", err)
		}
	}
	want := []observed{
		{policy: "app", kind: cors.KindPreflight, action: cors.ActionRespond, reason: cors.ReasonAllowed},
		{policy: "app", kind: cors.KindPreflight, action: cors.ActionRespond, reason: cors.ReasonMethodNotAllowed, detail: "PATCH"},
		{policy: "app", kind: cors.KindActual, action: cors.ActionContinue, reason: cors.ReasonOriginNotAllowed, detail: "https://evil.example"},
		{policy: "app", kind: cors.KindNotCORS, action: cors.ActionContinue, reason: cors.ReasonNotCORS},
		{policy: "dryrun", kind: cors.KindPreflight, action: cors.ActionPassThrough, reason: cors.ReasonAllowed, dryRun: true},
	}
	if got := rec.all(); !slices.Equal(got, want) {
		t.Errorf("observed:\n%+v\nwant:\n%+v", got, want)
	}
}

// Many HTTP requests at once over one gRPC connection, as one Envoy worker
// multiplexes them (docs/envoy.md#connections-latency-and-health-checks); run with -race. Each answer must match its
// own request: streams share nothing but the table.
func TestConcurrentRequestsOverOneConnection(t *testing.T) {
	t.Parallel()
	conn := serve(t, newStore(t, appPolicy, forwardPolicy, dryRunPolicy, exposeAllPolicy))
	sim := newSim(conn, true, envoystandin.Latest)

	const rounds = 25
	var wg sync.WaitGroup
	for i := range rounds {
		for j := range envoyCases {
			tc := &envoyCases[j]
			if tc.ignoreModeOverride {
				continue
			}
			wg.Go(func() {
				res, err := sim.Do(context.Background(), tc.req, tc.upstream)
				if err != nil {
					t.Errorf("round %d, %s: Do: %v", i, tc.desc, err)
					return
				}
				if got := corsView(res.Headers); res.Status != tc.wantStatus || !slices.Equal(got, tc.wantCORS) {
					t.Errorf("round %d, %s: got %d\n%s\nwant %d\n%s", i, tc.desc, res.Status, got, tc.wantStatus, tc.wantCORS)
				}
			})
		}
	}
	wg.Wait()
	if st := sim.Stats(); st.StreamsFailed != 0 || st.SpuriousMsgsReceived != 0 || st.RejectedHeaderMutations != 0 {
		t.Errorf("stats %+v", st)
	}
}
