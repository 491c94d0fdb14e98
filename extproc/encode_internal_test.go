package extproc

import (
	"fmt"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/internal/extprocwire"
)

// TestEncodeMatchesMessages checks that the wire path's replies, written as
// bytes by extprocwire, are the messages the proto path builds: decoded by
// protobuf-go, each equals its go-control-plane counterpart.
func TestEncodeMatchesMessages(t *testing.T) {
	many := make([]extprocwire.Header, 12) // past the answer's inline room
	for i := range many {
		many[i] = extprocwire.Header{Key: fmt.Sprintf("x-h%d", i), Value: fmt.Sprintf("%0*d", i*40, i)}
	}
	answers := map[string]answer{
		"allowed preflight": {immediate: true, status: 204, details: "cors_preflight_allowed", set: []extprocwire.Header{
			{Key: "access-control-allow-origin", Value: "https://app.example.com"},
			{Key: "access-control-allow-credentials", Value: "true"},
			{Key: "access-control-allow-methods", Value: "GET, PUT"},
			{Key: "access-control-max-age", Value: "600"},
			{Key: "vary", Value: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}}},
		"denied preflight":           {immediate: true, status: 403, details: "cors_preflight_rejected_origin_not_allowed"},
		"other status, no details":   {immediate: true, status: 599},
		"status zero":                {immediate: true},
		"many headers, long values":  {immediate: true, status: 204, details: "d", set: many},
		"empty value and non-ascii":  {immediate: true, status: 204, set: []extprocwire.Header{{Key: "x-empty"}, {Key: "x-u", Value: "h\u00e9\xff"}}},
		"mutation: remove and set":   {remove: []string{"access-control-allow-origin", "access-control-max-age"}, set: many[:3]},
		"mutation: set only":         {set: []extprocwire.Header{{Key: "access-control-allow-origin", Value: "*"}, {Key: "vary", Value: "Accept-Encoding, Origin"}}},
		"mutation: remove only":      {remove: []string{"access-control-allow-origin"}},
		"mutation: many and removed": {remove: []string{"access-control-allow-origin", "access-control-expose-headers", ""}, set: many},
	}
	for _, fixed := range []*extprocv3.ProcessingResponse{passThrough, requestContinue, responseContinue,
		requestBodyContinue, responseBodyContinue, requestTrailersContinue, responseTrailersContinue} {
		answers[fmt.Sprintf("fixed %v", fixed)] = answer{fixed: fixed}
	}
	for name, a := range answers {
		t.Run(name, func(t *testing.T) {
			var wire []byte
			switch w := a.wire(new(extprocwire.Reply)).(type) {
			case *extprocwire.Reply:
				wire = w.Bytes()
			case *extprocwire.Encoded:
				wire = w.Bytes()
			default:
				t.Fatalf("wire() is %T", w)
			}
			var got extprocv3.ProcessingResponse
			if err := proto.Unmarshal(wire, &got); err != nil {
				t.Fatalf("the wire reply does not decode: %v (%x)", err, wire)
			}
			if want := a.message(); !proto.Equal(want, &got) {
				t.Errorf("wire reply differs from the message:\nmessage: %v\nwire:    %v", want, &got)
			}
		})
	}
}
