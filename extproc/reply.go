package extproc

import (
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/corsgate/corsgate/internal/extprocwire"
	"github.com/corsgate/corsgate/internal/header"
)

// The replies that do not depend on the request, encoded once at start-up
// and sent as they are by every stream.
var (
	// skipResponsePhase tells Envoy not to send response_headers for this
	// request. Every field is explicit: Envoys before ~1.34 replace the whole
	// mode with the override, newer ones read DEFAULT as "unchanged", and body
	// modes are always taken literally (docs/envoy.md#skipping-the-response-phase). Honoured only with
	// allow_mode_override: true in the filter config.
	skipResponsePhase = &extprocfilterv3.ProcessingMode{
		RequestHeaderMode:   extprocfilterv3.ProcessingMode_SEND,
		ResponseHeaderMode:  extprocfilterv3.ProcessingMode_SKIP,
		RequestBodyMode:     extprocfilterv3.ProcessingMode_NONE,
		ResponseBodyMode:    extprocfilterv3.ProcessingMode_NONE,
		RequestTrailerMode:  extprocfilterv3.ProcessingMode_SKIP,
		ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
	}

	// passThrough answers request_headers when nothing will change: no policy,
	// a DryRun policy, or a preflight forwarded untouched.
	passThrough = extprocwire.Encode(&extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extprocv3.HeadersResponse{},
		},
		ModeOverride: skipResponsePhase,
	})

	// requestContinue answers request_headers when the response phase has
	// work to do: the request goes upstream unchanged.
	requestContinue = extprocwire.Encode(&extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extprocv3.HeadersResponse{},
		},
	})

	// responseContinue answers response_headers with no change.
	responseContinue = extprocwire.Encode(&extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ResponseHeaders{
			ResponseHeaders: &extprocv3.HeadersResponse{},
		},
	})

	// Only an Envoy configured to send bodies or trailers sends these; CORS
	// needs none, and an empty answer lets them through unchanged.
	requestBodyContinue = extprocwire.Encode(&extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}},
	})
	responseBodyContinue = extprocwire.Encode(&extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}},
	})
	requestTrailersContinue = extprocwire.Encode(&extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}},
	})
	responseTrailersContinue = extprocwire.Encode(&extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}},
	})
)

// answer is the reply to one message in corsgate's terms: one of the fixed
// replies, an immediate response, or a mutation of the upstream's response
// headers. encode writes it for extprocwire.Codec, the one encoding the
// server sends (TestEncodeMatchesMessages checks it against go-control-plane's
// messages). The storage at the end holds the usual headers without an
// allocation.
type answer struct {
	fixed     *extprocwire.Encoded
	immediate bool
	status    uint32
	details   string
	remove    []string
	set       []header.Field

	// A preflight answer has at most seven headers (ACAO, ACAC, ACAM, ACAH,
	// ACMA, ACAPN, Vary); a response mutation at most five, usually four
	// (ACAO, ACAC, ACEH, Vary).
	setRoom    [7]header.Field
	removeRoom [2]string
}

func (a *answer) reset() {
	a.fixed, a.immediate, a.status, a.details, a.remove, a.set = nil, false, 0, "", nil, nil
}

// encode is the answer as extprocwire.Codec sends it: a fixed reply as it
// was encoded at start-up, anything else written into r.
func (a *answer) encode(r *extprocwire.Reply) any {
	switch {
	case a.fixed != nil:
		return a.fixed
	case a.immediate:
		return r.ImmediateResponse(a.status, a.set, a.details)
	default:
		return r.ResponseHeaderMutation(a.remove, a.set)
	}
}
