package envoystandin_test

import (
	"context"
	"slices"
	"testing"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// docs/envoy.md#what-envoy-does-with-an-immediate-response, docs/envoy.md#how-the-local-reply-is-built, docs/envoy.md#what-the-stand-in-reproduces item 10: an ImmediateResponse to request_headers
// becomes a local reply built by Utility::prepareLocalReply.
func TestImmediateResponse(t *testing.T) {
	t.Parallel()
	preflight := envoystandin.Request{Method: "OPTIONS", Authority: "api.example", Path: "/v1",
		Headers: envoystandin.NewHeaders("origin", "https://app.example", "access-control-request-method", "PUT")}
	corsHeaders := sets(
		set("access-control-allow-origin", "https://app.example", false),
		set("access-control-allow-methods", "PUT", false),
		set("vary", "Origin", false),
	)
	tests := []struct {
		desc        string
		req         envoystandin.Request
		ir          *extprocv3.ImmediateResponse
		wantStatus  int
		wantHeaders []string
		wantBody    string
		wantDetails string
	}{
		{
			desc: "preflight 204: headers as set, details whitespace becomes _",
			req:  preflight,
			ir: &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_NoContent},
				Headers: corsHeaders, Details: "cors preflight\tallowed"},
			wantStatus: 204,
			wantHeaders: []string{"access-control-allow-origin", "https://app.example", "access-control-allow-methods", "PUT",
				"vary", "Origin"},
			wantDetails: "cors_preflight_allowed",
		},
		{
			desc:        "no status: 200",
			req:         preflight,
			ir:          &extprocv3.ImmediateResponse{},
			wantStatus:  200,
			wantHeaders: []string{},
		},
		{
			desc:        "status below 200: 200",
			req:         preflight,
			ir:          &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Continue}},
			wantStatus:  200,
			wantHeaders: []string{},
		},
		{
			desc: "empty body: content-length and content-type removed even if set",
			req:  preflight,
			ir: &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
				Headers: sets(set("content-type", "application/json", false), set("content-length", "12", false), set("x-reason", "origin", false))},
			wantStatus:  403,
			wantHeaders: []string{"x-reason", "origin"},
		},
		{
			desc:        "body: content-length set, content-type text/plain by default",
			req:         preflight,
			ir:          &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}, Body: []byte("denied")},
			wantStatus:  403,
			wantHeaders: []string{"content-length", "6", "content-type", "text/plain"},
			wantBody:    "denied",
		},
		{
			desc: "body: the server's content-type is kept",
			req:  preflight,
			ir: &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}, Body: []byte(`{}`),
				Headers: sets(set("content-type", "application/json", false))},
			wantStatus:  403,
			wantHeaders: []string{"content-type", "application/json", "content-length", "2"},
			wantBody:    `{}`,
		},
		{
			desc:        "HEAD: no body, content-length still describes it",
			req:         envoystandin.Request{Method: "HEAD", Authority: "api.example"},
			ir:          &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}, Body: []byte("denied")},
			wantStatus:  403,
			wantHeaders: []string{"content-length", "6", "content-type", "text/plain"},
		},
		{
			desc: "gRPC request: trailers-only 200 with grpc-status mapped from the HTTP code, message percent-encoded",
			req: envoystandin.Request{Method: "POST", Authority: "api.example", Path: "/pkg.Svc/Call",
				Headers: envoystandin.NewHeaders("content-type", "application/grpc")},
			ir:          &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}, Body: []byte("no 100% ~")},
			wantStatus:  200,
			wantHeaders: []string{"content-type", "application/grpc", "grpc-status", "7", "grpc-message", "no 100%25 %7E"},
		},
		{
			desc: "gRPC request: explicit grpc_status wins",
			req: envoystandin.Request{Method: "POST", Authority: "api.example", Path: "/pkg.Svc/Call",
				Headers: envoystandin.NewHeaders("content-type", "application/grpc+proto")},
			ir:          &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}, GrpcStatus: &extprocv3.GrpcStatus{Status: 16}},
			wantStatus:  200,
			wantHeaders: []string{"content-type", "application/grpc", "grpc-status", "16"},
		},
		{
			desc: "a bad header is only logged; entries after it are dropped",
			req:  preflight,
			ir: &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_NoContent},
				Headers: sets(set("x-first", "1", false), set("x-bad", "a\r\nb", false), set("x-after", "2", false))},
			wantStatus:  204,
			wantHeaders: []string{"x-first", "1"},
		},
		{
			desc: "the filter's mutation rules apply: x-envoy-* ignored",
			req:  preflight,
			ir: &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_NoContent},
				Headers: sets(set("x-envoy-overloaded", "true", false), set("x-ok", "1", false))},
			wantStatus:  204,
			wantHeaders: []string{"x-ok", "1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, proc := startProcessor(t, func(s *procStream) error {
				s.recv()
				s.send(immediate(tc.ir))
				s.drain()
				return nil
			})
			sim := newSim(conn, envoystandin.Config{})
			res, err := sim.Do(t.Context(), tc.req, envoystandin.Upstream{Body: []byte("from upstream")})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if res.Status != tc.wantStatus || res.Details != tc.wantDetails || res.UpstreamReached {
				t.Errorf("status %d details %q upstream %v; want %d %q and no upstream", res.Status, res.Details, res.UpstreamReached, tc.wantStatus, tc.wantDetails)
			}
			if got := flat(res.Headers); !slices.Equal(got, tc.wantHeaders) {
				t.Errorf("headers:\n got %q\nwant %q", got, tc.wantHeaders)
			}
			if string(res.Body) != tc.wantBody {
				t.Errorf("body %q, want %q", res.Body, tc.wantBody)
			}
			// docs/envoy.md#what-envoy-does-with-an-immediate-response: the stream is closed, no response_headers follows.
			rec := proc.next()
			if len(rec.msgs) != 1 || !isNormalEnd(rec.end) {
				t.Errorf("server: %d messages, end %v; want request_headers only, then the stream closed", len(rec.msgs), rec.end)
			}
		})
	}
}

// docs/envoy.md#which-filters-still-run: an ImmediateResponse to response_headers replaces the
// upstream response.
func TestImmediateResponseInResponsePhase(t *testing.T) {
	t.Parallel()
	conn, _ := startProcessor(t, answer(func(m *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if m.GetRequestHeaders() != nil {
			return requestHeadersReply(nil, nil)
		}
		return immediate(&extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_BadGateway}, Body: []byte("nope"), Details: "replaced"})
	}))
	sim := newSim(conn, envoystandin.Config{})
	res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"},
		envoystandin.Upstream{Headers: envoystandin.NewHeaders("x-upstream", "1"), Body: []byte("upstream body")})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if res.Status != 502 || string(res.Body) != "nope" || res.Details != "replaced" || res.Headers.Has("x-upstream") {
		t.Errorf("got %d %q %q %q; want the immediate response alone", res.Status, res.Body, res.Details, res.Headers)
	}
	if !res.UpstreamReached {
		t.Errorf("UpstreamReached = false; the upstream did answer before the response phase")
	}
}

// docs/envoy.md#streams-that-start-with-response-headers, docs/envoy.md#what-the-stand-in-reproduces item 8: a local reply from an earlier filter reaches
// ext_proc as a fresh stream whose first and only message is response_headers.
func TestLocalReplyFromEarlierFilter(t *testing.T) {
	t.Parallel()
	conn, proc := startProcessor(t, answer(func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		return responseHeadersReply(sets(set("access-control-allow-origin", "https://app.example", false)))
	}))
	sim := newSim(conn, envoystandin.Config{})
	res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "api.example", Path: "/v1",
		Headers: envoystandin.NewHeaders("origin", "https://app.example"),
		LocalReply: &envoystandin.LocalReply{Status: 401, Body: "Jwt is missing",
			Headers: envoystandin.NewHeaders("www-authenticate", "Bearer realm=\"api\""), Details: "jwt_authn_access_denied{Jwt_is_missing}"},
	}, envoystandin.Upstream{})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	rec := proc.next()
	if len(rec.msgs) != 1 || rec.msgs[0].GetResponseHeaders() == nil {
		t.Fatalf("server got %d messages starting with %T; want exactly one response_headers", len(rec.msgs), rec.msgs[0].GetRequest())
	}
	wantSeen := []string{":status", "401", "www-authenticate", "Bearer realm=\"api\"", "content-length", "14", "content-type", "text/plain"}
	if got := pairs(t, rec.msgs[0].GetResponseHeaders().GetHeaders()); !slices.Equal(got, wantSeen) {
		t.Errorf("response_headers:\n got %q\nwant %q", got, wantSeen)
	}
	if res.Status != 401 || res.Headers.Get("access-control-allow-origin") != "https://app.example" ||
		string(res.Body) != "Jwt is missing" || res.Details != "jwt_authn_access_denied{Jwt_is_missing}" || res.UpstreamReached {
		t.Errorf("got %d %q %q %q; want the 401 with the CORS header added", res.Status, res.Headers, res.Body, res.Details)
	}

	// With response headers SKIP there is no stream at all.
	skip := newSim(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{
		ProcessingMode: &extprocfilterv3.ProcessingMode{ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP}}})
	if _, err := skip.Do(t.Context(), envoystandin.Request{Authority: "api.example", LocalReply: &envoystandin.LocalReply{Status: 403}}, envoystandin.Upstream{}); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if n := skip.Stats().StreamsStarted; n != 0 {
		t.Errorf("streams_started = %d, want 0", n)
	}
}

// docs/envoy.md#which-reply-answers-which-message: an ImmediateResponse sent unsolicited while the request is
// upstream is still honoured.
func TestImmediateResponseBetweenPhases(t *testing.T) {
	t.Parallel()
	upstreamCalled := make(chan struct{})
	conn, _ := startProcessor(t, func(s *procStream) error {
		s.recv()
		s.send(requestHeadersReply(nil, nil))
		<-upstreamCalled
		s.send(immediate(&extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}}))
		s.drain()
		return nil
	})
	sim := newSim(conn, envoystandin.Config{})
	res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{
		Handler: func(ctx context.Context, _ *envoystandin.UpstreamRequest) (*envoystandin.UpstreamResponse, error) {
			close(upstreamCalled)
			<-ctx.Done() // the upstream request is reset by the local reply
			return nil, ctx.Err()
		},
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if res.Status != 403 || !slices.Equal(flat(res.Headers), []string{}) || !res.UpstreamReached {
		t.Errorf("got %d %q, upstream reached %v; want the 403 local reply after the upstream was called", res.Status, res.Headers, res.UpstreamReached)
	}
}
