package extprocwire

import (
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// The two replies that depend on the request, written straight into bytes:
// an ImmediateResponse (a preflight answered at the edge) and a
// response_headers HeaderMutation (an actual request's CORS headers). Built as
// go-control-plane messages, each was a tree of a dozen structs holding
// pointers, which the GC must scan; written here, it is one buffer of bytes
// it never looks into. Each header set is a HeaderValueOption with its value
// in raw_value, append false and append_action OVERWRITE_IF_EXISTS_OR_ADD,
// the only form corsgate sends (docs/envoy.md#append-versus-overwrite). A test
// checks the bytes against the messages the proto path builds
// (TestEncodeMatchesMessages in package extproc).

// Field numbers (envoy/service/ext_proc/v3/external_processor.proto,
// envoy/config/core/v3/base.proto, envoy/type/v3/http_status.proto,
// google/protobuf/wrappers.proto).
const (
	respResponseHeaders   = 2 // ProcessingResponse.response_headers (HeadersResponse)
	respImmediateResponse = 7 // ProcessingResponse.immediate_response

	headersRespResponse = 1 // HeadersResponse.response (CommonResponse)
	commonHeaderMut     = 2 // CommonResponse.header_mutation (status CONTINUE = 0 is not written)

	immStatus  = 1 // ImmediateResponse.status (HttpStatus)
	immHeaders = 2 // ImmediateResponse.headers (HeaderMutation)
	immDetails = 5 // ImmediateResponse.details
	statusCode = 1 // HttpStatus.code

	mutSetHeaders    = 1 // HeaderMutation.set_headers
	mutRemoveHeaders = 2 // HeaderMutation.remove_headers

	optHeader       = 1 // HeaderValueOption.header
	optAppend       = 2 // HeaderValueOption.append (BoolValue; false is an empty message)
	optAppendAction = 3 // HeaderValueOption.append_action
	overwriteOrAdd  = 2 // HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD

	valueKey = 1 // HeaderValue.key
	valueRaw = 3 // HeaderValue.raw_value
)

// Reply is an encoded reply for one message, sent by the codec as it is.
type Reply struct {
	data mem.BufferSlice
}

func newReply(b []byte) *Reply { return &Reply{data: mem.BufferSlice{mem.SliceBuffer(b)}} }

// ImmediateResponse encodes a ProcessingResponse whose immediate_response
// has the HTTP status, sets the headers, and has details (Envoy's
// %RESPONSE_CODE_DETAILS%).
func ImmediateResponse(status uint32, set []Header, details string) *Reply {
	imm := sizeVarintField(statusCode, uint64(status)) // HttpStatus
	imm = protowire.SizeTag(immStatus) + protowire.SizeBytes(imm)
	if len(set) > 0 {
		imm += protowire.SizeTag(immHeaders) + protowire.SizeBytes(sizeMutation(nil, set))
	}
	imm += sizeStringField(immDetails, details)
	size := protowire.SizeTag(respImmediateResponse) + protowire.SizeBytes(imm)

	b := make([]byte, 0, size)
	b = protowire.AppendTag(b, respImmediateResponse, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(imm))
	b = protowire.AppendTag(b, immStatus, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeVarintField(statusCode, uint64(status))))
	b = appendVarintField(b, statusCode, uint64(status))
	if len(set) > 0 {
		b = protowire.AppendTag(b, immHeaders, protowire.BytesType)
		b = appendMutation(b, nil, set)
	}
	b = appendStringField(b, immDetails, details)
	return newReply(b)
}

// ResponseHeaderMutation encodes a ProcessingResponse whose response_headers
// continue with a HeaderMutation that removes, then sets, headers.
func ResponseHeaderMutation(remove []string, set []Header) *Reply {
	mut := sizeMutation(remove, set)
	common := protowire.SizeTag(commonHeaderMut) + protowire.SizeBytes(mut)
	headers := protowire.SizeTag(headersRespResponse) + protowire.SizeBytes(common)
	size := protowire.SizeTag(respResponseHeaders) + protowire.SizeBytes(headers)

	b := make([]byte, 0, size)
	b = protowire.AppendTag(b, respResponseHeaders, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(headers))
	b = protowire.AppendTag(b, headersRespResponse, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(common))
	b = protowire.AppendTag(b, commonHeaderMut, protowire.BytesType)
	return newReply(appendMutation(b, remove, set))
}

// sizeMutation is a HeaderMutation's size, without its own tag and length.
func sizeMutation(remove []string, set []Header) int {
	n := 0
	for _, h := range set {
		n += protowire.SizeTag(mutSetHeaders) + protowire.SizeBytes(sizeOption(h))
	}
	for _, name := range remove {
		// A repeated string writes every element, empty ones too.
		n += protowire.SizeTag(mutRemoveHeaders) + protowire.SizeBytes(len(name))
	}
	return n
}

// appendMutation appends a HeaderMutation's length and fields.
func appendMutation(b []byte, remove []string, set []Header) []byte {
	b = protowire.AppendVarint(b, uint64(sizeMutation(remove, set)))
	for _, h := range set {
		b = protowire.AppendTag(b, mutSetHeaders, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeOption(h)))
		b = protowire.AppendTag(b, optHeader, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeValue(h)))
		b = appendStringField(b, valueKey, h.Key)
		b = appendStringField(b, valueRaw, h.Value)
		b = protowire.AppendTag(b, optAppend, protowire.BytesType)
		b = protowire.AppendVarint(b, 0) // BoolValue{value: false}
		b = appendVarintField(b, optAppendAction, overwriteOrAdd)
	}
	for _, name := range remove {
		b = protowire.AppendTag(b, mutRemoveHeaders, protowire.BytesType)
		b = protowire.AppendString(b, name)
	}
	return b
}

func sizeOption(h Header) int {
	return protowire.SizeTag(optHeader) + protowire.SizeBytes(sizeValue(h)) +
		protowire.SizeTag(optAppend) + protowire.SizeBytes(0) +
		sizeVarintField(optAppendAction, overwriteOrAdd)
}

func sizeValue(h Header) int {
	return sizeStringField(valueKey, h.Key) + sizeStringField(valueRaw, h.Value)
}

// proto3 leaves out a scalar field that holds its zero value; so do these.

func sizeStringField(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func sizeVarintField(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// Bytes returns the encoding, for tests; it must not be written to.
func (r *Reply) Bytes() []byte { return r.data.Materialize() }
