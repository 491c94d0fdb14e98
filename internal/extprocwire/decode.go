// Package extprocwire reads Envoy's ext_proc ProcessingRequest straight from
// the wire and writes the replies an ext_proc server sends most, without
// building protobuf message trees.
//
// A ProcessingRequest carries every header of the HTTP request or response;
// a CORS decision reads a handful of them. protobuf-go's Unmarshal allocates
// a message, a string and a byte slice per header (about three allocations
// per header, a few dozen per message), and that work, with the GC it causes,
// was the largest part of corsgate's cost per exchange beyond gRPC's own
// (docs/performance.md#the-ext_proc-exchange). Decode walks the same bytes
// with the same primitives (protowire) and keeps only the headers it is asked
// for, copied into one allocation.
//
// Decode accepts exactly what proto.Unmarshal accepts into an
// extprocv3.ProcessingRequest and finds the same headers: a fuzz target
// checks that on arbitrary bytes (FuzzDecodeMatchesProto). Where the
// fast path would have to re-implement a large part of protobuf (the
// metadata_context and attributes fields, whose Struct values carry strings
// that proto.Unmarshal validates as UTF-8), it hands the message to
// proto.Unmarshal instead, so that the answer is the same by construction.
// Envoy fills them only when configured to (metadata_options,
// request_attributes); otherwise metadata_context comes empty, which the
// fast path reads.
package extprocwire

import (
	"errors"
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/internal/header"
)

// Kind is which field of ProcessingRequest's `request` oneof is set.
type Kind uint8

const (
	// KindNone: no `request` field (a flow-control-only message).
	KindNone Kind = iota
	KindRequestHeaders
	KindResponseHeaders
	KindRequestBody
	KindResponseBody
	KindRequestTrailers
	KindResponseTrailers
)

// A header of request_headers or response_headers is decoded into a
// header.Field, the pair the CORS engine speaks too. Its Value is the
// HeaderValue's raw_value when that is not empty, else its value: Envoy since
// 1.27 sends raw_value, older ones value.

// Request is what a server reads of one ProcessingRequest. Decode reuses
// Headers' storage from one message to the next; the strings of a message
// stay valid after the next one is decoded (each message's bytes are a new
// allocation, never written again).
type Request struct {
	Kind              Kind
	ObservabilityMode bool
	// Headers are request_headers' or response_headers' headers, in the
	// order they came, as a protobuf decoder merges them (repeated fields
	// concatenate). Empty for the other kinds.
	Headers []header.Field
	// KeepRequestHeader, when set, chooses the request headers kept in
	// Headers (by key); the others are checked and dropped. Response
	// headers are all kept: a server rewriting a response reads their keys.
	// The key it is given points into the message's buffer, which gRPC
	// recycles: it may compare the key, not keep it.
	KeepRequestHeader func(key string) bool
}

// Fields of ProcessingRequest and of the messages inside it
// (envoy/service/ext_proc/v3/external_processor.proto,
// envoy/config/core/v3/base.proto).
const (
	fieldRequestHeaders    = 2
	fieldResponseHeaders   = 3
	fieldRequestBody       = 4
	fieldResponseBody      = 5
	fieldRequestTrailers   = 6
	fieldResponseTrailers  = 7
	fieldMetadataContext   = 8
	fieldAttributes        = 9
	fieldObservabilityMode = 10
	// protocol_config, flow_control_init and client_window_update: messages
	// of numbers and booleans.
	fieldProtocolConfig     = 11
	fieldClientWindowUpdate = 13

	httpHeadersHeaders    = 1 // HttpHeaders.headers (HeaderMap)
	httpHeadersAttributes = 2 // HttpHeaders.attributes (map<string, Struct>)
	httpTrailersTrailers  = 1 // HttpTrailers.trailers (HeaderMap)
	headerMapHeaders      = 1 // HeaderMap.headers (repeated HeaderValue)
	headerValueKey        = 1 // HeaderValue.key (string)
	headerValueValue      = 2 // HeaderValue.value (string)
	headerValueRawValue   = 3 // HeaderValue.raw_value (bytes)
)

// Errors, as proto.Unmarshal reports them in kind (the texts differ).
var (
	errMalformed   = errors.New("extprocwire: malformed ProcessingRequest (not valid protobuf wire format)")
	errInvalidUTF8 = errors.New("extprocwire: ProcessingRequest has a string field that is not valid UTF-8")
	// errSlowPath is internal: the message needs proto.Unmarshal.
	errSlowPath = errors.New("extprocwire: message needs the full decoder")
)

// Decode reads one ProcessingRequest from b into r. It keeps nothing of b:
// the kept headers are copied into one new allocation. On error r holds no
// headers.
func Decode(b []byte, r *Request) error {
	r.Kind, r.ObservabilityMode, r.Headers = KindNone, false, r.Headers[:0]
	err := decodeRequest(b, r)
	if err == errSlowPath {
		var m extprocv3.ProcessingRequest
		if err := proto.Unmarshal(b, &m); err != nil {
			r.Headers = r.Headers[:0]
			return err
		}
		// proto.Unmarshal copied every byte out of b: the strings may
		// alias m.
		FromProto(&m, r)
		return nil
	}
	if err != nil {
		r.Headers = r.Headers[:0]
		return err
	}
	r.own()
	return nil
}

// FromProto reads m, a message decoded by protobuf-go, into r, as Decode
// reads its bytes. The header strings alias m's raw values, which must not
// change while they are used (Decode's slow path hands it a message that
// proto.Unmarshal filled with copies, and nothing writes to it afterwards).
func FromProto(m *extprocv3.ProcessingRequest, r *Request) {
	r.Kind, r.ObservabilityMode, r.Headers = KindNone, m.GetObservabilityMode(), r.Headers[:0]
	var hs *extprocv3.HttpHeaders
	switch m.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		r.Kind, hs = KindRequestHeaders, m.GetRequestHeaders()
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		r.Kind, hs = KindResponseHeaders, m.GetResponseHeaders()
	case *extprocv3.ProcessingRequest_RequestBody:
		r.Kind = KindRequestBody
	case *extprocv3.ProcessingRequest_ResponseBody:
		r.Kind = KindResponseBody
	case *extprocv3.ProcessingRequest_RequestTrailers:
		r.Kind = KindRequestTrailers
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		r.Kind = KindResponseTrailers
	}
	for _, hv := range hs.GetHeaders().GetHeaders() {
		h := header.Field{Name: hv.GetKey(), Value: protoValue(hv)}
		if r.keeps(h.Name) {
			r.Headers = append(r.Headers, h)
		}
	}
}

func protoValue(hv *corev3.HeaderValue) string {
	if raw := hv.GetRawValue(); len(raw) > 0 {
		return unsafe.String(unsafe.SliceData(raw), len(raw))
	}
	return hv.GetValue()
}

func (r *Request) keeps(key string) bool {
	return r.Kind != KindRequestHeaders || r.KeepRequestHeader == nil || r.KeepRequestHeader(key)
}

// decodeRequest walks ProcessingRequest's fields. Header strings alias b
// until own copies them.
func decodeRequest(b []byte, r *Request) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		switch {
		case typ == protowire.BytesType && (num == fieldRequestHeaders || num == fieldResponseHeaders):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errMalformed
			}
			kind := KindRequestHeaders
			if num == fieldResponseHeaders {
				kind = KindResponseHeaders
			}
			// A oneof field seen again merges into the message it holds
			// (its headers concatenate); another field replaces it.
			if r.Kind != kind {
				r.Kind, r.Headers = kind, r.Headers[:0]
			}
			if err := decodeHTTPHeaders(v, r); err != nil {
				return err
			}
			b = b[n:]
		case typ == protowire.BytesType && (num == fieldRequestTrailers || num == fieldResponseTrailers):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errMalformed
			}
			if err := decodeHTTPTrailers(v); err != nil {
				return err
			}
			r.Kind, r.Headers = KindRequestTrailers, r.Headers[:0]
			if num == fieldResponseTrailers {
				r.Kind = KindResponseTrailers
			}
			b = b[n:]
		case typ == protowire.BytesType && (num == fieldRequestBody || num == fieldResponseBody):
			// HttpBody holds bytes and booleans only: any well-formed
			// fields will do.
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || !wellFormed(v) {
				return errMalformed
			}
			r.Kind, r.Headers = KindRequestBody, r.Headers[:0]
			if num == fieldResponseBody {
				r.Kind = KindResponseBody
			}
			b = b[n:]
		case typ == protowire.BytesType && num == fieldMetadataContext:
			// Envoy sends metadata_context on every message, empty unless
			// metadata_options forward namespaces: an empty Metadata is
			// well-formed; anything in it holds strings to check.
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errMalformed
			}
			if len(v) > 0 {
				return errSlowPath
			}
			b = b[n:]
		case typ == protowire.BytesType && num == fieldAttributes:
			return errSlowPath
		case typ == protowire.VarintType && num == fieldObservabilityMode:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errMalformed
			}
			r.ObservabilityMode = v != 0
			b = b[n:]
		case typ == protowire.BytesType:
			// protocol_config, flow_control_init, client_window_update
			// (numbers and booleans only), or a field this version of the
			// API does not know: well-formed is all proto.Unmarshal asks.
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || (num >= fieldProtocolConfig && num <= fieldClientWindowUpdate && !wellFormed(v)) {
				return errMalformed
			}
			b = b[n:]
		default:
			// Any other field, or a known field with another wire type
			// (which protobuf keeps as an unknown field).
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errMalformed
			}
			b = b[n:]
		}
	}
	return nil
}

// consumeTag reads a field's tag as protobuf-go does: a field number of 0
// or above 2^29-1 is malformed, and so is an end-group tag outside a group.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, 0, -1
	}
	num, typ := v>>3, protowire.Type(v&7)
	if num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) || typ == protowire.EndGroupType {
		return 0, 0, -1
	}
	return protowire.Number(num), typ, n
}

// wellFormed reports whether b is a sequence of well-formed fields, which is
// all protobuf checks of a message whose fields are numbers, booleans and
// bytes.
func wellFormed(b []byte) bool {
	return fields(b, func(protowire.Number, []byte) error { return nil }) == nil
}

// fields walks a message's fields as protobuf does: each length-delimited
// field's value goes to bytesField (which ignores the numbers it does not
// know); every other field is skipped as an unknown field is, checked for
// well-formedness only. The messages read this way have no other fields
// that matter here.
func fields(b []byte, bytesField func(num protowire.Number, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errMalformed
			}
			if err := bytesField(num, v); err != nil {
				return err
			}
			b = b[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return errMalformed
		}
		b = b[n:]
	}
	return nil
}

// decodeHTTPHeaders reads HttpHeaders: its HeaderMap, appending the headers
// to r; end_of_stream is not needed; attributes (Struct values, full of
// strings to validate) go to the full decoder.
func decodeHTTPHeaders(b []byte, r *Request) error {
	return fields(b, func(num protowire.Number, v []byte) error {
		switch num {
		case httpHeadersHeaders:
			return decodeHeaderMap(v, r)
		case httpHeadersAttributes:
			return errSlowPath
		}
		return nil
	})
}

// decodeHTTPTrailers checks HttpTrailers; a server that reads no trailers
// keeps nothing of them.
func decodeHTTPTrailers(b []byte) error {
	return fields(b, func(num protowire.Number, v []byte) error {
		if num == httpTrailersTrailers {
			return decodeHeaderMap(v, nil)
		}
		return nil
	})
}

// decodeHeaderMap reads HeaderMap's repeated HeaderValue, appending each
// header r keeps; r nil checks them and keeps none.
func decodeHeaderMap(b []byte, r *Request) error {
	return fields(b, func(num protowire.Number, v []byte) error {
		if num != headerMapHeaders {
			return nil
		}
		h, err := decodeHeaderValue(v)
		if err == nil && r != nil && r.keeps(h.Name) {
			r.Headers = append(r.Headers, h)
		}
		return err
	})
}

// decodeHeaderValue reads one HeaderValue. As in protobuf, the last
// occurrence of a field wins, and key and value (proto3 strings) must be
// valid UTF-8, every occurrence of them; raw_value (bytes) may hold
// anything.
func decodeHeaderValue(b []byte) (header.Field, error) {
	var key, value, raw []byte
	err := fields(b, func(num protowire.Number, v []byte) error {
		switch num {
		case headerValueKey:
			key = v
		case headerValueValue:
			value = v
		case headerValueRawValue:
			raw = v
			return nil
		default:
			return nil
		}
		if !utf8.Valid(v) {
			return errInvalidUTF8
		}
		return nil
	})
	if err != nil {
		return header.Field{}, err
	}
	if len(raw) == 0 {
		raw = value
	}
	return header.Field{Name: alias(key), Value: alias(raw)}, nil
}

// alias is b as a string, without a copy; own replaces it before Decode
// returns.
func alias(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// own copies the kept headers' bytes into one new allocation, so that r
// holds nothing of the message's buffer (gRPC recycles it).
func (r *Request) own() {
	size := 0
	for _, h := range r.Headers {
		size += len(h.Name) + len(h.Value)
	}
	if size == 0 {
		return
	}
	buf := make([]byte, 0, size)
	for i := range r.Headers {
		h := &r.Headers[i]
		start := len(buf)
		buf = append(buf, h.Name...)
		buf = append(buf, h.Value...)
		h.Name = alias(buf[start : start+len(h.Name)])
		h.Value = alias(buf[start+len(h.Name):])
	}
}
