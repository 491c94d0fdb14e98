package envoystandin

import (
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/proto"
)

// processorState is Envoy's ProcessorState (processor_state.cc) for one
// direction, reduced to what header processing needs: the direction's modes,
// whether a headers message is outstanding (callback_state_ ==
// HeadersCallback) and its message timer.
type processorState struct {
	outbound bool // encoding (response) direction

	sendHeaders  bool
	sendTrailers bool
	bodyMode     extprocfilterv3.ProcessingMode_BodySendMode

	waiting            bool // a headers message awaits its reply
	timer              *time.Timer
	newTimeoutReceived bool // override_message_timeout already used in this state

	noBody  bool
	headers *headerMap

	// CONTINUE_AND_REPLACE with a body mutation replaces the body.
	bodyReplaced bool
	body         []byte
}

// setProcessingMode is {Decoding,Encoding}ProcessorState::setProcessingModeInternal
// (docs/envoy.md#processing-modes): DEFAULT header mode means SEND, DEFAULT trailer mode means SKIP.
func (p *processorState) setProcessingMode(m *extprocfilterv3.ProcessingMode) {
	if p.outbound {
		p.sendHeaders = m.GetResponseHeaderMode() != extprocfilterv3.ProcessingMode_SKIP
		p.sendTrailers = m.GetResponseTrailerMode() == extprocfilterv3.ProcessingMode_SEND
		p.bodyMode = m.GetResponseBodyMode()
		return
	}
	p.sendHeaders = m.GetRequestHeaderMode() != extprocfilterv3.ProcessingMode_SKIP
	p.sendTrailers = m.GetRequestTrailerMode() == extprocfilterv3.ProcessingMode_SEND
	p.bodyMode = m.GetRequestBodyMode()
}

// noExternalProcess: nothing at all will be sent in this direction.
func (p *processorState) noExternalProcess() bool {
	return !p.sendHeaders && !p.sendTrailers && p.bodyMode == extprocfilterv3.ProcessingMode_NONE
}

// startCall is onStartProcessorCall: the per-message timer starts when the
// message is sent (docs/envoy.md#what-the-stand-in-reproduces item 3).
func (p *processorState) startCall(timeout time.Duration) {
	p.waiting = true
	p.newTimeoutReceived = false
	p.timer = time.NewTimer(timeout)
}

// finishCall is onFinishProcessorCall / clearAsyncState: stop waiting and
// make sure the timer cannot fire.
func (p *processorState) finishCall() {
	p.waiting = false
	p.newTimeoutReceived = false
	if p.timer != nil {
		p.timer.Stop()
	}
}

// timeout is the timer's channel while a message is outstanding, else nil.
func (p *processorState) timeout() <-chan time.Time {
	if !p.waiting || p.timer == nil {
		return nil
	}
	return p.timer.C
}

// restartTimer is restartMessageTimer: only while the timer runs, and only
// once per state.
func (p *processorState) restartTimer(d time.Duration) bool {
	if !p.waiting || p.newTimeoutReceived {
		return false
	}
	p.timer.Reset(d)
	p.newTimeoutReceived = true
	return true
}

// allDisabledMode is what per-route `disabled: true` turns into (ext_proc.cc).
func allDisabledMode() *extprocfilterv3.ProcessingMode {
	return &extprocfilterv3.ProcessingMode{
		RequestHeaderMode:  extprocfilterv3.ProcessingMode_SKIP,
		ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP,
	}
}

// effectiveModeOverride (Envoy >= 1.34, PR #38254): DEFAULT header and
// trailer modes in a mode_override keep the configured mode; body modes are
// always taken literally (docs/envoy.md#skipping-the-response-phase).
func effectiveModeOverride(target, configured *extprocfilterv3.ProcessingMode) *extprocfilterv3.ProcessingMode {
	m := proto.Clone(configured).(*extprocfilterv3.ProcessingMode)
	if v := target.GetRequestHeaderMode(); v != extprocfilterv3.ProcessingMode_DEFAULT {
		m.RequestHeaderMode = v
	}
	if v := target.GetResponseHeaderMode(); v != extprocfilterv3.ProcessingMode_DEFAULT {
		m.ResponseHeaderMode = v
	}
	if v := target.GetRequestTrailerMode(); v != extprocfilterv3.ProcessingMode_DEFAULT {
		m.RequestTrailerMode = v
	}
	if v := target.GetResponseTrailerMode(); v != extprocfilterv3.ProcessingMode_DEFAULT {
		m.ResponseTrailerMode = v
	}
	m.RequestBodyMode = target.GetRequestBodyMode()
	m.ResponseBodyMode = target.GetResponseBodyMode()
	return m
}

// overrideAllowed checks allowed_override_modes: the effective override must
// equal a listed mode on every field but request_header_mode.
func overrideAllowed(m *extprocfilterv3.ProcessingMode, allowed []*extprocfilterv3.ProcessingMode) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if m.GetRequestBodyMode() == a.GetRequestBodyMode() &&
			m.GetRequestTrailerMode() == a.GetRequestTrailerMode() &&
			m.GetResponseHeaderMode() == a.GetResponseHeaderMode() &&
			m.GetResponseBodyMode() == a.GetResponseBodyMode() &&
			m.GetResponseTrailerMode() == a.GetResponseTrailerMode() {
			return true
		}
	}
	return false
}
