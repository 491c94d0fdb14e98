package envoystandin_test

import (
	"net"
	"strings"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// outcome is what a failure test checks.
type outcome struct {
	status   int
	details  string
	upstream bool
}

func check(t *testing.T, res *envoystandin.Response, want outcome) {
	t.Helper()
	got := outcome{status: res.Status, details: res.Details, upstream: res.UpstreamReached}
	if got != want {
		t.Errorf("response = %+v, want %+v (log: %q)", got, want, res.Log)
	}
}

var continued = outcome{status: 200, details: "via_upstream", upstream: true}

// docs/envoy.md#spurious-replies: a reply that does not match what Envoy waits for.
func TestSpuriousReply(t *testing.T) {
	t.Parallel()
	failOpen := &extprocfilterv3.ExternalProcessor{FailureModeAllow: true}
	tests := []struct {
		desc  string
		cfg   envoystandin.Config
		reply *extprocv3.ProcessingResponse // sent instead of the request_headers reply
		want  outcome
	}{
		{
			desc:  "response_headers for request_headers fails closed (>= 1.35)",
			reply: responseHeadersReply(nil),
			want:  outcome{status: 500, details: "spurious_message"},
		},
		{
			desc:  "an empty ProcessingResponse is an unhandled message",
			reply: &extprocv3.ProcessingResponse{},
			want:  outcome{status: 500, details: "unhandled_message"},
		},
		{
			desc:  "a body reply is spurious",
			reply: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}},
			want:  outcome{status: 500, details: "spurious_message"},
		},
		{
			desc:  "status_on_error applies to spurious replies",
			cfg:   envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{StatusOnError: &typev3.HttpStatus{Code: typev3.StatusCode_BadGateway}}},
			reply: responseHeadersReply(nil),
			want:  outcome{status: 502, details: "spurious_message"},
		},
		{
			desc:  "immediate_response with disable_immediate_response",
			cfg:   envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{DisableImmediateResponse: true}},
			reply: immediate(&extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}}),
			want:  outcome{status: 500, details: "unhandled_immediate_response_due_to_config_disabled_it"},
		},
		{
			desc:  "fail-open ignores it and continues",
			cfg:   envoystandin.Config{Filter: failOpen},
			reply: responseHeadersReply(nil),
			want:  continued,
		},
		{
			desc:  "1.34 ignores it and continues even when fail-closed",
			cfg:   envoystandin.Config{Version: envoystandin.Envoy134},
			reply: responseHeadersReply(nil),
			want:  continued,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, proc := startProcessor(t, func(s *procStream) error {
				s.recv()
				s.send(tc.reply)
				s.drain()
				return nil
			})
			sim := newSim(conn, tc.cfg)
			res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			check(t, res, tc.want)
			if got := sim.Stats().SpuriousMsgsReceived; got != 1 {
				t.Errorf("spurious_msgs_received = %d, want 1", got)
			}
			if rec := proc.next(); len(rec.msgs) != 1 {
				t.Errorf("server got %d messages after a spurious reply, want no more than request_headers", len(rec.msgs))
			}
		})
	}
}

// docs/envoy.md#spurious-replies: a second reply to one message is spurious too, even while
// the request is upstream.
func TestSecondReplyIsSpurious(t *testing.T) {
	t.Parallel()
	conn, _ := startProcessor(t, func(s *procStream) error {
		s.recv()
		s.send(requestHeadersReply(nil, nil))
		s.send(requestHeadersReply(nil, nil))
		s.drain()
		return nil
	})
	sim := newSim(conn, envoystandin.Config{})
	res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if res.Status != 500 || res.Details != "spurious_message" {
		t.Errorf("status %d details %q, want 500 spurious_message", res.Status, res.Details)
	}
}

// docs/envoy.md#errors-timeouts-and-fail-open: message_timeout.
func TestMessageTimeout(t *testing.T) {
	t.Parallel()
	timeout := durationpb.New(50 * time.Millisecond)
	tests := []struct {
		desc         string
		filter       *extprocfilterv3.ExternalProcessor
		want         outcome
		wantFailOpen uint64
	}{
		{
			desc:   "fail-closed: 504, status_on_error does not apply",
			filter: &extprocfilterv3.ExternalProcessor{MessageTimeout: timeout, StatusOnError: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}},
			want:   outcome{status: 504, details: "ext_proc_error_per-message_timeout_exceeded"},
		},
		{
			desc:         "fail-open: continue without ext_proc",
			filter:       &extprocfilterv3.ExternalProcessor{MessageTimeout: timeout, FailureModeAllow: true},
			want:         continued,
			wantFailOpen: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, proc := startProcessor(t, func(s *procStream) error {
				s.drain() // never answers
				return nil
			})
			sim := newSim(conn, envoystandin.Config{Filter: tc.filter})
			res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			check(t, res, tc.want)
			st := sim.Stats()
			if st.MessageTimeouts != 1 || st.FailureModeAllowed != tc.wantFailOpen {
				t.Errorf("message_timeouts = %d, failure_mode_allowed = %d; want 1 and %d", st.MessageTimeouts, st.FailureModeAllowed, tc.wantFailOpen)
			}
			rec := proc.next()
			if len(rec.msgs) != 1 || !isNormalEnd(rec.end) {
				t.Errorf("server: %d messages, stream end %v; want request_headers only, then the stream closed", len(rec.msgs), rec.end)
			}
		})
	}
}

// docs/envoy.md#errors-timeouts-and-fail-open: with no message_timeout configured Envoy's default (200 ms)
// applies; a server that never answers gets the request a 504.
func TestDefaultMessageTimeout(t *testing.T) {
	t.Parallel()
	conn, _ := startProcessor(t, func(s *procStream) error {
		s.drain()
		return nil
	})
	sim := envoystandin.New(conn, envoystandin.Config{})
	res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	check(t, res, outcome{status: 504, details: "ext_proc_error_per-message_timeout_exceeded"})
}

// docs/envoy.md#which-reply-answers-which-message: override_message_timeout is honoured only up to
// max_message_timeout (default 0: never).
func TestOverrideMessageTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc                   string
		max                    *durationpb.Duration
		override               time.Duration
		wantReceived, wantIgnr uint64
	}{
		{desc: "within max_message_timeout", max: durationpb.New(10 * time.Second), override: 5 * time.Second, wantReceived: 1},
		{desc: "no max_message_timeout", override: 5 * time.Second, wantIgnr: 1},
		{desc: "above max_message_timeout", max: durationpb.New(time.Second), override: 5 * time.Second, wantIgnr: 1},
		{desc: "below 1 ms", max: durationpb.New(time.Second), override: time.Microsecond, wantIgnr: 1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, _ := startProcessor(t, func(s *procStream) error {
				s.recv()
				// The header mutation must be ignored: a message with
				// override_message_timeout is only that.
				r := requestHeadersReply(sets(set("x-ignored", "1", false)), nil)
				r.OverrideMessageTimeout = durationpb.New(tc.override)
				s.send(r)
				s.send(requestHeadersReply(nil, nil))
				for m := s.recv(); m != nil; m = s.recv() {
					s.send(responseHeadersReply(nil))
				}
				return nil
			})
			sim := newSim(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{MaxMessageTimeout: tc.max}})
			res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			check(t, res, continued)
			if res.UpstreamRequest.Headers.Has("x-ignored") {
				t.Errorf("the mutation riding with override_message_timeout was applied")
			}
			st := sim.Stats()
			if st.OverrideMessageTimeoutReceived != tc.wantReceived || st.OverrideMessageTimeoutIgnored != tc.wantIgnr {
				t.Errorf("override_message_timeout received %d ignored %d, want %d and %d",
					st.OverrideMessageTimeoutReceived, st.OverrideMessageTimeoutIgnored, tc.wantReceived, tc.wantIgnr)
			}
		})
	}
}

// docs/envoy.md#errors-timeouts-and-fail-open, docs/envoy.md#what-the-stand-in-reproduces item 6: a server that returns OK before Envoy is done
// is skipped, fail-closed or not.
func TestServerClosesOK(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		script func(*procStream) error
	}{
		{
			desc:   "before answering request_headers",
			script: func(s *procStream) error { s.recv(); return nil },
		},
		{
			desc: "after answering request_headers",
			script: func(s *procStream) error {
				s.recv()
				s.send(requestHeadersReply(sets(set("x-from-ext-proc", "1", false)), nil))
				return nil
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, proc := startProcessor(t, tc.script)
			sim := newSim(conn, envoystandin.Config{})
			res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"},
				envoystandin.Upstream{Headers: envoystandin.NewHeaders("x-upstream", "1")})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			check(t, res, continued)
			if got := res.Headers.Get("x-upstream"); got != "1" {
				t.Errorf("upstream response was changed: %q", res.Headers)
			}
			if got := len(proc.next().msgs); got != 1 {
				t.Errorf("server got %d messages, want only request_headers", got)
			}
			if st := sim.Stats(); st.StreamsFailed != 0 {
				t.Errorf("streams_failed = %d, want 0 for an OK close", st.StreamsFailed)
			}
		})
	}
}

// docs/envoy.md#errors-timeouts-and-fail-open: an error status from the server.
func TestServerError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		cfg  envoystandin.Config
		want outcome
	}{
		{
			desc: "latest: status_on_error default 500, details with the message",
			want: outcome{status: 500, details: "ext_proc_error_gRPC_error_7{no_way}"},
		},
		{
			desc: "status_on_error",
			cfg:  envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{StatusOnError: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}}},
			want: outcome{status: 503, details: "ext_proc_error_gRPC_error_7{no_way}"},
		},
		{
			desc: "1.35: always 500, code only",
			cfg: envoystandin.Config{Version: envoystandin.Envoy135,
				Filter: &extprocfilterv3.ExternalProcessor{StatusOnError: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}}},
			want: outcome{status: 500, details: "ext_proc_error_gRPC_error_7"},
		},
		{
			desc: "fail-open continues",
			cfg:  envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{FailureModeAllow: true}},
			want: continued,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, _ := startProcessor(t, func(s *procStream) error {
				s.recv()
				return status.Error(codes.PermissionDenied, "no way")
			})
			sim := newSim(conn, tc.cfg)
			res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			check(t, res, tc.want)
			if st := sim.Stats(); st.StreamsFailed != 1 {
				t.Errorf("streams_failed = %d, want 1", st.StreamsFailed)
			}
		})
	}
}

// docs/envoy.md#errors-timeouts-and-fail-open: no ext_proc server at all.
func TestProcessorUnreachable(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there any more
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	sim := newSim(conn, envoystandin.Config{})
	res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if res.Status != 500 || !strings.HasPrefix(res.Details, "ext_proc_error_gRPC_error_14{") || res.UpstreamReached {
		t.Errorf("status %d details %q upstream %v; want 500 ext_proc_error_gRPC_error_14{...}", res.Status, res.Details, res.UpstreamReached)
	}
	if strings.ContainsAny(res.Details, " \t\n") {
		t.Errorf("details %q contain whitespace; Envoy replaces it with _", res.Details)
	}

	failOpen := newSim(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{FailureModeAllow: true}})
	res, err = failOpen.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	check(t, res, continued)
}

// docs/envoy.md#the-order-envoy-applies-a-mutation-in: a rejected mutation is a 500 even with failure_mode_allow.
func TestMutationErrorIgnoresFailOpen(t *testing.T) {
	t.Parallel()
	conn, _ := startProcessor(t, answer(func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		return requestHeadersReply(sets(set("x-bad", "a\nb", false)), nil)
	}))
	sim := newSim(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{FailureModeAllow: true}})
	res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	check(t, res, outcome{status: 500, details: "Invalid_character_in_set_headers_mutation."})
	if st := sim.Stats(); st.RejectedHeaderMutations != 1 || st.FailureModeAllowed != 0 {
		t.Errorf("rejected_header_mutations %d failure_mode_allowed %d, want 1 and 0", st.RejectedHeaderMutations, st.FailureModeAllowed)
	}
}
