package extproc

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/corsgate/corsgate/internal/extprocwire"
)

// The replies below are shared by every stream and never mutated. Sharing a
// protobuf message between concurrent sends is safe: grpc-go only marshals a
// message it is given (it never writes to it), and protobuf-go's marshaller
// writes nothing but the size cache, which it updates atomically with a value
// that is the same for every caller of an unchanged message. Sharing them
// makes the common replies allocation-free.
var (
	// appendFalse is the "overwrite" flag on every header we set. Envoy's
	// ext_proc reads only the deprecated `append` BoolValue and ignores
	// append_action (docs/envoy.md#append-versus-overwrite), so it is always set explicitly.
	appendFalse = wrapperspb.Bool(false)

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
	passThrough = &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extprocv3.HeadersResponse{},
		},
		ModeOverride: skipResponsePhase,
	}

	// requestContinue answers request_headers when the response phase has
	// work to do: the request goes upstream unchanged.
	requestContinue = &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extprocv3.HeadersResponse{},
		},
	}

	// responseContinue answers response_headers with no change.
	responseContinue = &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ResponseHeaders{
			ResponseHeaders: &extprocv3.HeadersResponse{},
		},
	}

	requestBodyContinue = &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}},
	}
	responseBodyContinue = &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}},
	}
	requestTrailersContinue = &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}},
	}
	responseTrailersContinue = &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}},
	}
)

// The fixed replies, encoded once: the wire path (processWire) sends these
// bytes as they are.
var (
	passThroughEncoded              = extprocwire.Encode(passThrough)
	requestContinueEncoded          = extprocwire.Encode(requestContinue)
	responseContinueEncoded         = extprocwire.Encode(responseContinue)
	requestBodyContinueEncoded      = extprocwire.Encode(requestBodyContinue)
	responseBodyContinueEncoded     = extprocwire.Encode(responseBodyContinue)
	requestTrailersContinueEncoded  = extprocwire.Encode(requestTrailersContinue)
	responseTrailersContinueEncoded = extprocwire.Encode(responseTrailersContinue)
)

// encoded returns resp's encoding when it is one of the fixed replies, else
// nil (the reply is then marshalled).
func encoded(resp *extprocv3.ProcessingResponse) *extprocwire.Encoded {
	switch resp {
	case passThrough:
		return passThroughEncoded
	case requestContinue:
		return requestContinueEncoded
	case responseContinue:
		return responseContinueEncoded
	case requestBodyContinue:
		return requestBodyContinueEncoded
	case responseBodyContinue:
		return responseBodyContinueEncoded
	case requestTrailersContinue:
		return requestTrailersContinueEncoded
	case responseTrailersContinue:
		return responseTrailersContinueEncoded
	}
	return nil
}

// setBuilder builds HeaderMutation.set_headers for a known number of headers,
// in a reply's own storage when they fit (no allocation of its own), else with
// three allocations whatever the count: the pointer slice, the options with
// their header values, and one byte buffer that holds every value.
//
// Values go in raw_value only: since Envoy 1.32 `value` is ignored (a
// value-only header arrives empty) and setting both is an error (docs/envoy.md#the-rules-that-matter-most
// rule 4). Each value is copied into the builder's own buffer, so a reply never
// references the engine's compiled data (jub0bs/cors v0.13.6 shipped a fix
// for exactly that kind of sharing).
type setBuilder struct {
	ptrs  []*corev3.HeaderValueOption
	slots []setSlot
	buf   []byte
}

// setSlot keeps an option next to its header value: one allocation for both.
type setSlot struct {
	opt corev3.HeaderValueOption
	val corev3.HeaderValue
}

// Room for a reply's set_headers inside the reply itself. A preflight answer
// has at most seven headers (ACAO, ACAC, ACAM, ACAH, ACMA, ACAPN, Vary); a
// response mutation at most five, usually four (ACAO, ACAC, ACEH, Vary).
// Values rarely pass the inline bytes; when anything does not fit, the
// builder falls back to the heap.
//
// The storage is embedded in the replies that set headers, so that one
// allocation holds a whole reply instead of four (reply, pointer slice,
// options, values): a profile of BenchmarkProcess showed those small
// allocations, and the GC work they cause, as the server's largest own cost.
type (
	preflightSetStorage struct {
		ptrs  [7]*corev3.HeaderValueOption
		slots [7]setSlot
		buf   [192]byte
	}
	responseSetStorage struct {
		ptrs  [4]*corev3.HeaderValueOption
		slots [4]setSlot
		buf   [128]byte
	}
)

func (st *preflightSetStorage) builder(n, size int) setBuilder {
	return inlineBuilder(st.ptrs[:], st.slots[:], st.buf[:], n, size)
}

func (st *responseSetStorage) builder(n, size int) setBuilder {
	return inlineBuilder(st.ptrs[:], st.slots[:], st.buf[:], n, size)
}

// inlineBuilder returns a builder for n headers totalling size value bytes,
// in the given storage where they fit and on the heap where they do not.
func inlineBuilder(ptrs []*corev3.HeaderValueOption, slots []setSlot, buf []byte, n, size int) setBuilder {
	var b setBuilder
	if n <= len(slots) {
		b.ptrs, b.slots = ptrs[:0:n], slots[:n]
	} else {
		b.ptrs, b.slots = make([]*corev3.HeaderValueOption, 0, n), make([]setSlot, n)
	}
	if size <= len(buf) {
		b.buf = buf[:0:size]
	} else {
		b.buf = make([]byte, 0, size)
	}
	return b
}

// set adds "name: value", replacing whatever the header map holds under name
// (Envoy's setCopy: every earlier value goes).
func (b *setBuilder) set(name, value string) {
	slot := &b.slots[len(b.ptrs)]
	start := len(b.buf)
	b.buf = append(b.buf, value...)
	slot.val.Key = name
	// The three-index slice stops a later append from reaching into the next
	// value, should anyone ever append to one.
	slot.val.RawValue = b.buf[start:len(b.buf):len(b.buf)]
	slot.opt.Header = &slot.val
	//lint:ignore SA1019 Envoy's ext_proc reads only the deprecated append (docs/envoy.md#append-versus-overwrite).
	slot.opt.Append = appendFalse
	// Ignored by Envoy's ext_proc today; matches `append` for the day it is
	// read (docs/envoy.md#append-versus-overwrite).
	slot.opt.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	b.ptrs = append(b.ptrs, &slot.opt)
}

func (b *setBuilder) done() []*corev3.HeaderValueOption { return b.ptrs }

// immediateReply and responseHeadersReply lay out the nested messages of one
// reply in a single allocation; only pointers into them are handed to gRPC.
type immediateReply struct {
	resp     extprocv3.ProcessingResponse
	oneof    extprocv3.ProcessingResponse_ImmediateResponse
	imm      extprocv3.ImmediateResponse
	mutation extprocv3.HeaderMutation
}

// immediateReplyWithHeaders is an immediateReply that sets headers (an
// allowed preflight); a denied one has none and stays small.
type immediateReplyWithHeaders struct {
	immediateReply
	set preflightSetStorage
}

type responseHeadersReply struct {
	resp     extprocv3.ProcessingResponse
	oneof    extprocv3.ProcessingResponse_ResponseHeaders
	headers  extprocv3.HeadersResponse
	common   extprocv3.CommonResponse
	mutation extprocv3.HeaderMutation
	set      responseSetStorage
	remove   [2]string // room for remove_headers
}

// answer is the reply to one message in corsgate's terms: one of the fixed
// replies, an immediate response, or a mutation of the upstream's response
// headers. Each exchange puts it into Envoy's its own way: protoExchange as
// go-control-plane messages (message), wireExchange as bytes (wire). The
// storage at the end holds the usual headers without an allocation.
type answer struct {
	fixed     *extprocv3.ProcessingResponse
	immediate bool
	status    uint32
	details   string
	remove    []string
	set       []extprocwire.Header

	// A preflight answer has at most seven headers (ACAO, ACAC, ACAM, ACAH,
	// ACMA, ACAPN, Vary); a response mutation at most five, usually four
	// (ACAO, ACAC, ACEH, Vary).
	setRoom    [7]extprocwire.Header
	removeRoom [2]string
}

func (a *answer) reset() {
	a.fixed, a.immediate, a.status, a.details, a.remove, a.set = nil, false, 0, "", nil, nil
}

// message is the answer as a go-control-plane message.
func (a *answer) message() *extprocv3.ProcessingResponse {
	switch {
	case a.fixed != nil:
		return a.fixed
	case a.immediate:
		return immediateMessage(a.status, a.set, a.details)
	default:
		return mutationMessage(a.remove, a.set)
	}
}

// wire is the answer encoded for extprocwire.Codec: a fixed reply as it
// was encoded at start-up, anything else written into r.
func (a *answer) wire(r *extprocwire.Reply) any {
	switch {
	case a.fixed != nil:
		return encoded(a.fixed)
	case a.immediate:
		return r.ImmediateResponse(a.status, a.set, a.details)
	default:
		return r.ResponseHeaderMutation(a.remove, a.set)
	}
}

// immediateMessage lays out an immediate response in one allocation.
func immediateMessage(status uint32, set []extprocwire.Header, details string) *extprocv3.ProcessingResponse {
	var r *immediateReply
	if len(set) > 0 {
		rh := new(immediateReplyWithHeaders)
		b := rh.set.builder(len(set), headersLen(set))
		for _, h := range set {
			b.set(h.Key, h.Value)
		}
		r = &rh.immediateReply
		r.mutation.SetHeaders = b.done()
		r.imm.Headers = &r.mutation
	} else {
		r = new(immediateReply)
	}
	r.imm.Status = httpStatus(int(status))
	r.imm.Details = details
	r.oneof.ImmediateResponse = &r.imm
	r.resp.Response = &r.oneof
	return &r.resp
}

// mutationMessage lays out a response-headers mutation in one allocation.
func mutationMessage(remove []string, set []extprocwire.Header) *extprocv3.ProcessingResponse {
	r := new(responseHeadersReply)
	if len(set) > 0 {
		b := r.set.builder(len(set), headersLen(set))
		for _, h := range set {
			b.set(h.Key, h.Value)
		}
		r.mutation.SetHeaders = b.done()
	}
	if len(remove) > 0 {
		r.mutation.RemoveHeaders = append(r.remove[:0], remove...)
	}
	r.common.HeaderMutation = &r.mutation
	r.headers.Response = &r.common
	r.oneof.ResponseHeaders = &r.headers
	r.resp.Response = &r.oneof
	return &r.resp
}

func headersLen(headers []extprocwire.Header) int {
	n := 0
	for _, h := range headers {
		n += len(h.Value)
	}
	return n
}
