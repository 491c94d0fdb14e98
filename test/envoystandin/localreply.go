package envoystandin

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// localReply is the argument list of sendLocalReply.
type localReply struct {
	status     int
	body       string
	mutation   *extprocv3.HeaderMutation // ImmediateResponse.headers
	extra      Headers                   // headers an earlier filter added
	grpcStatus *uint32
	details    string
}

// sendImmediateResponse is Filter::sendImmediateResponse (docs/envoy.md#what-envoy-does-with-an-immediate-response):
// a missing or < 200 status becomes 200, whitespace in details becomes "_",
// and processing is complete.
func (x *exchange) sendImmediateResponse(ir *extprocv3.ImmediateResponse) {
	code := 200
	if ir.GetStatus() != nil {
		code = int(ir.GetStatus().GetCode())
	}
	if code < 200 { // MutationUtils::isValidHttpStatus
		x.logf("Ignoring attempt to set invalid HTTP status %d", code)
		code = 200
	}
	lr := &localReply{
		status:   code,
		body:     string(ir.GetBody()),
		mutation: ir.GetHeaders(),
		details:  replaceAllEmptySpace(ir.GetDetails()),
	}
	if gs := ir.GetGrpcStatus(); gs != nil {
		v := gs.GetStatus()
		lr.grpcStatus = &v
	}
	x.reply = lr
}

// takeReply builds the pending local reply.
func (x *exchange) takeReply() *response {
	lr := x.reply
	x.reply = nil
	return x.prepareLocalReply(lr)
}

// prepareLocalReply is Utility::prepareLocalReply (source/common/http/utility.cc,
// docs/envoy.md#how-the-local-reply-is-built): ":status", then the filter's headers, then the gRPC or
// plain-text body rules; HEAD drops the body.
func (x *exchange) prepareLocalReply(lr *localReply) *response {
	m := newHeaderMap(responseInline)
	m.insert(":status", strconv.Itoa(lr.status))
	for _, h := range lr.extra {
		m.addCopy(strings.ToLower(h.Name), h.Value)
	}
	if lr.mutation != nil {
		// The filter's mutation_rules apply; a failure is only logged, and the
		// entries after the failing one are not applied (docs/envoy.md#what-envoy-does-with-an-immediate-response).
		if err := applyHeaderMutation(lr.mutation, m, false, x.fc.checker, x.limits(), &x.sim.stats.rejectedHeaderMutations); err != nil {
			x.logf("Immediate response mutations failed with %s", err.msg)
		}
	}
	body := lr.body
	switch {
	case x.isGrpc:
		// A gRPC client gets a trailers-only response it can parse.
		m.setInline(":status", "200")
		m.setInline("content-type", "application/grpc")
		if !m.has("grpc-status") {
			gs := httpToGrpcStatus(lr.status)
			if lr.grpcStatus != nil {
				gs = *lr.grpcStatus
			}
			m.setInline("grpc-status", strconv.FormatUint(uint64(gs), 10))
		}
		if body != "" && !x.isHead {
			m.setInline("grpc-message", percentEncode(body))
		}
		m.remove("content-length")
		body = ""
	case body != "":
		m.setInline("content-length", strconv.Itoa(len(body)))
		if !m.has("content-type") {
			m.setInline("content-type", "text/plain")
		}
	default:
		// Even when the server set them (docs/envoy.md#how-the-local-reply-is-built step 6).
		m.remove("content-length")
		m.remove("content-type")
	}
	if x.isHead {
		body = ""
	}
	return &response{headers: m, body: bodyReader([]byte(body)), details: lr.details}
}

// replaceAllEmptySpace is StringUtil::replaceAllEmptySpace.
func replaceAllEmptySpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			return '_'
		}
		return r
	}, s)
}

// isGrpcContentType is Grpc::Common::hasGrpcContentType.
func isGrpcContentType(ct string) bool {
	const grpc = "application/grpc"
	if !strings.HasPrefix(ct, grpc) {
		return false
	}
	rest := ct[len(grpc):]
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// httpToGrpcStatus is Grpc::Utility::httpToGrpcStatus.
func httpToGrpcStatus(code int) uint32 {
	switch code {
	case 400:
		return 13 // INTERNAL
	case 401:
		return 16 // UNAUTHENTICATED
	case 403:
		return 7 // PERMISSION_DENIED
	case 404:
		return 12 // UNIMPLEMENTED
	case 429, 502, 503, 504:
		return 14 // UNAVAILABLE
	}
	return 2 // UNKNOWN
}

// percentEncode is Http::Utility::PercentEncoding::encode as used for
// grpc-message: bytes below ' ', from '~' up, and '%' become %XX.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < ' ' || ch >= '~' || ch == '%' {
			fmt.Fprintf(&b, "%%%02X", ch)
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

// bodyReader returns nil for an empty body: no body means end_of_stream on
// the headers.
func bodyReader(b []byte) io.ReadCloser {
	if len(b) == 0 {
		return nil
	}
	return io.NopCloser(bytes.NewReader(b))
}
