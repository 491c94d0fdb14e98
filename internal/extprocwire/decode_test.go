package extprocwire_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/corsgate/corsgate/internal/extprocwire"
	"github.com/corsgate/corsgate/internal/header"
)

// Field numbers, as in decode.go (external_processor.proto, base.proto),
// for the hand-made inputs.
const (
	fReqHeaders    = 2
	fRespHeaders   = 3
	fReqBody       = 4
	fRespBody      = 5
	fReqTrailers   = 6
	fRespTrailers  = 7
	fMetadata      = 8
	fAttributes    = 9
	fObservability = 10
	fProtocol      = 11
	fFlowInit      = 12
	fWindowUpdate  = 13

	fHTTPHeaders = 1 // HttpHeaders.headers, HttpTrailers.trailers
	fMapHeaders  = 1 // HeaderMap.headers
	fKey         = 1
	fValue       = 2
	fRawValue    = 3

	fUnknown = 100 // no message in a ProcessingRequest has it
)

// --- hand-made wire format -------------------------------------------------

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func tag(num protowire.Number, typ protowire.Type) []byte {
	return protowire.AppendTag(nil, num, typ)
}

func bytesField(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(tag(num, protowire.BytesType), v)
}

func strField(num protowire.Number, s string) []byte { return bytesField(num, []byte(s)) }

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(tag(num, protowire.VarintType), v)
}

func fixed32Field(num protowire.Number, v uint32) []byte {
	return protowire.AppendFixed32(tag(num, protowire.Fixed32Type), v)
}

func fixed64Field(num protowire.Number, v uint64) []byte {
	return protowire.AppendFixed64(tag(num, protowire.Fixed64Type), v)
}

func group(num protowire.Number, body ...[]byte) []byte {
	return cat(tag(num, protowire.StartGroupType), cat(body...), tag(num, protowire.EndGroupType))
}

// unknownAll is one unknown field of every valid wire type, the group
// holding fields of its own (a nested group among them).
func unknownAll(num protowire.Number) []byte {
	return cat(
		varintField(num, 150),
		fixed64Field(num+1, 1),
		strField(num+2, "not parsed"),
		group(num+3, varintField(1, 1), group(2, fixed32Field(3, 7)), strField(4, "x")),
		fixed32Field(num+4, 1),
	)
}

// hv is a HeaderValue with the fields that are not empty.
func hv(key, value, raw string) []byte {
	var b []byte
	if key != "" {
		b = append(b, strField(fKey, key)...)
	}
	if value != "" {
		b = append(b, strField(fValue, value)...)
	}
	if raw != "" {
		b = append(b, strField(fRawValue, raw)...)
	}
	return b
}

// headerMap is a HeaderMap of the given HeaderValues.
func headerMap(hvs ...[]byte) []byte {
	var b []byte
	for _, h := range hvs {
		b = append(b, bytesField(fMapHeaders, h)...)
	}
	return b
}

// httpHeaders is an HttpHeaders (or HttpTrailers) of one HeaderMap.
func httpHeaders(hvs ...[]byte) []byte { return bytesField(fHTTPHeaders, headerMap(hvs...)) }

func reqHeaders(hvs ...[]byte) []byte  { return bytesField(fReqHeaders, httpHeaders(hvs...)) }
func respHeaders(hvs ...[]byte) []byte { return bytesField(fRespHeaders, httpHeaders(hvs...)) }

// raw is a realistic Envoy header: the value in raw_value.
func raw(key, value string) []byte { return hv(key, "", value) }

// --- real messages ----------------------------------------------------------

// preflight is a browser's CORS preflight as Envoy forwards it: keys lower
// case, pseudo-headers first.
var preflight = []header.Field{
	{Name: ":authority", Value: "api.example.com"},
	{Name: ":path", Value: "/v1/orders/42?expand=items"},
	{Name: ":method", Value: "OPTIONS"},
	{Name: ":scheme", Value: "https"},
	{Name: "accept", Value: "*/*"},
	{Name: "access-control-request-method", Value: "PUT"},
	{Name: "access-control-request-headers", Value: "authorization,content-type,x-request-id"},
	{Name: "origin", Value: "https://app.example.com"},
	{Name: "user-agent", Value: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"},
	{Name: "sec-fetch-mode", Value: "cors"},
	{Name: "sec-fetch-site", Value: "same-site"},
	{Name: "sec-fetch-dest", Value: "empty"},
	{Name: "referer", Value: "https://app.example.com/orders"},
	{Name: "accept-encoding", Value: "gzip, deflate, br, zstd"},
	{Name: "accept-language", Value: "en-US,en;q=0.9"},
	{Name: "x-forwarded-proto", Value: "https"},
	{Name: "x-request-id", Value: "6f0c2a0e-6b5d-4c58-9d0e-4b1f3c2a9e71"},
}

var responseHeaders = []header.Field{
	{Name: ":status", Value: "200"},
	{Name: "content-type", Value: "application/json"},
	{Name: "content-length", Value: "1534"},
	{Name: "date", Value: "Tue, 18 Aug 2026 09:12:44 GMT"},
	{Name: "server", Value: "envoy"},
	{Name: "vary", Value: "Origin"},
	{Name: "cache-control", Value: "no-store"},
	{Name: "x-envoy-upstream-service-time", Value: "12"},
}

// keepCORS is a KeepRequestHeader as a CORS server sets it.
func keepCORS(key string) bool {
	switch key {
	case ":authority", ":path", ":method", "origin":
		return true
	}
	return false
}

func filterHeaders(hs []header.Field, keep func(string) bool) []header.Field {
	var out []header.Field
	for _, h := range hs {
		if keep(h.Name) {
			out = append(out, h)
		}
	}
	return out
}

// headerMapOf builds a HeaderMap with the values in raw_value (Envoy 1.27
// and later) or in value (older Envoys).
func headerMapOf(hs []header.Field, inRaw bool) *corev3.HeaderMap {
	m := &corev3.HeaderMap{}
	for _, h := range hs {
		v := &corev3.HeaderValue{Key: h.Name}
		if inRaw {
			v.RawValue = []byte(h.Value)
		} else {
			v.Value = h.Value
		}
		m.Headers = append(m.Headers, v)
	}
	return m
}

func requestHeadersMsg(hs []header.Field, inRaw bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers:     headerMapOf(hs, inRaw),
			EndOfStream: true,
		}},
	}
}

func responseHeadersMsg(hs []header.Field) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: headerMapOf(hs, true),
		}},
	}
}

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatalf("proto.Marshal(%T): %v", m, err)
	}
	return b
}

func mustStruct(tb testing.TB, v map[string]any) *structpb.Struct {
	tb.Helper()
	s, err := structpb.NewStruct(v)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// --- the cases ---------------------------------------------------------------

type decodeCase struct {
	name string
	in   []byte
	// want is the expected Kind, ObservabilityMode and Headers (nil: none)
	// without a KeepRequestHeader; ignored when err.
	want extprocwire.Request
	err  bool
}

func hdrs(kv ...string) []header.Field {
	var hs []header.Field
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, header.Field{Name: kv[i], Value: kv[i+1]})
	}
	return hs
}

func req(k extprocwire.Kind, hs ...header.Field) extprocwire.Request {
	return extprocwire.Request{Kind: k, Headers: hs}
}

func decodeCases(tb testing.TB) []decodeCase {
	const (
		none     = extprocwire.KindNone
		reqH     = extprocwire.KindRequestHeaders
		respH    = extprocwire.KindResponseHeaders
		reqBody  = extprocwire.KindRequestBody
		respBody = extprocwire.KindResponseBody
		reqTr    = extprocwire.KindRequestTrailers
		respTr   = extprocwire.KindResponseTrailers
	)
	a, b, c := raw("a", "1"), raw("b", "2"), raw("c", "3")
	ha, hb, hc := hdrs("a", "1"), hdrs("b", "2"), hdrs("c", "3")
	origin := raw("origin", "https://app.example.com")
	horigin := hdrs("origin", "https://app.example.com")
	// A Metadata whose Struct holds a string that is not UTF-8:
	// Metadata{filter_metadata: {"f": Struct{fields: {"k": Value{string_value: "\xff"}}}}}.
	badStruct := bytesField(1, cat(strField(1, "k"), bytesField(2, strField(3, "\xff"))))
	badMetadata := bytesField(fMetadata, bytesField(1, cat(strField(1, "f"), bytesField(2, badStruct))))

	withObs := requestHeadersMsg(preflight[:3], true)
	withObs.ObservabilityMode = true
	withMetadata := requestHeadersMsg(preflight[:3], true)
	withMetadata.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"envoy.filters.http.jwt_authn": mustStruct(tb, map[string]any{"sub": "user-1", "scopes": []any{"read", "write"}}),
	}}
	withAttributes := requestHeadersMsg(preflight[:3], true)
	withAttributes.Attributes = map[string]*structpb.Struct{
		"envoy.filters.http.ext_proc": mustStruct(tb, map[string]any{"request.path": "/v1/orders", "source.port": 51234.0}),
	}
	withHTTPAttributes := requestHeadersMsg(preflight[:3], true)
	// Deprecated, but an old Envoy may still send it, and the decoder must
	// read it as protobuf does.
	withHTTPAttributes.GetRequestHeaders().Attributes = map[string]*structpb.Struct{ //nolint:staticcheck // SA1019: the field is on the wire whatever its status
		"envoy.filters.http.ext_proc": mustStruct(tb, map[string]any{"connection.mtls": true}),
	}
	withFlow := requestHeadersMsg(preflight[:3], true)
	withFlow.ProtocolConfig = &extprocv3.ProtocolConfiguration{
		RequestBodyMode:                         extprocfilterv3.ProcessingMode_FULL_DUPLEX_STREAMED,
		ResponseBodyMode:                        extprocfilterv3.ProcessingMode_BUFFERED,
		SendBodyWithoutWaitingForHeaderResponse: true,
	}
	withFlow.FlowControlInit = &extprocv3.ProcessingRequest_FlowControlInit{
		InitialWindowDownstreamToSidestream: 65536, InitialWindowSidestreamToUpstream: -1,
		InitialWindowUpstreamToSidestream: 1 << 40, InitialWindowSidestreamToDownstream: 1,
	}
	withFlow.ClientWindowUpdate = &extprocv3.ProcessingRequest_ClientWindowUpdate{
		WindowIncrementSidestreamToUpstream: 1024, WindowIncrementSidestreamToDownstream: 2048,
	}
	windowOnly := &extprocv3.ProcessingRequest{ClientWindowUpdate: &extprocv3.ProcessingRequest_ClientWindowUpdate{
		WindowIncrementSidestreamToUpstream: 1,
	}}
	trailers := headerMapOf(hdrs("grpc-status", "0", "grpc-message", "ok"), true)
	body := func(request bool) *extprocv3.ProcessingRequest {
		hb := &extprocv3.HttpBody{Body: []byte("{\"id\":42}\xff\x00"), EndOfStream: true, GrpcMessageCompressed: true}
		if request {
			return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: hb}}
		}
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: hb}}
	}
	// A 10-byte varint holds at most 64 bits: its last byte may be 0 or 1.
	maxVarint := append(bytes.Repeat([]byte{0xff}, 9), 0x01)
	overflowVarint := append(bytes.Repeat([]byte{0xff}, 9), 0x02)

	return []decodeCase{
		{name: "empty message", in: nil, want: req(none)},

		// What Envoy sends.
		{name: "preflight, values in raw_value", in: mustMarshal(tb, requestHeadersMsg(preflight, true)), want: req(reqH, preflight...)},
		{name: "preflight, values in value (Envoy before 1.27)", in: mustMarshal(tb, requestHeadersMsg(preflight, false)), want: req(reqH, preflight...)},
		{name: "response headers", in: mustMarshal(tb, responseHeadersMsg(responseHeaders)), want: req(respH, responseHeaders...)},
		{name: "request body", in: mustMarshal(tb, body(true)), want: req(reqBody)},
		{name: "response body", in: mustMarshal(tb, body(false)), want: req(respBody)},
		{name: "request trailers", in: mustMarshal(tb, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{
			RequestTrailers: &extprocv3.HttpTrailers{Trailers: trailers}}}), want: req(reqTr)},
		{name: "response trailers", in: mustMarshal(tb, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{
			ResponseTrailers: &extprocv3.HttpTrailers{Trailers: trailers}}}), want: req(respTr)},
		{name: "observability_mode", in: mustMarshal(tb, withObs), want: extprocwire.Request{Kind: reqH, ObservabilityMode: true, Headers: preflight[:3]}},
		{name: "protocol_config, flow_control_init, client_window_update", in: mustMarshal(tb, withFlow), want: req(reqH, preflight[:3]...)},
		{name: "client_window_update alone", in: mustMarshal(tb, windowOnly), want: req(none)},

		// Fields that send Decode to proto.Unmarshal.
		{name: "metadata_context (full decoder)", in: mustMarshal(tb, withMetadata), want: req(reqH, preflight[:3]...)},
		{name: "attributes (full decoder)", in: mustMarshal(tb, withAttributes), want: req(reqH, preflight[:3]...)},
		{name: "HttpHeaders.attributes (full decoder)", in: mustMarshal(tb, withHTTPAttributes), want: req(reqH, preflight[:3]...)},
		{name: "metadata_context with a Struct string not UTF-8", in: cat(reqHeaders(a), badMetadata), err: true},
		{name: "metadata_context before malformed headers", in: cat(bytesField(fMetadata, nil), bytesField(fReqHeaders, []byte{0x0a, 0x05})), err: true},
		{name: "attributes as a varint (unknown field: fast path)", in: cat(varintField(fAttributes, 1), reqHeaders(a)), want: req(reqH, ha...)},

		// HeaderValue: which value, and the last occurrence wins.
		{name: "value and raw_value: raw_value wins", in: reqHeaders(hv("origin", "https://value.example", "https://raw.example")),
			want: req(reqH, hdrs("origin", "https://raw.example")...)},
		{name: "empty raw_value: value", in: reqHeaders(cat(strField(fKey, "k"), strField(fValue, "v"), bytesField(fRawValue, nil))),
			want: req(reqH, hdrs("k", "v")...)},
		// proto3 bytes: the last occurrence wins, even when it is empty.
		{name: "raw_value, then empty raw_value: value", in: reqHeaders(cat(strField(fKey, "k"), strField(fValue, "v"), strField(fRawValue, "r"), bytesField(fRawValue, nil))),
			want: req(reqH, hdrs("k", "v")...)},
		{name: "key twice: last wins", in: reqHeaders(cat(strField(fKey, "first"), strField(fRawValue, "v"), strField(fKey, "second"))),
			want: req(reqH, hdrs("second", "v")...)},
		{name: "empty HeaderValue", in: reqHeaders(nil), want: req(reqH, hdrs("", "")...)},
		{name: "empty HttpHeaders", in: bytesField(fReqHeaders, nil), want: req(reqH)},
		{name: "key as a varint (unknown field)", in: reqHeaders(cat(varintField(fKey, 5), strField(fValue, "v"))), want: req(reqH, hdrs("", "v")...)},
		{name: "HeaderMap.headers as fixed64 (unknown field)", in: bytesField(fReqHeaders, bytesField(fHTTPHeaders, fixed64Field(fMapHeaders, 1))), want: req(reqH)},

		// UTF-8: key and value are proto3 strings, raw_value bytes.
		{name: "key not UTF-8", in: reqHeaders(raw("orig\xffin", "x")), err: true},
		{name: "value not UTF-8", in: reqHeaders(hv("origin", "\xc3\x28", "")), err: true},
		{name: "value not UTF-8, raw_value set", in: reqHeaders(hv("origin", "\xc3\x28", "ok")), err: true},
		{name: "raw_value not UTF-8", in: reqHeaders(raw("x-bin", "\xff\xfe\x00")), want: req(reqH, hdrs("x-bin", "\xff\xfe\x00")...)},
		// protobuf-go validates every occurrence of a proto3 string, not
		// only the one that is kept.
		{name: "key twice, first not UTF-8", in: reqHeaders(cat(strField(fKey, "\xff"), strField(fKey, "origin"))), err: true},
		{name: "response header value not UTF-8", in: respHeaders(hv("server", "\xff", "")), err: true},
		{name: "trailer key not UTF-8", in: bytesField(fRespTrailers, httpHeaders(raw("\xff", "0"))), err: true},

		// The oneof seen more than once.
		// protobuf-go merges a repeated occurrence of a oneof message field
		// into the one it holds: the HeaderMaps merge and their repeated
		// headers concatenate.
		{name: "request_headers twice: headers concatenate", in: cat(reqHeaders(a), reqHeaders(b, c)), want: req(reqH, slices.Concat(ha, hb, hc)...)},
		// A singular message field seen twice merges too.
		{name: "HttpHeaders.headers twice: headers concatenate", in: bytesField(fReqHeaders, cat(httpHeaders(a), httpHeaders(b))), want: req(reqH, slices.Concat(ha, hb)...)},
		// Another field of the oneof replaces the message it holds.
		{name: "request_headers, response_headers: last wins", in: cat(reqHeaders(a), respHeaders(b)), want: req(respH, hb...)},
		{name: "request_headers, response_headers, request_headers: a new message", in: cat(reqHeaders(a), respHeaders(b), reqHeaders(c)), want: req(reqH, hc...)},
		{name: "request_headers, request_body", in: cat(reqHeaders(a), bytesField(fReqBody, nil)), want: req(reqBody)},
		{name: "response_body, response_headers", in: cat(bytesField(fRespBody, strField(1, "x")), respHeaders(b)), want: req(respH, hb...)},
		{name: "request_headers, request_trailers", in: cat(reqHeaders(a), bytesField(fReqTrailers, httpHeaders(b))), want: req(reqTr)},
		{name: "request_headers, metadata_context, request_headers (full decoder)", in: cat(reqHeaders(a), bytesField(fMetadata, nil), reqHeaders(b)), want: req(reqH, slices.Concat(ha, hb)...)},

		// Known fields with another wire type are unknown fields to
		// protobuf, kept aside and otherwise ignored.
		{name: "request_headers as a varint", in: varintField(fReqHeaders, 1), want: req(none)},
		{name: "request_headers as fixed32 after request_headers", in: cat(reqHeaders(a), fixed32Field(fReqHeaders, 1)), want: req(reqH, ha...)},
		{name: "request_headers as a group", in: group(fReqHeaders, strField(1, "x")), want: req(none)},
		{name: "observability_mode as bytes", in: strField(fObservability, "\x01"), want: req(none)},
		{name: "protocol_config as a varint", in: varintField(fProtocol, 3), want: req(none)},

		// observability_mode is a bool: any varint other than 0 is true,
		// and the last one wins.
		{name: "observability_mode 2", in: varintField(fObservability, 2), want: extprocwire.Request{ObservabilityMode: true}},
		{name: "observability_mode 1 then 0", in: cat(varintField(fObservability, 1), varintField(fObservability, 0)), want: req(none)},
		{name: "observability_mode, 10-byte varint", in: cat(tag(fObservability, protowire.VarintType), maxVarint), want: extprocwire.Request{ObservabilityMode: true}},
		{name: "observability_mode, varint over 64 bits", in: cat(tag(fObservability, protowire.VarintType), overflowVarint), err: true},

		// Unknown fields.
		{name: "unknown fields of every wire type, at every level", in: cat(
			unknownAll(fUnknown),
			bytesField(fReqHeaders, cat(
				unknownAll(fUnknown),
				bytesField(fHTTPHeaders, cat(
					unknownAll(fUnknown),
					bytesField(fMapHeaders, cat(unknownAll(fUnknown), raw("origin", "https://app.example.com"), unknownAll(fUnknown))),
				)),
			)),
			unknownAll(fUnknown+10),
		), want: req(reqH, horigin...)},
		{name: "unknown fields in trailers", in: bytesField(fRespTrailers, cat(unknownAll(fUnknown), bytesField(fHTTPHeaders, cat(unknownAll(fUnknown), bytesField(fMapHeaders, unknownAll(fUnknown)))))), want: req(respTr)},
		{name: "unknown fields in body and flow control", in: cat(
			bytesField(fReqBody, unknownAll(fUnknown)),
			bytesField(fProtocol, unknownAll(fUnknown)),
			bytesField(fFlowInit, unknownAll(fUnknown)),
			bytesField(fWindowUpdate, unknownAll(fUnknown)),
		), want: req(reqBody)},
		{name: "unknown bytes field, content not protobuf", in: cat(strField(fUnknown, "\xff\xff\xff"), reqHeaders(origin)), want: req(reqH, horigin...)},
		{name: "field 1 (not used) as bytes", in: cat(strField(1, "\x00"), reqHeaders(origin)), want: req(reqH, horigin...)},
		{name: "highest field number", in: varintField(protowire.MaxValidNumber, 1), want: req(none)},
		// Inside a group protowire reads tags itself, and it takes field
		// numbers up to 2^31-1 (DecodeTag); proto.Unmarshal does the same.
		{name: "unknown group holding a field number above 2^29-1", in: group(fUnknown, varintField(protowire.MaxValidNumber+1, 1)), want: req(none)},
		{name: "non-minimal tag", in: cat([]byte{0x92, 0x80, 0x00}, protowire.AppendBytes(nil, httpHeaders(a))), want: req(reqH, ha...)},
		{name: "non-minimal length", in: cat(tag(fReqHeaders, protowire.BytesType), []byte{0x80 | byte(len(httpHeaders(a))), 0x00}, httpHeaders(a)), want: req(reqH, ha...)},

		// Groups and tags protobuf rejects.
		{name: "group closed by another field number", in: cat(tag(fUnknown, protowire.StartGroupType), tag(fUnknown+1, protowire.EndGroupType)), err: true},
		{name: "group not closed", in: cat(tag(fUnknown, protowire.StartGroupType), varintField(1, 1)), err: true},
		{name: "group not closed inside HeaderValue", in: reqHeaders(cat(raw("a", "1"), tag(fUnknown, protowire.StartGroupType))), err: true},
		{name: "stray end-group tag", in: cat(reqHeaders(a), tag(fUnknown, protowire.EndGroupType)), err: true},
		{name: "stray end-group tag inside HeaderValue", in: reqHeaders(cat(raw("a", "1"), tag(fKey, protowire.EndGroupType))), err: true},
		{name: "stray end-group tag inside protocol_config", in: bytesField(fProtocol, tag(1, protowire.EndGroupType)), err: true},
		{name: "field number 0", in: varintField(0, 1), err: true},
		{name: "field number 0 inside a group", in: group(fUnknown, varintField(0, 1)), err: true},
		{name: "field number 0 inside HttpBody", in: bytesField(fRespBody, varintField(0, 1)), err: true},
		{name: "field number 2^29 (above the highest)", in: varintField(protowire.MaxValidNumber+1, 1), err: true},
		{name: "field number 2^29 inside HeaderMap", in: bytesField(fReqHeaders, bytesField(fHTTPHeaders, varintField(protowire.MaxValidNumber+1, 1))), err: true},
		{name: "wire type 6", in: tag(fUnknown, 6), err: true},
		{name: "wire type 7 on a known field", in: cat(tag(fReqHeaders, 7), []byte{0}), err: true},
		{name: "wire type 6 inside a group", in: group(fUnknown, tag(1, 6)), err: true},

		// Truncated input.
		{name: "truncated tag", in: []byte{0x80}, err: true},
		{name: "truncated varint value", in: []byte{0x50, 0x80}, err: true},
		{name: "missing varint value", in: []byte{0x50}, err: true},
		{name: "truncated fixed32", in: cat(tag(fUnknown, protowire.Fixed32Type), []byte{1, 2, 3}), err: true},
		{name: "truncated fixed64", in: cat(tag(fUnknown, protowire.Fixed64Type), []byte{1, 2, 3, 4, 5, 6, 7}), err: true},
		{name: "missing length", in: tag(fReqHeaders, protowire.BytesType), err: true},
		{name: "truncated length", in: cat(tag(fReqHeaders, protowire.BytesType), []byte{0x80}), err: true},
		{name: "length past the end", in: cat(tag(fReqHeaders, protowire.BytesType), []byte{0x05, 0x0a}), err: true},
		{name: "length 2^32-1", in: cat(tag(fReqHeaders, protowire.BytesType), []byte{0xff, 0xff, 0xff, 0xff, 0x0f}), err: true},
		{name: "length past the end of HeaderValue", in: bytesField(fReqHeaders, bytesField(fHTTPHeaders, bytesField(fMapHeaders, []byte{0x0a, 0x03, 'a'}))), err: true},
		{name: "unknown field: length past the end", in: cat(tag(fUnknown, protowire.BytesType), []byte{0x02, 0x00}), err: true},
		{name: "truncated request_body content", in: bytesField(fReqBody, []byte{0x0a, 0x09}), err: true},
		{name: "truncated flow_control_init content", in: bytesField(fFlowInit, []byte{0x08}), err: true},
		{name: "truncated client_window_update content", in: bytesField(fWindowUpdate, []byte{0x08, 0x80}), err: true},
		{name: "truncated trailers content", in: bytesField(fReqTrailers, []byte{0x0a, 0x02, 0x0a}), err: true},
		{name: "truncated after headers", in: cat(reqHeaders(a), []byte{0x1a}), err: true},
	}
}

// --- comparison --------------------------------------------------------------

func diffRequest(got, want *extprocwire.Request) string {
	var d []string
	if got.Kind != want.Kind {
		d = append(d, fmt.Sprintf("Kind %d, want %d", got.Kind, want.Kind))
	}
	if got.ObservabilityMode != want.ObservabilityMode {
		d = append(d, fmt.Sprintf("ObservabilityMode %t, want %t", got.ObservabilityMode, want.ObservabilityMode))
	}
	if !slices.Equal(got.Headers, want.Headers) {
		d = append(d, fmt.Sprintf("Headers\n\t%q\nwant\n\t%q", got.Headers, want.Headers))
	}
	return strings.Join(d, "; ")
}

// stale is a Request as a server holds it between messages: another
// message's results, which Decode must replace.
func stale(keep func(string) bool) extprocwire.Request {
	return extprocwire.Request{
		Kind:              extprocwire.KindResponseTrailers,
		ObservabilityMode: true,
		Headers:           append(make([]header.Field, 0, 4), header.Field{Name: "stale", Value: "stale"}),
		KeepRequestHeader: keep,
	}
}

// decodeLikeProto decodes b with Decode and with proto.Unmarshal and
// FromProto, with keep as KeepRequestHeader, and fails t unless both accept
// or both reject it and find the same request. It returns Decode's result.
func decodeLikeProto(t testing.TB, b []byte, keep func(string) bool) (extprocwire.Request, error) {
	t.Helper()
	var m extprocv3.ProcessingRequest
	errP := proto.Unmarshal(b, &m)

	// Decode reads a copy, overwritten afterwards to catch strings that
	// alias it.
	in := bytes.Clone(b)
	r1 := stale(keep)
	errD := extprocwire.Decode(in, &r1)
	if (errD == nil) != (errP == nil) {
		t.Fatalf("Decode err = %v, proto.Unmarshal err = %v (keep set: %t)\ninput %x", errD, errP, keep != nil, b)
	}
	if errD != nil {
		if len(r1.Headers) != 0 {
			t.Fatalf("Decode err = %v left headers %q\ninput %x", errD, r1.Headers, b)
		}
		return r1, errD
	}
	r2 := stale(keep)
	extprocwire.FromProto(&m, &r2)
	if d := diffRequest(&r1, &r2); d != "" {
		t.Fatalf("Decode differs from proto.Unmarshal+FromProto (keep set: %t): %s\ninput %x", keep != nil, d, b)
	}
	for i := range in {
		in[i] = 0xff
	}
	if d := diffRequest(&r1, &r2); d != "" {
		t.Fatalf("Decode's result changed when its input was overwritten (it aliases the input): %s\ninput %x", d, b)
	}
	return r1, nil
}

// --- tests ----------------------------------------------------------------------

func TestDecode(t *testing.T) {
	for _, c := range decodeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			r, err := decodeLikeProto(t, c.in, nil)
			if c.err {
				if err == nil {
					t.Fatalf("Decode succeeded (%+v), want an error\ninput %x", r, c.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v\ninput %x", err, c.in)
			}
			if d := diffRequest(&r, &c.want); d != "" {
				t.Fatalf("%s\ninput %x", d, c.in)
			}
			// The same with a KeepRequestHeader: it filters request
			// headers only.
			want := c.want
			if want.Kind == extprocwire.KindRequestHeaders {
				want.Headers = filterHeaders(want.Headers, keepCORS)
			}
			r, err = decodeLikeProto(t, c.in, keepCORS)
			if err != nil {
				t.Fatalf("Decode with KeepRequestHeader: %v\ninput %x", err, c.in)
			}
			if d := diffRequest(&r, &want); d != "" {
				t.Fatalf("with KeepRequestHeader: %s\ninput %x", d, c.in)
			}
		})
	}
}

func TestDecodeKeepRequestHeader(t *testing.T) {
	var asked []string
	keep := func(key string) bool {
		asked = append(asked, strings.Clone(key))
		return keepCORS(key)
	}
	in := mustMarshal(t, requestHeadersMsg(preflight, true))
	r := extprocwire.Request{KeepRequestHeader: keep}
	if err := extprocwire.Decode(in, &r); err != nil {
		t.Fatal(err)
	}
	want := hdrs(":authority", "api.example.com", ":path", "/v1/orders/42?expand=items", ":method", "OPTIONS", "origin", "https://app.example.com")
	if !slices.Equal(r.Headers, want) {
		t.Errorf("Headers %q, want %q", r.Headers, want)
	}
	var keys []string
	for _, h := range preflight {
		keys = append(keys, h.Name)
	}
	if !slices.Equal(asked, keys) {
		t.Errorf("KeepRequestHeader asked about %q, want every key in order %q", asked, keys)
	}

	// Response headers are all kept.
	asked = nil
	if err := extprocwire.Decode(mustMarshal(t, responseHeadersMsg(responseHeaders)), &r); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Headers, responseHeaders) || len(asked) != 0 {
		t.Errorf("response: Headers %q (asked %q), want all of %q, nobody asked", r.Headers, asked, responseHeaders)
	}

	// A header that is dropped is still checked.
	if err := extprocwire.Decode(reqHeaders(raw("origin", "o"), hv("x-dropped", "\xff", "")), &r); err == nil {
		t.Errorf("a dropped header whose value is not UTF-8 was accepted")
	}
}

// A server decodes message after message into one Request: the headers of
// one stay valid after the next, and the slice's storage is reused.
func TestDecodeReusesRequest(t *testing.T) {
	first := mustMarshal(t, requestHeadersMsg(preflight, true))
	second := mustMarshal(t, responseHeadersMsg(responseHeaders))
	var r extprocwire.Request
	if err := extprocwire.Decode(first, &r); err != nil {
		t.Fatal(err)
	}
	kept := r.Headers
	r.Headers = slices.Clip(r.Headers[:0]) // Decode may not write over kept
	if err := extprocwire.Decode(second, &r); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kept, preflight) || !slices.Equal(r.Headers, responseHeaders) {
		t.Fatalf("first %q, second %q", kept, r.Headers)
	}

	if err := extprocwire.Decode([]byte{0x80}, &r); err == nil || len(r.Headers) != 0 || r.Kind != extprocwire.KindNone {
		t.Errorf("malformed message: err %v, Kind %d, Headers %q; want an error, KindNone, no headers", err, r.Kind, r.Headers)
	}
}

// The kept headers are copied into one allocation; with the Headers slice
// reused there is no other.
func TestDecodeAllocations(t *testing.T) {
	// As Envoy sends it: metadata_context always there (empty unless
	// metadata_options forward namespaces), protocol_config on the first
	// message (Envoy 1.34+). Both stay on the fast path: one allocation, the
	// kept headers' bytes; the full decoder would make dozens.
	envoyLike := requestHeadersMsg(preflight, true)
	envoyLike.MetadataContext = &corev3.Metadata{}
	envoyLike.ProtocolConfig = &extprocv3.ProtocolConfiguration{SendBodyWithoutWaitingForHeaderResponse: true}
	for name, msg := range map[string]*extprocv3.ProcessingRequest{
		"preflight": requestHeadersMsg(preflight, true),
		"preflight with metadata_context and protocol_config": envoyLike,
	} {
		in := mustMarshal(t, msg)
		var r extprocwire.Request
		if err := extprocwire.Decode(in, &r); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = extprocwire.Decode(in, &r) }); n > 1 {
			t.Errorf("Decode of a %s: %v allocations, want 1", name, n)
		}
	}
}

func FuzzDecodeMatchesProto(f *testing.F) {
	for _, c := range decodeCases(f) {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeLikeProto(t, b, nil)
		_, _ = decodeLikeProto(t, b, keepCORS)
	})
}

// --- benchmark -------------------------------------------------------------------

func BenchmarkDecode(b *testing.B) {
	msgs := []struct {
		name string
		in   []byte
	}{
		{"request_headers", mustMarshal(b, requestHeadersMsg(preflight[:12], true))},
		{"response_headers", mustMarshal(b, responseHeadersMsg(responseHeaders))},
	}
	decoders := []struct {
		name   string
		decode func(in []byte, r *extprocwire.Request) error
	}{
		{"extprocwire", extprocwire.Decode},
		{"proto", func(in []byte, r *extprocwire.Request) error {
			// A fresh message per call, as grpc-go's codec unmarshals into
			// one the stream allocates.
			m := new(extprocv3.ProcessingRequest)
			if err := proto.Unmarshal(in, m); err != nil {
				return err
			}
			extprocwire.FromProto(m, r)
			return nil
		}},
	}
	for _, d := range decoders {
		for _, msg := range msgs {
			b.Run("decoder="+d.name+"/message="+msg.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(msg.in)))
				var r extprocwire.Request
				for b.Loop() {
					if err := d.decode(msg.in, &r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
