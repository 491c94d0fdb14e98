package envoystandin

import (
	"errors"
	"fmt"
	"io"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// onEvent dispatches what the server did, as Envoy's gRPC stream callbacks
// (onReceiveMessage, onGrpcClose, onGrpcError) do.
func (x *exchange) onEvent(ev event) {
	switch {
	case ev.err == nil:
		x.onReceiveMessage(ev.msg)
	case errors.Is(ev.err, io.EOF):
		x.st.remoteClosed = true
		x.onGrpcClose()
	default:
		x.st.remoteClosed = true
		x.onGrpcError(ev.err)
	}
}

// onReceiveMessage is Filter::onReceiveMessage (docs/envoy.md#which-reply-answers-which-message, docs/envoy.md#spurious-replies, docs/envoy.md#skipping-the-response-phase,
// docs/envoy.md#what-the-stand-in-reproduces item 3): exactly one reply per message, everything else spurious.
func (x *exchange) onReceiveMessage(r *extprocv3.ProcessingResponse) {
	if x.complete {
		// "Ignoring stream message received after processing complete".
		return
	}
	// A message carrying override_message_timeout is only that, whatever
	// else it holds.
	if d := r.GetOverrideMessageTimeout(); d != nil {
		x.onNewTimeout(d)
		return
	}
	x.applyModeOverride(r.GetModeOverride())

	var st *envoyError
	switch resp := r.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		st = x.handleHeadersResponse(&x.dec, resp.RequestHeaders)
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		st = x.handleHeadersResponse(&x.enc, resp.ResponseHeaders)
	case *extprocv3.ProcessingResponse_RequestBody, *extprocv3.ProcessingResponse_ResponseBody,
		*extprocv3.ProcessingResponse_RequestTrailers, *extprocv3.ProcessingResponse_ResponseTrailers:
		// No body or trailers message was ever sent, so no state waits for one.
		st = failedPrecondition("spurious message")
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		if x.fc.proto.GetDisableImmediateResponse() {
			st = failedPrecondition("unhandled immediate response due to config disabled it")
			break
		}
		// Honoured whenever it arrives, with no state check (docs/envoy.md#which-reply-answers-which-message).
		x.complete = true
		x.finishCalls()
		x.closeStreamMaybeGraceful()
		x.sendImmediateResponse(resp.ImmediateResponse)
	default:
		// An empty ProcessingResponse, or streamed_immediate_response.
		st = failedPrecondition("unhandled message")
	}

	switch {
	case st == nil:
		x.sim.stats.streamMsgsReceived.Add(1)
	case st.spurious:
		x.sim.stats.spuriousMsgsReceived.Add(1)
		x.logf("Spurious response message %s received on gRPC stream: %s", responseCase(r), st.msg)
		if x.failureModeAllow || !x.fc.version.spuriousFailsClosed() {
			// Ignore it and the stream for the rest of the request; before
			// PR #39994 this was the only behaviour, even when fail-closed.
			if x.fc.version.spuriousFailsClosed() {
				x.sim.stats.failureModeAllowed.Add(1)
			}
			x.closeStream()
			x.finishCalls()
			x.complete = true
		} else {
			x.handleErrorResponse(st)
		}
	default:
		x.sim.stats.streamMsgsReceived.Add(1)
		x.handleErrorResponse(st)
	}

	if x.fc.version.closesStreamEarly() {
		x.closeIfLastResponse(r)
	}
}

// applyModeOverride honours mode_override only under the conditions of
// docs/envoy.md#skipping-the-response-phase: allow_mode_override, no send_body_without_waiting, no
// FULL_DUPLEX_STREAMED body mode configured, a headers message outstanding,
// and the allow-list.
func (x *exchange) applyModeOverride(mo *extprocfilterv3.ProcessingMode) {
	if mo == nil {
		return
	}
	cfg := x.fc.mode()
	switch {
	case !x.fc.proto.GetAllowModeOverride():
		x.logf("mode_override ignored: allow_mode_override is false")
		return
	case x.fc.proto.GetSendBodyWithoutWaitingForHeaderResponse(),
		cfg.GetRequestBodyMode() == extprocfilterv3.ProcessingMode_FULL_DUPLEX_STREAMED,
		cfg.GetResponseBodyMode() == extprocfilterv3.ProcessingMode_FULL_DUPLEX_STREAMED:
		x.logf("mode_override ignored: not allowed with this body configuration")
		return
	case !x.dec.waiting && !x.enc.waiting:
		x.logf("mode_override ignored: it only counts on a reply to a headers message")
		return
	}
	effective := mo
	if x.fc.version.modeOverrideDefaultKeeps() {
		effective = effectiveModeOverride(mo, cfg)
	}
	if !overrideAllowed(effective, x.fc.proto.GetAllowedOverrideModes()) {
		x.logf("Processing mode overridden by server is disallowed")
		return
	}
	x.dec.setProcessingMode(effective)
	x.enc.setProcessingMode(effective)
}

// handleHeadersResponse is ProcessorState::handleHeadersResponse.
func (x *exchange) handleHeadersResponse(p *processorState, hr *extprocv3.HeadersResponse) *envoyError {
	if !p.waiting {
		return failedPrecondition("spurious message")
	}
	common := hr.GetResponse()
	replacing := common.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE
	if hm := common.GetHeaderMutation(); hm != nil {
		if err := applyHeaderMutation(hm, p.headers, replacing, x.fc.checker, x.limits(), &x.sim.stats.rejectedHeaderMutations); err != nil {
			return err
		}
	}
	// clear_route_cache: the stand-in has no route table to clear.
	p.finishCall()
	if replacing {
		if bm := common.GetBodyMutation(); bm != nil {
			// The processor is unlikely to have set a matching content-length.
			p.headers.remove("content-length")
			p.bodyReplaced = true
			p.body = bm.GetBody() // clear_body, or no body: an empty body
		}
		p.bodyMode = extprocfilterv3.ProcessingMode_NONE
		p.sendTrailers = false
	}
	return nil
}

// closeIfLastResponse is closeGrpcStreamIfLastRespReceived (Envoy >= 1.37,
// docs/envoy.md#how-a-stream-ends): close as soon as no further message can be needed.
func (x *exchange) closeIfLastResponse(r *extprocv3.ProcessingResponse) {
	if x.st == nil {
		return
	}
	last := false
	switch r.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		last = (x.dec.noBody || (x.dec.bodyMode == extprocfilterv3.ProcessingMode_NONE && !x.dec.sendTrailers)) &&
			x.enc.noExternalProcess()
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		last = x.enc.noBody || (x.enc.bodyMode == extprocfilterv3.ProcessingMode_NONE && !x.enc.sendTrailers)
	}
	if last {
		x.closeStreamMaybeGraceful()
	}
}

// onNewTimeout handles override_message_timeout (docs/envoy.md#which-reply-answers-which-message): honoured
// only within [1 ms, max_message_timeout] (max 0 = feature off), once per
// outstanding message.
func (x *exchange) onNewTimeout(d *durationpb.Duration) {
	if err := d.CheckValid(); err != nil {
		x.sim.stats.overrideMessageTimeoutIgnored.Add(1)
		return
	}
	ms := d.AsDuration().Truncate(time.Millisecond)
	if ms < time.Millisecond || ms > x.fc.maxMessageTimeout {
		x.sim.stats.overrideMessageTimeoutIgnored.Add(1)
		return
	}
	dec := x.dec.restartTimer(ms)
	enc := x.enc.restartTimer(ms)
	if !dec && !enc {
		x.sim.stats.overrideMessageTimeoutIgnored.Add(1)
		return
	}
	x.sim.stats.overrideMessageTimeoutReceived.Add(1)
}

// onGrpcClose is Filter::onGrpcClose: the server returned OK. Processing
// continues without ext_proc, whatever failure_mode_allow says (docs/envoy.md#errors-timeouts-and-fail-open).
func (x *exchange) onGrpcClose() {
	if x.complete {
		return
	}
	x.complete = true
	x.sim.stats.streamsClosed.Add(1)
	x.closeStream()
	x.finishCalls()
}

// onGrpcError is Filter::onGrpcError: a non-OK status, a reset, or a stream
// that could not start.
func (x *exchange) onGrpcError(err error) {
	x.sim.stats.streamsFailed.Add(1)
	if x.complete {
		return
	}
	if x.failureModeAllow {
		x.onGrpcClose()
		x.sim.stats.failureModeAllowed.Add(1)
		return
	}
	x.complete = true
	x.finishCalls()
	x.closeStream()
	s := status.Convert(err)
	details := fmt.Sprintf("ext_proc_error_gRPC_error_%d", int(s.Code()))
	if x.fc.version.grpcErrorHasMessage() {
		details += "{" + s.Message() + "}"
	}
	x.sendImmediateResponse(&extprocv3.ImmediateResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(x.fc.statusOnError)},
		Details: details,
	})
}

// onMessageTimeout is Filter::onMessageTimeout: 504 unless fail-open
// (docs/envoy.md#errors-timeouts-and-fail-open); status_on_error does not apply.
func (x *exchange) onMessageTimeout() {
	x.sim.stats.messageTimeouts.Add(1)
	x.complete = true
	x.closeStream()
	x.finishCalls()
	if x.failureModeAllow {
		x.sim.stats.failureModeAllowed.Add(1)
		x.logf("message timeout reached; failure_mode_allow: continuing without ext_proc")
		return
	}
	x.sendImmediateResponse(&extprocv3.ImmediateResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode_GatewayTimeout},
		Details: "ext_proc_error_per-message_timeout_exceeded",
	})
}

// handleErrorResponse is Filter::handleErrorResponse: a local reply with
// status_on_error and the error text as details, whatever failure_mode_allow
// says (docs/envoy.md#errors-timeouts-and-fail-open).
func (x *exchange) handleErrorResponse(st *envoyError) {
	x.logf("Sending immediate response: %s", st.msg)
	x.complete = true
	x.finishCalls()
	x.closeStream()
	x.sendImmediateResponse(&extprocv3.ImmediateResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(x.fc.statusOnError)},
		Details: st.msg,
	})
}

func (x *exchange) limits() mutationLimits {
	return mutationLimits{maxCount: x.fc.maxHeadersCount, maxKB: defaultMaxHeadersKB}
}

func responseCase(r *extprocv3.ProcessingResponse) string {
	switch r.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return "request_headers"
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return "response_headers"
	case *extprocv3.ProcessingResponse_RequestBody:
		return "request_body"
	case *extprocv3.ProcessingResponse_ResponseBody:
		return "response_body"
	case *extprocv3.ProcessingResponse_RequestTrailers:
		return "request_trailers"
	case *extprocv3.ProcessingResponse_ResponseTrailers:
		return "response_trailers"
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		return "immediate_response"
	case *extprocv3.ProcessingResponse_StreamedImmediateResponse:
		return "streamed_immediate_response"
	}
	return "(empty)"
}
