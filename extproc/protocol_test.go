package extproc_test

// These tests speak the ext_proc protocol with a plain gRPC client, message by
// message, for what the Envoy stand-in would never send (protocol faults) and
// for the exact shape of the replies (fields Envoy is picky about).

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/cors"
)

// headerMap builds an Envoy header map from name/value pairs, values in
// raw_value as Envoy ≥1.27 sends them.
func headerMap(kv ...string) *corev3.HeaderMap {
	m := &corev3.HeaderMap{}
	for i := 0; i < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return m
}

func requestHeaders(kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv...), EndOfStream: true},
	}}
}

func responseHeaders(kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv...), EndOfStream: true},
	}}
}

var (
	// An actual CORS request under appPolicy: the response phase has work.
	actualGET = requestHeaders(":authority", "api.example.com", ":path", "/api/items", ":method", "GET",
		":scheme", "https", "origin", "https://app.example")
	// A request no policy applies to.
	unmatchedGET = requestHeaders(":authority", "other.example.com", ":path", "/", ":method", "GET", ":scheme", "https")
	// An allowed preflight under appPolicy.
	allowedPreflight = requestHeaders(":authority", "api.example.com", ":path", "/api/items", ":method", "OPTIONS",
		":scheme", "https", "origin", "https://app.example", "access-control-request-method", "PUT",
		"access-control-request-headers", "x-trace-id")
	upstreamOK = responseHeaders(":status", "200", "content-type", "text/plain")
)

// overwrite is a set_headers entry as Envoy needs it: the value in raw_value
// only, `append` explicitly false (append_action to match, for the day Envoy
// reads it).
func overwrite(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header: &corev3.HeaderValue{Key: name, RawValue: []byte(value)},
		//lint:ignore SA1019 Envoy's ext_proc reads only the deprecated append (docs/envoy.md#append-versus-overwrite).
		Append:       wrapperspb.Bool(false),
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// openStream opens one Process stream, as Envoy does per HTTP request.
func openStream(t *testing.T, conn *grpc.ClientConn) extprocv3.ExternalProcessor_ProcessClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	return stream
}

// exchange sends one message and receives its reply.
func exchange(stream extprocv3.ExternalProcessor_ProcessClient, msg *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	if err := stream.Send(msg); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// On io.EOF from Send the server has already ended the stream; Recv
	// returns its status.
	return stream.Recv()
}

func TestProtocolFaultsEndTheStreamWithAnErrorStatus(t *testing.T) {
	t.Parallel()
	conn := serve(t, newStore(t, appPolicy))

	tests := []struct {
		desc string
		// accepted are answered normally; fault is then answered with an error.
		accepted []*extprocv3.ProcessingRequest
		fault    *extprocv3.ProcessingRequest
		code     codes.Code
		msg      string
	}{{
		desc:  "no request message at all",
		fault: &extprocv3.ProcessingRequest{},
		code:  codes.InvalidArgument,
		msg:   "carries no request message",
	}, {
		desc: "flow-control update only, never advertised by the server",
		fault: &extprocv3.ProcessingRequest{ClientWindowUpdate: &extprocv3.ProcessingRequest_ClientWindowUpdate{
			WindowIncrementSidestreamToUpstream: 1024,
		}},
		code: codes.InvalidArgument,
		msg:  "carries no request message",
	}, {
		desc:     "second request_headers",
		accepted: []*extprocv3.ProcessingRequest{actualGET},
		fault:    actualGET,
		code:     codes.FailedPrecondition,
		msg:      "second request_headers",
	}, {
		desc:     "second response_headers",
		accepted: []*extprocv3.ProcessingRequest{actualGET, upstreamOK},
		fault:    upstreamOK,
		code:     codes.FailedPrecondition,
		msg:      "second response_headers",
	}, {
		desc:     "request_headers after response_headers",
		accepted: []*extprocv3.ProcessingRequest{upstreamOK},
		fault:    actualGET,
		code:     codes.FailedPrecondition,
		msg:      "request_headers after response_headers",
	}, {
		desc:     "response_headers after an immediate response",
		accepted: []*extprocv3.ProcessingRequest{allowedPreflight},
		fault:    upstreamOK,
		code:     codes.FailedPrecondition,
		msg:      "after an immediate response",
	}}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			stream := openStream(t, conn)
			for i, msg := range tc.accepted {
				if _, err := exchange(stream, msg); err != nil {
					t.Fatalf("message %d: got error %v, want a reply", i, err)
				}
			}
			resp, err := exchange(stream, tc.fault)
			if err == nil {
				t.Fatalf("got reply %v, want status %v", resp, tc.code)
			}
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Errorf("got status %v %q, want %v containing %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
		})
	}
}

func TestBodiesAndTrailersGetEmptyAnswers(t *testing.T) {
	t.Parallel()
	conn := serve(t, newStore(t, appPolicy))

	tests := []struct {
		desc string
		msg  *extprocv3.ProcessingRequest
		want *extprocv3.ProcessingResponse
	}{{
		desc: "request body",
		msg: &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
			RequestBody: &extprocv3.HttpBody{Body: []byte(`{"a":1}`), EndOfStream: true}}},
		want: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
			RequestBody: &extprocv3.BodyResponse{}}},
	}, {
		desc: "response body",
		msg: &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
			ResponseBody: &extprocv3.HttpBody{Body: []byte("ok"), EndOfStream: true}}},
		want: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
			ResponseBody: &extprocv3.BodyResponse{}}},
	}, {
		desc: "request trailers",
		msg: &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{
			RequestTrailers: &extprocv3.HttpTrailers{Trailers: headerMap("x-checksum", "abc")}}},
		want: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{
			RequestTrailers: &extprocv3.TrailersResponse{}}},
	}, {
		desc: "response trailers",
		msg: &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{
			ResponseTrailers: &extprocv3.HttpTrailers{Trailers: headerMap("grpc-status", "0")}}},
		want: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{
			ResponseTrailers: &extprocv3.TrailersResponse{}}},
	}}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			stream := openStream(t, conn)
			// As Envoy configured with BUFFERED bodies would: headers, then body.
			if _, err := exchange(stream, actualGET); err != nil {
				t.Fatalf("request_headers: %v", err)
			}
			got, err := exchange(stream, tc.msg)
			if err != nil {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
			if !proto.Equal(got, tc.want) {
				t.Errorf("got reply\n%v\nwant\n%v", prototext.Format(got), prototext.Format(tc.want))
			}
		})
	}
}

// The replies' exact shape: Envoy ≥1.32 reads only raw_value (a value-only
// header arrives empty; both set is a 500), honours only the `append`
// BoolValue, and reads mode_override fields literally on some versions
// (docs/envoy.md#the-rules-that-matter-most, docs/envoy.md#skipping-the-response-phase, docs/envoy.md#append-versus-overwrite).
func TestReplyShapes(t *testing.T) {
	t.Parallel()
	conn := serve(t, newStore(t, appPolicy))

	explicitSkip := &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}},
		ModeOverride: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode:   extprocfilterv3.ProcessingMode_SEND,
			ResponseHeaderMode:  extprocfilterv3.ProcessingMode_SKIP,
			RequestBodyMode:     extprocfilterv3.ProcessingMode_NONE,
			ResponseBodyMode:    extprocfilterv3.ProcessingMode_NONE,
			RequestTrailerMode:  extprocfilterv3.ProcessingMode_SKIP,
			ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		},
	}
	tests := []struct {
		desc string
		msgs []*extprocv3.ProcessingRequest
		want *extprocv3.ProcessingResponse // the reply to the last message
	}{{
		desc: "no policy: continue and skip the response phase, every mode field explicit",
		msgs: []*extprocv3.ProcessingRequest{unmatchedGET},
		want: explicitSkip,
	}, {
		desc: "allowed preflight: 204 with the CORS headers in raw_value, append false",
		msgs: []*extprocv3.ProcessingRequest{allowedPreflight},
		want: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
			ImmediateResponse: &extprocv3.ImmediateResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_NoContent},
				Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
					overwrite("access-control-allow-origin", "https://app.example"),
					overwrite("access-control-allow-credentials", "true"),
					overwrite("access-control-allow-methods", "PUT,DELETE"),
					overwrite("access-control-allow-headers", "x-trace-id,content-type"),
					overwrite("access-control-max-age", "600"),
					overwrite("vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
				}},
				Details: "cors_preflight_allowed",
			}}},
	}, {
		desc: "rejected preflight: 403 without CORS headers, the reason in details",
		msgs: []*extprocv3.ProcessingRequest{requestHeaders(":authority", "api.example.com", ":path", "/api/items",
			":method", "OPTIONS", "origin", "https://app.example", "access-control-request-method", "PATCH")},
		want: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
			ImmediateResponse: &extprocv3.ImmediateResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
				Details: "cors_preflight_rejected_method_not_allowed",
			}}},
	}, {
		desc: "actual request: upstream ACAO removed, decision set, Origin appended to Vary",
		msgs: []*extprocv3.ProcessingRequest{actualGET, responseHeaders(":status", "200",
			"access-control-allow-origin", "*", "vary", "Accept-Encoding", "x-request-id", "r1")},
		want: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
			ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{
					RemoveHeaders: []string{"access-control-allow-origin"},
					SetHeaders: []*corev3.HeaderValueOption{
						overwrite("access-control-allow-origin", "https://app.example"),
						overwrite("access-control-allow-credentials", "true"),
						overwrite("access-control-expose-headers", "x-request-id"),
						overwrite("vary", "Accept-Encoding, Origin"),
					},
				}}}}},
	}, {
		desc: "upstream Vary on two lines (a build where vary is not inline): one merged value replaces both",
		msgs: []*extprocv3.ProcessingRequest{actualGET, responseHeaders(":status", "200",
			"vary", "Accept-Encoding", "vary", "User-Agent")},
		want: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
			ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{
					SetHeaders: []*corev3.HeaderValueOption{
						overwrite("access-control-allow-origin", "https://app.example"),
						overwrite("access-control-allow-credentials", "true"),
						overwrite("access-control-expose-headers", "x-request-id"),
						overwrite("vary", "Accept-Encoding, User-Agent, Origin"),
					},
				}}}}},
	}, {
		desc: "repeated upstream Access-Control-* names are removed once each",
		msgs: []*extprocv3.ProcessingRequest{actualGET, responseHeaders(":status", "200", "vary", "Origin",
			"access-control-allow-origin", "*", "access-control-allow-origin", "https://x.example", "access-control-max-age", "5")},
		want: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
			ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{
					RemoveHeaders: []string{"access-control-allow-origin", "access-control-max-age"},
					SetHeaders: []*corev3.HeaderValueOption{
						overwrite("access-control-allow-origin", "https://app.example"),
						overwrite("access-control-allow-credentials", "true"),
						overwrite("access-control-expose-headers", "x-request-id"),
					},
				}}}}},
	}, {
		desc: "header values in `value` (Envoy before 1.27) are read too",
		msgs: []*extprocv3.ProcessingRequest{{Request: &extprocv3.ProcessingRequest_RequestHeaders{
			RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				{Key: ":authority", Value: "api.example.com"},
				{Key: ":path", Value: "/api"},
				{Key: ":method", Value: "OPTIONS"},
				{Key: "origin", Value: "https://app.example"},
				{Key: "access-control-request-method", Value: "DELETE"},
			}}}}}},
		want: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
			ImmediateResponse: &extprocv3.ImmediateResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_NoContent},
				Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
					overwrite("access-control-allow-origin", "https://app.example"),
					overwrite("access-control-allow-credentials", "true"),
					overwrite("access-control-allow-methods", "PUT,DELETE"),
					overwrite("access-control-max-age", "600"),
					overwrite("vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
				}},
				Details: "cors_preflight_allowed",
			}}},
	}, {
		desc: "a local reply's response_headers, first on its stream: passes through",
		msgs: []*extprocv3.ProcessingRequest{responseHeaders(":status", "401", "access-control-allow-origin", "*")},
		want: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
			ResponseHeaders: &extprocv3.HeadersResponse{}}},
	}}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			stream := openStream(t, conn)
			var got *extprocv3.ProcessingResponse
			for i, msg := range tc.msgs {
				var err error
				if got, err = exchange(stream, msg); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			if !proto.Equal(got, tc.want) {
				t.Errorf("got reply\n%v\nwant\n%v", prototext.Format(got), prototext.Format(tc.want))
			}
		})
	}
}

// In observability mode Envoy ignores replies and wants none
// (ProcessingRequest.observability_mode); the decision is still observed.
func TestObservabilityModeGetsNoReply(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	conn := serve(t, newStore(t, appPolicy), extproc.WithObserver(rec))
	stream := openStream(t, conn)

	// An allowed preflight: in observability mode Envoy does not answer it
	// at the edge, so its response_headers come next and must not be taken
	// for a protocol fault.
	for _, msg := range []*extprocv3.ProcessingRequest{allowedPreflight, upstreamOK} {
		msg = proto.Clone(msg).(*extprocv3.ProcessingRequest)
		msg.ObservabilityMode = true
		if err := stream.Send(msg); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	// The server sends nothing, then ends the stream with OK on our half-close.
	if resp, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv: got %v, %v; want no reply and io.EOF", resp, err)
	}
	want := []observed{{policy: "app", kind: cors.KindPreflight, action: cors.ActionRespond, reason: cors.ReasonAllowed}}
	if got := rec.all(); !slices.Equal(got, want) {
		t.Errorf("observed %+v, want %+v", got, want)
	}
}

// Envoy ends a stream with a half-close (io.EOF at the server) or a reset
// (codes.Canceled), docs/envoy.md#how-a-stream-ends: both are normal ends, not errors worth a
// log line. A stream the server has to fail is logged, which shows that the
// log would catch the other two.
func TestStreamEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		end     func(t *testing.T, stream extprocv3.ExternalProcessor_ProcessClient, cancel context.CancelFunc)
		wantLog bool
	}{{
		desc: "half-close after the response phase",
		end: func(t *testing.T, stream extprocv3.ExternalProcessor_ProcessClient, _ context.CancelFunc) {
			if err := stream.CloseSend(); err != nil {
				t.Fatalf("CloseSend: %v", err)
			}
			if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
				t.Errorf("Recv after CloseSend: got %v, want io.EOF (the server ends with OK)", err)
			}
		},
	}, {
		desc: "reset (cancel) after the response phase",
		end: func(t *testing.T, _ extprocv3.ExternalProcessor_ProcessClient, cancel context.CancelFunc) {
			cancel()
		},
	}, {
		desc: "protocol fault",
		end: func(t *testing.T, stream extprocv3.ExternalProcessor_ProcessClient, _ context.CancelFunc) {
			if _, err := exchange(stream, &extprocv3.ProcessingRequest{}); status.Code(err) != codes.InvalidArgument {
				t.Errorf("got %v, want InvalidArgument", err)
			}
		},
		wantLog: true,
	}}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var lines []string
			log := funcr.New(func(prefix, args string) {
				mu.Lock()
				defer mu.Unlock()
				lines = append(lines, args)
			}, funcr.Options{Verbosity: 2})

			// A server of its own, stopped before the log is read: the graceful
			// stop waits for every stream handler to return.
			conn, stop := serveUntil(t, newStore(t, appPolicy), extproc.WithLogger(log))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stream, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			for _, msg := range []*extprocv3.ProcessingRequest{actualGET, upstreamOK} {
				if _, err := exchange(stream, msg); err != nil {
					t.Fatalf("exchange: %v", err)
				}
			}
			tc.end(t, stream, cancel)
			stop()

			mu.Lock()
			defer mu.Unlock()
			if got := len(lines) > 0; got != tc.wantLog {
				t.Errorf("logged %q; want a log line: %v", lines, tc.wantLog)
			}
		})
	}
}
