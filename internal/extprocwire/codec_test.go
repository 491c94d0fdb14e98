package extprocwire_test

import (
	"bytes"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/corsgate/corsgate/internal/extprocwire"
)

func TestCodecName(t *testing.T) {
	// Envoy's gRPC client sends application/grpc, which grpc-go reads as
	// the "proto" content-subtype.
	if got := extprocwire.NewCodec().Name(); got != "proto" {
		t.Errorf("Name() = %q, want %q", got, "proto")
	}
}

// unmarshalResponse reads a marshalled ProcessingResponse back with
// protobuf-go and checks it equals want.
func unmarshalResponse(t *testing.T, b []byte, want proto.Message) {
	t.Helper()
	got := want.ProtoReflect().New().Interface()
	if err := proto.Unmarshal(b, got); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded %v, want %v", got, want)
	}
}

func TestCodecMarshalEncoded(t *testing.T) {
	c := extprocwire.NewCodec()
	for name, m := range map[string]*extprocv3.ProcessingResponse{
		"continue request headers": {Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}},
		"skip the response phase": {
			Response:     &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}},
			ModeOverride: &extprocfilterv3.ProcessingMode{ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP},
		},
		"continue response headers": {Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}},
		"preflight reply":           immediatePreflight(nil),
	} {
		t.Run(name, func(t *testing.T) {
			e := extprocwire.Encode(m)
			bs, err := c.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			defer bs.Free()
			got := bs.Materialize()
			if !bytes.Equal(got, e.Bytes()) {
				t.Fatalf("Marshal(Encoded) = %x, want Bytes() %x", got, e.Bytes())
			}
			unmarshalResponse(t, got, m)
		})
	}
}

// Encode is for fixed replies: one that protobuf cannot encode (a string
// that is not UTF-8) is a programming error.
func TestEncodePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Encode of a message with a string that is not UTF-8 did not panic")
		}
	}()
	extprocwire.Encode(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{Details: "\xff"},
	}})
}

// immediatePreflight is the reply to a CORS preflight, as corsgate sends it.
func immediatePreflight(body []byte) *extprocv3.ProcessingResponse {
	set := func(k, v string) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: k, RawValue: []byte(v)},
			Append:       wrapperspb.Bool(false),
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode_NoContent},
		Headers: &extprocv3.HeaderMutation{
			SetHeaders: []*corev3.HeaderValueOption{
				set("access-control-allow-origin", "https://app.example.com"),
				set("access-control-allow-methods", "GET, PUT, POST"),
				set("access-control-allow-headers", "authorization, content-type, x-request-id"),
				set("access-control-max-age", "600"),
				set("vary", "Origin"),
			},
			RemoveHeaders: []string{"x-internal"},
		},
		Body:    body,
		Details: "cors_preflight_allowed",
	}}}
}

func TestCodecMarshalGoControlPlane(t *testing.T) {
	c := extprocwire.NewCodec()
	large := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	if mem.IsBelowBufferPoolingThreshold(len(large)) {
		t.Fatalf("a %d-byte body does not test the pooled path", len(large))
	}
	for name, m := range map[string]*extprocv3.ProcessingResponse{
		"immediate response":                  immediatePreflight(nil),
		"immediate response, 64 KiB (pooled)": immediatePreflight(large),
		"empty":                               {},
	} {
		t.Run(name, func(t *testing.T) {
			bs, err := c.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got := bs.Materialize()
			bs.Free()
			if len(got) != proto.Size(m) {
				t.Errorf("Marshal wrote %d bytes, proto.Size is %d", len(got), proto.Size(m))
			}
			unmarshalResponse(t, got, m)
		})
	}
}

// A message the codec hands to grpc-go's codec has its proto3 strings
// checked as protobuf-go does: a reply Envoy's parser would reject (proto3 strings must be UTF-8) fails
// here, as with grpc-go's codec, instead of reaching the wire.
func TestCodecMarshalInvalidUTF8(t *testing.T) {
	m := immediatePreflight(nil)
	m.GetImmediateResponse().Details = "cors\xff"
	if _, err := extprocwire.NewCodec().Marshal(m); err == nil {
		t.Error("Marshal of a message with a string that is not UTF-8 succeeded")
	}
}

// split cuts b into buffers of at most n bytes.
func split(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > n {
		s = append(s, mem.SliceBuffer(b[:n]))
		b = b[n:]
	}
	return append(s, mem.SliceBuffer(b))
}

func TestCodecUnmarshalRequest(t *testing.T) {
	c := extprocwire.NewCodec()
	withMetadata := requestHeadersMsg(preflight, true)
	withMetadata.MetadataContext = &corev3.Metadata{}
	for name, in := range map[string][]byte{
		"preflight":                       mustMarshal(t, requestHeadersMsg(preflight, true)),
		"response headers":                mustMarshal(t, responseHeadersMsg(responseHeaders)),
		"metadata_context (full decoder)": mustMarshal(t, withMetadata),
		"headers concatenate":             cat(reqHeaders(raw("a", "1")), reqHeaders(raw("b", "2"))),
		"malformed":                       cat(reqHeaders(raw("a", "1")), []byte{0x80}),
		"not UTF-8":                       reqHeaders(raw("\xff", "1")),
	} {
		t.Run(name, func(t *testing.T) {
			var want extprocwire.Request
			wantErr := extprocwire.Decode(in, &want)
			for _, n := range []int{len(in), len(in)/2 + 1, 7, 1} {
				buf := bytes.Clone(in)
				data := split(buf, n)
				if n == len(in) && len(data) != 1 {
					t.Fatalf("split into %d buffers, want 1", len(data))
				}
				var got extprocwire.Request
				err := c.Unmarshal(data, &got)
				if (err == nil) != (wantErr == nil) {
					t.Fatalf("%d buffers: Unmarshal err = %v, Decode err = %v", len(data), err, wantErr)
				}
				// Nothing of the transport's buffers may be kept: gRPC
				// recycles them.
				for i := range buf {
					buf[i] = 0xff
				}
				if d := diffRequest(&got, &want); d != "" {
					t.Fatalf("%d buffers: %s", len(data), d)
				}
			}
		})
	}
	t.Run("no buffers", func(t *testing.T) {
		r := stale(nil)
		if err := c.Unmarshal(nil, &r); err != nil || r.Kind != extprocwire.KindNone || len(r.Headers) != 0 {
			t.Errorf("Unmarshal(nil) = %v, Kind %d, Headers %q; want an empty request", err, r.Kind, r.Headers)
		}
	})
}

// Every other message goes to grpc-go's proto codec: health checks, and a
// ProcessingRequest itself when it is not read into a *Request.
func TestCodecFallback(t *testing.T) {
	c := extprocwire.NewCodec()
	for name, m := range map[string]proto.Message{
		"health request":     &healthpb.HealthCheckRequest{Service: "envoy.service.ext_proc.v3.ExternalProcessor"},
		"health response":    &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING},
		"processing request": requestHeadersMsg(preflight, true),
	} {
		t.Run(name, func(t *testing.T) {
			bs, err := c.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			b := bs.Materialize()
			bs.Free()
			if want := mustMarshal(t, m); !bytes.Equal(b, want) {
				t.Errorf("Marshal = %x, proto.Marshal %x", b, want)
			}
			for _, n := range []int{len(b), 3} {
				got := m.ProtoReflect().New().Interface()
				if err := c.Unmarshal(split(bytes.Clone(b), n), got); err != nil {
					t.Fatalf("Unmarshal: %v", err)
				}
				if !proto.Equal(got, m) {
					t.Fatalf("round trip: %v, want %v", got, m)
				}
			}
		})
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer{0x80}}, &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("fallback Unmarshal of malformed bytes succeeded")
	}
}
