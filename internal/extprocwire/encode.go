package extprocwire

import (
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/corsgate/corsgate/internal/header"
)

// The two replies that depend on the request, written straight into bytes:
// an ImmediateResponse (a preflight answered at the edge) and a
// response_headers HeaderMutation (an actual request's CORS headers). Built as
// go-control-plane messages, each was a tree of a dozen structs holding
// pointers, which the GC must scan; written here, it is one buffer of bytes
// it never looks into. Each header set is a HeaderValueOption with its value
// in raw_value, append false and append_action OVERWRITE_IF_EXISTS_OR_ADD,
// the only form corsgate sends (docs/envoy.md#append-versus-overwrite). A test
// checks the bytes against the same replies built from go-control-plane's
// message types (TestEncodeMatchesMessages in package extproc).

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

// Reply is a reply encoded for one message, in a buffer of grpc-go's pool:
// the codec hands the buffer to gRPC, which returns it to the pool once the
// reply is written. A stream keeps one Reply and fills it for each message
// it answers; SendMsg must be given it right after.
type Reply struct {
	buf *[]byte
}

// pooled returns a buffer of the pool for size bytes, with room enough that
// grpc-go's mem.NewBuffer keeps it pooled (below its pooling threshold it
// would wrap it as a plain slice, and the pool would never see it again).
func pooled(size int) *[]byte {
	p := mem.DefaultBufferPool().Get(max(size, poolMin))
	*p = (*p)[:0]
	return p
}

// poolMin is the smallest buffer grpc-go's mem package pools (its threshold
// is internal; this finds it).
var poolMin = func() int {
	n := 1
	for mem.IsBelowBufferPoolingThreshold(n) {
		n *= 2
	}
	return n
}()

// data gives the encoding to gRPC; the Reply is empty afterwards.
func (r *Reply) data() mem.BufferSlice {
	b := mem.NewBuffer(r.buf, mem.DefaultBufferPool())
	r.buf = nil
	return mem.BufferSlice{b}
}

// ImmediateResponse encodes a ProcessingResponse whose immediate_response
// has the HTTP status, sets the headers, and has details (Envoy's
// %RESPONSE_CODE_DETAILS%).
func (r *Reply) ImmediateResponse(status uint32, set []header.Field, details string) *Reply {
	// Sizes inside out, once: each length-delimited field is written with
	// its length before its contents.
	code := sizeVarintField(statusCode, uint64(status)) // HttpStatus
	imm := sizeLen(immStatus, code) + sizeStringField(immDetails, details)
	var mut int
	if len(set) > 0 {
		mut = sizeMutation(nil, set)
		imm += sizeLen(immHeaders, mut)
	}

	b := r.start(sizeLen(respImmediateResponse, imm))
	b = appendLen(b, respImmediateResponse, imm)
	b = appendLen(b, immStatus, code)
	b = appendVarintField(b, statusCode, uint64(status))
	if len(set) > 0 {
		b = appendLen(b, immHeaders, mut)
		b = appendMutation(b, nil, set)
	}
	*r.buf = appendStringField(b, immDetails, details)
	return r
}

// ResponseHeaderMutation encodes a ProcessingResponse whose response_headers
// continue with a HeaderMutation that removes, then sets, headers.
func (r *Reply) ResponseHeaderMutation(remove []string, set []header.Field) *Reply {
	mut := sizeMutation(remove, set)
	common := sizeLen(commonHeaderMut, mut)
	headers := sizeLen(headersRespResponse, common)

	b := r.start(sizeLen(respResponseHeaders, headers))
	b = appendLen(b, respResponseHeaders, headers)
	b = appendLen(b, headersRespResponse, common)
	b = appendLen(b, commonHeaderMut, mut)
	*r.buf = appendMutation(b, remove, set)
	return r
}

// start takes a pooled buffer for size bytes and returns it empty.
func (r *Reply) start(size int) []byte {
	r.buf = pooled(size)
	return *r.buf
}

// sizeLen is the size of a length-delimited field of n bytes: tag, length,
// contents.
func sizeLen(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// appendLen appends a length-delimited field's tag and length (n); its
// contents follow.
func appendLen(b []byte, num protowire.Number, n int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

// sizeMutation is a HeaderMutation's size, without its own tag and length.
func sizeMutation(remove []string, set []header.Field) int {
	n := 0
	for _, h := range set {
		n += sizeLen(mutSetHeaders, sizeOption(h))
	}
	for _, name := range remove {
		// A repeated string writes every element, empty ones too.
		n += sizeLen(mutRemoveHeaders, len(name))
	}
	return n
}

// appendMutation appends a HeaderMutation's fields (its tag and length are
// the caller's).
func appendMutation(b []byte, remove []string, set []header.Field) []byte {
	for _, h := range set {
		b = appendLen(b, mutSetHeaders, sizeOption(h))
		b = appendLen(b, optHeader, sizeValue(h))
		b = appendStringField(b, valueKey, h.Name)
		b = appendStringField(b, valueRaw, h.Value)
		b = appendLen(b, optAppend, 0) // BoolValue{value: false}
		b = appendVarintField(b, optAppendAction, overwriteOrAdd)
	}
	for _, name := range remove {
		b = protowire.AppendTag(b, mutRemoveHeaders, protowire.BytesType)
		b = protowire.AppendString(b, name)
	}
	return b
}

func sizeOption(h header.Field) int {
	return sizeLen(optHeader, sizeValue(h)) + sizeLen(optAppend, 0) + sizeVarintField(optAppendAction, overwriteOrAdd)
}

func sizeValue(h header.Field) int {
	return sizeStringField(valueKey, h.Name) + sizeStringField(valueRaw, h.Value)
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

// Bytes returns the encoding before it is sent, for tests; it must not be
// written to.
func (r *Reply) Bytes() []byte {
	if r.buf == nil {
		return nil
	}
	return *r.buf
}
