package loadgen

import (
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/corsgate/corsgate/internal/extprocwire"
	"github.com/corsgate/corsgate/internal/header"
)

// Noop is the baseline ext_proc server: a real gRPC ExternalProcessor that
// answers CONTINUE to every message and changes nothing. What it costs is the
// floor for any ext_proc server on this machine: gRPC, HTTP/2, protobuf and
// the stand-in client.
//
// For a fair comparison it makes as many round trips as corsgate for each
// request: like corsgate, it skips the response phase with mode_override
// unless the request is an actual CORS request (Origin present and not a
// preflight), the only kind whose response corsgate changes. A preflight,
// which corsgate answers at the edge in one round trip, also costs the no-op
// one round trip (the upstream then answers it, in the stand-in, for free).
// To know which is which it reads the request headers, as corsgate must.
type Noop struct {
	extprocv3.UnimplementedExternalProcessorServer
}

var (
	noopSkipResponse = &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}},
		ModeOverride: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode: extprocfilterv3.ProcessingMode_SEND, ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP,
			RequestBodyMode: extprocfilterv3.ProcessingMode_NONE, ResponseBodyMode: extprocfilterv3.ProcessingMode_NONE,
			RequestTrailerMode: extprocfilterv3.ProcessingMode_SKIP, ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		},
	}
	noopContinueRequest = &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}},
	}
	noopContinueResponse = &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}},
	}
	noopBody = &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}},
	}
)

// Process answers every message of one stream until the client ends it.
func (Noop) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		m, err := s.Recv()
		if err != nil {
			return nil // io.EOF or Canceled: the stand-in (like Envoy) ended the stream
		}
		resp := noopBody
		switch {
		case m.GetRequestHeaders() != nil:
			resp = noopSkipResponse
			if actualCORS(m.GetRequestHeaders()) {
				resp = noopContinueRequest
			}
		case m.GetResponseHeaders() != nil:
			resp = noopContinueResponse
		}
		if err := s.Send(resp); err != nil {
			return nil
		}
	}
}

// actualCORS reports a request with Origin that is not a preflight.
func actualCORS(h *extprocv3.HttpHeaders) bool {
	var origin, options, acrm bool
	for _, hv := range h.GetHeaders().GetHeaders() {
		switch hv.GetKey() {
		case "origin":
			origin = true
		case ":method":
			options = string(hv.GetRawValue()) == "OPTIONS" || hv.GetValue() == "OPTIONS"
		case "access-control-request-method":
			acrm = len(hv.GetRawValue()) > 0 || hv.GetValue() != ""
		}
	}
	return origin && !(options && acrm)
}

// WireNoop is Noop built with the codec work corsgate does
// (internal/extprocwire): it reads ProcessingRequest from the wire, keeping
// only the three headers it looks at, and answers with replies encoded once.
// Compared with it, corsgate's CPU per request is what its own code costs on
// top of the same gRPC and codec work. Serve it with RegisterWireNoop on a
// grpc.Server built with extprocwire.ServerOption().
type WireNoop struct{}

var (
	wireSkipResponse    = extprocwire.Encode(noopSkipResponse)
	wireContinueRequest = extprocwire.Encode(noopContinueRequest)
	wireContinueResp    = extprocwire.Encode(noopContinueResponse)
	wireBody            = extprocwire.Encode(noopBody)
)

// RegisterWireNoop adds the WireNoop ExternalProcessor to gs.
func RegisterWireNoop(gs *grpc.Server) {
	gs.RegisterService(extprocwire.ServiceDesc(WireNoop{}.Process), nil)
}

// wireNoopStream is one stream's request and room for its headers, in one
// allocation, as corsgate has.
type wireNoopStream struct {
	req     extprocwire.Request
	headers [16]header.Field
}

// Process answers every message of one stream until the client ends it.
func (WireNoop) Process(s grpc.ServerStream) error {
	st := new(wireNoopStream)
	st.req.Headers = st.headers[:0]
	st.req.KeepRequestHeader = func(key string) bool {
		return key == "origin" || key == ":method" || key == "access-control-request-method"
	}
	for {
		if err := s.RecvMsg(&st.req); err != nil {
			return nil // io.EOF or Canceled: the stand-in (like Envoy) ended the stream
		}
		resp := wireBody
		switch st.req.Kind {
		case extprocwire.KindRequestHeaders:
			resp = wireSkipResponse
			if actualCORSHeaders(st.req.Headers) {
				resp = wireContinueRequest
			}
		case extprocwire.KindResponseHeaders:
			resp = wireContinueResp
		}
		if err := s.SendMsg(resp); err != nil {
			return nil
		}
	}
}

func actualCORSHeaders(hs []header.Field) bool {
	var origin, options, acrm bool
	for _, h := range hs {
		switch h.Name {
		case "origin":
			origin = true
		case ":method":
			options = h.Value == "OPTIONS"
		case "access-control-request-method":
			acrm = h.Value != ""
		}
	}
	return origin && !(options && acrm)
}
