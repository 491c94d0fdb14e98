package envoystandin

import (
	"crypto/rand"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/metadata"
)

// RequestError is a Request that Envoy's codec would refuse before any filter
// runs; Status is Envoy's answer (400 or 431).
type RequestError struct {
	Status int
	Reason string
}

func (e *RequestError) Error() string { return "envoystandin: " + e.Reason }

func badRequest(format string, args ...any) *RequestError {
	return &RequestError{Status: 400, Reason: fmt.Sprintf(format, args...)}
}

// buildRequestMap turns a Request into the header map Envoy's HTTP/1 codec
// and HCM would hand to the filter chain (docs/envoy.md#how-request-headers-arrive, docs/envoy.md#what-the-stand-in-reproduces item 2):
// pseudo-headers first in the order :authority :path :method :scheme, host
// folded into :authority, connection-specific headers gone, repeated inline
// headers (origin, access-control-request-*, user-agent...) joined with ",".
func (x *exchange) buildRequestMap(req Request) (*headerMap, error) {
	method := req.Method
	if method == "" {
		method = "GET"
	}
	if !headerNameIsValid(method) || strings.HasPrefix(method, ":") {
		return nil, badRequest("Request.Method %q is not an HTTP token", method)
	}
	scheme := req.Scheme
	if scheme == "" {
		scheme = "http"
	}
	path := req.Path
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") && !(path == "*" && method == "OPTIONS") {
		return nil, badRequest("Request.Path %q must start with \"/\" (origin-form; \"*\" only for OPTIONS)", path)
	}
	authority := req.Authority
	var rest Headers
	for _, h := range req.Headers {
		key := strings.ToLower(h.Name)
		switch {
		case strings.HasPrefix(key, ":"):
			return nil, badRequest("Request.Headers holds pseudo-header %q: use Request.Method, Scheme, Authority and Path", h.Name)
		case !headerNameIsValid(key) || !headerValueIsValid(h.Value):
			return nil, badRequest("Request.Headers has an invalid header %q: %q; Envoy's codec would reject the request with 400", h.Name, h.Value)
		case key == "host":
			if authority == "" {
				authority = h.Value
			}
		case key == "te" && strings.EqualFold(strings.TrimSpace(h.Value), "trailers"):
			rest = append(rest, Header{Name: key, Value: "trailers"})
		case codecDropped[key]:
		default:
			rest = append(rest, Header{Name: key, Value: h.Value})
		}
	}
	if authority == "" {
		return nil, badRequest("Request.Authority is empty and there is no host header; Envoy answers such a request with 400")
	}

	m := newHeaderMap(requestInline)
	m.insert(":authority", authority)
	m.insert(":path", path)
	m.insert(":method", method)
	m.insert(":scheme", scheme)
	for _, h := range rest {
		m.addCopy(h.Name, h.Value)
	}
	if x.fc.envoyHeaders {
		// ConnectionManagerUtility::mutateRequestHeaders, before any filter.
		if !m.has("x-forwarded-proto") {
			m.addCopy("x-forwarded-proto", scheme)
		}
		if !m.has("x-request-id") {
			m.addCopy("x-request-id", newUUID())
		}
	}
	if m.size() > x.fc.maxHeadersCount {
		return nil, &RequestError{Status: 431, Reason: fmt.Sprintf("the request has %d headers; Envoy's codec rejects more than max_headers_count (%d) with 431 before any filter runs", m.size(), x.fc.maxHeadersCount)}
	}
	return m, nil
}

// buildHeaderRequest is Filter::buildHeaderRequest (docs/envoy.md#what-a-request-message-carries): every
// forwarded header with its value in raw_value and value empty, end_of_stream,
// an empty non-nil metadata_context, protocol_config on the first message.
func (x *exchange) buildHeaderRequest(p *processorState, m *headerMap, endStream bool) *extprocv3.ProcessingRequest {
	hm := &corev3.HeaderMap{}
	for _, e := range m.entries {
		if x.fc.forward.forwards(e.Name) {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: e.Name, RawValue: []byte(e.Value)})
		}
	}
	hh := &extprocv3.HttpHeaders{Headers: hm, EndOfStream: endStream}
	req := &extprocv3.ProcessingRequest{MetadataContext: &corev3.Metadata{}}
	if p.outbound {
		req.Request = &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: hh}
	} else {
		req.Request = &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: hh}
	}
	if x.fc.version.sendsProtocolConfig() && !x.protocolConfigSent {
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:                         x.dec.bodyMode,
			ResponseBodyMode:                        x.enc.bodyMode,
			SendBodyWithoutWaitingForHeaderResponse: x.fc.proto.GetSendBodyWithoutWaitingForHeaderResponse(),
		}
		x.protocolConfigSent = true
	}
	return req
}

// headerValuesMD merges gRPC initial metadata by key, the later list winning
// (mergeGrpcInitialMetadata).
func headerValuesMD(md metadata.MD, hvs []*corev3.HeaderValue) metadata.MD {
	if len(hvs) == 0 {
		return md
	}
	out := md.Copy()
	if out == nil {
		out = metadata.MD{}
	}
	for _, hv := range hvs {
		v := hv.GetValue()
		if len(hv.GetRawValue()) > 0 {
			v = string(hv.GetRawValue())
		}
		out.Set(hv.GetKey(), v)
	}
	return out
}

// newUUID returns a random (version 4) UUID, as Envoy's default request ID
// extension generates for x-request-id.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
