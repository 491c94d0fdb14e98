package extproc

import (
	"fmt"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/internal/extprocwire"
	"github.com/corsgate/corsgate/internal/header"
)

// TestEncodeMatchesMessages checks the server's one reply encoding against
// go-control-plane's messages, the test oracle: each answer, written as bytes
// by extprocwire and decoded by protobuf-go, equals the message message()
// builds for it from the ext_proc proto's own types.
func TestEncodeMatchesMessages(t *testing.T) {
	many := make([]header.Field, 12) // past the answer's inline room
	for i := range many {
		many[i] = header.Field{Name: fmt.Sprintf("x-h%d", i), Value: fmt.Sprintf("%0*d", i*40, i)}
	}
	answers := map[string]answer{
		"allowed preflight": {immediate: true, status: 204, details: "cors_preflight_allowed", set: []header.Field{
			{Name: "access-control-allow-origin", Value: "https://app.example.com"},
			{Name: "access-control-allow-credentials", Value: "true"},
			{Name: "access-control-allow-methods", Value: "GET, PUT"},
			{Name: "access-control-max-age", Value: "600"},
			{Name: "vary", Value: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}}},
		"denied preflight":           {immediate: true, status: 403, details: "cors_preflight_rejected_origin_not_allowed"},
		"other status, no details":   {immediate: true, status: 599},
		"status zero":                {immediate: true},
		"many headers, long values":  {immediate: true, status: 204, details: "d", set: many},
		"empty value and non-ascii":  {immediate: true, status: 204, set: []header.Field{{Name: "x-empty"}, {Name: "x-u", Value: "h\u00e9\xff"}}},
		"mutation: remove and set":   {remove: []string{"access-control-allow-origin", "access-control-max-age"}, set: many[:3]},
		"mutation: set only":         {set: []header.Field{{Name: "access-control-allow-origin", Value: "*"}, {Name: "vary", Value: "Accept-Encoding, Origin"}}},
		"mutation: remove only":      {remove: []string{"access-control-allow-origin"}},
		"mutation: many and removed": {remove: []string{"access-control-allow-origin", "access-control-expose-headers", ""}, set: many},
	}
	for name, a := range answers {
		t.Run(name, func(t *testing.T) {
			var wire []byte
			switch w := a.encode(new(extprocwire.Reply)).(type) {
			case *extprocwire.Reply:
				wire = w.Bytes()
			case *extprocwire.Encoded:
				wire = w.Bytes()
			default:
				t.Fatalf("encode() is %T", w)
			}
			var got extprocv3.ProcessingResponse
			if err := proto.Unmarshal(wire, &got); err != nil {
				t.Fatalf("the wire reply does not decode: %v (%x)", err, wire)
			}
			if want := message(&a); !proto.Equal(want, &got) {
				t.Errorf("the encoded reply differs from the message:\nmessage: %v\nencoded: %v", want, &got)
			}
		})
	}
}

// message is an answer as a go-control-plane message, built the plain way
// from the proto's types: each header set is a HeaderValueOption with its
// value in raw_value (Envoy ignores `value` since 1.32), append false (the
// field Envoy's ext_proc reads) and append_action OVERWRITE_IF_EXISTS_OR_ADD
// (docs/envoy.md#append-versus-overwrite).
func message(a *answer) *extprocv3.ProcessingResponse {
	mutation := &extprocv3.HeaderMutation{RemoveHeaders: a.remove}
	for _, h := range a.set {
		mutation.SetHeaders = append(mutation.SetHeaders, &corev3.HeaderValueOption{
			Header: &corev3.HeaderValue{Key: h.Name, RawValue: []byte(h.Value)},
			//lint:ignore SA1019 Envoy's ext_proc reads only the deprecated append.
			Append:       wrapperspb.Bool(false),
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	if a.immediate {
		imm := &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(a.status)}, Details: a.details}
		if len(a.set) > 0 {
			imm.Headers = mutation
		}
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: imm}}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
		ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: mutation}},
	}}
}
