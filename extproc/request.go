package extproc

import (
	"strings"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

// requestHeaders is the request phase: look the request up, decide, and turn
// the decision into Envoy's reply.
func (s *Server) requestHeaders(st *streamState, h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	switch st.phase {
	case phaseStart:
	case phaseResponse:
		return nil, protocolError("request_headers after response_headers on the same stream; Envoy sends request headers first, once per stream")
	default:
		return nil, protocolError("second request_headers on the same stream; Envoy opens one stream per HTTP request")
	}

	var req cors.Request
	authority, path := readRequest(h.GetHeaders().GetHeaders(), &req)

	// Lookup reads the path as the upstream may (decoded, dot segments
	// removed: docs/paths.md); readings that select different policies make
	// the match Ambiguous, and then no policy grants the request. A nil table
	// (before the first one) matches nothing.
	var match table.Match
	match, st.decision = Lookup(st.table, &req, authority, path)
	entry := match.Entry
	if entry == nil {
		// No policy: not corsgate's business. Skip the response phase (only
		// honoured with allow_mode_override; otherwise responseHeaders answers
		// an empty reply).
		st.phase = phaseRequest
		return passThrough, nil
	}

	d := &st.decision
	switch {
	case s.requestObserver != nil:
		s.requestObserver.ObserveRequest(entry, *d, RequestInfo{Method: req.Method, Authority: authority, Path: path, Origin: req.Origin})
	case s.observer != nil:
		s.observer.Observe(entry, *d)
	}

	switch d.Action {
	case cors.ActionRespond:
		st.phase = phaseResponded
		return immediateResponse(d), nil
	case cors.ActionContinue:
		st.phase = phaseRequest
		st.apply = true
		return requestContinue, nil
	default: // cors.ActionPassThrough: DryRun, or a preflight forwarded as is.
		st.phase = phaseRequest
		return passThrough, nil
	}
}

// pathOnly is path without its query and fragment, which may carry tokens
// and have no place in logs.
func pathOnly(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		return path[:i]
	}
	return path
}

// readRequest extracts what the engine and the table read from Envoy's request
// headers. Envoy sends keys in lower case and, since 1.27, values in raw_value
// (docs/envoy.md#how-request-headers-arrive); Value is read only when raw_value is empty, to tolerate older
// Envoys. A repeated CORS header (which Envoy joins into one value when the
// name is an inline header, docs/envoy.md#how-request-headers-arrive) is joined with "," here too, so the
// engine sees the same thing either way: a comma in Origin makes it malformed.
func readRequest(headers []*corev3.HeaderValue, req *cors.Request) (authority, path string) {
	for _, hv := range headers {
		switch hv.GetKey() {
		case ":authority":
			authority = headerValue(hv)
		case ":path":
			path = headerValue(hv)
		case ":method":
			req.Method = headerValue(hv)
		case "origin":
			req.Origin = join(req.Origin, req.HasOrigin, headerValue(hv))
			req.HasOrigin = true
		case "access-control-request-method":
			req.AccessControlRequestMethod = join(req.AccessControlRequestMethod, req.AccessControlRequestMethod != "", headerValue(hv))
		case "access-control-request-headers":
			req.AccessControlRequestHeaders = join(req.AccessControlRequestHeaders, req.AccessControlRequestHeaders != "", headerValue(hv))
		case "access-control-request-private-network":
			req.AccessControlRequestPrivateNetwork = join(req.AccessControlRequestPrivateNetwork, req.AccessControlRequestPrivateNetwork != "", headerValue(hv))
		case "sec-fetch-site":
			// Joined like the others: a repeated Sec-Fetch-Site is no known
			// value, so cross-origin protection refuses it unless trusted.
			req.SecFetchSite = join(req.SecFetchSite, req.SecFetchSite != "", headerValue(hv))
		}
	}
	req.Host = authority
	return authority, path
}

// join appends v to a repeated header's earlier value(s) the way Envoy folds
// inline headers: with "," and no space.
func join(prev string, seen bool, v string) string {
	if !seen {
		return v
	}
	return prev + "," + v
}

// headerValue returns a header's value without copying it.
//
// The string aliases hv.RawValue. That is safe because the bytes are never
// written again: grpc-go's proto codec unmarshals every received message into
// fresh memory (proto.Unmarshal copies bytes fields out of the transport
// buffer, which grpc-go then recycles), the message belongs to this stream
// alone, and nothing in this package mutates it. The
// aliasing keeps the request phase free of per-header allocations; the
// strings (and the Decision's substrings of them) keep the message's bytes
// alive for as long as they are used.
func headerValue(hv *corev3.HeaderValue) string {
	if raw := hv.GetRawValue(); len(raw) > 0 {
		return unsafe.String(unsafe.SliceData(raw), len(raw))
	}
	return hv.GetValue()
}

// immediateResponse answers a preflight at the edge (docs/envoy.md#immediate-responses): the status,
// the decision's headers (all of them: Envoy sends no response_headers after
// an immediate response), and details for Envoy's %RESPONSE_CODE_DETAILS%.
func immediateResponse(d *cors.Decision) *extprocv3.ProcessingResponse {
	var r *immediateReply
	if headers := d.Headers.All(); len(headers) > 0 {
		rh := new(immediateReplyWithHeaders)
		b := rh.set.builder(len(headers), headersLen(headers))
		for _, h := range headers {
			b.set(h.Name, h.Value)
		}
		r = &rh.immediateReply
		r.mutation.SetHeaders = b.done()
		r.imm.Headers = &r.mutation
	} else {
		r = new(immediateReply)
	}
	r.imm.Status = httpStatus(d.Status)
	r.imm.Details = details(d)
	r.oneof.ImmediateResponse = &r.imm
	r.resp.Response = &r.oneof
	return &r.resp
}

func headersLen(headers []cors.Header) int {
	n := 0
	for _, h := range headers {
		n += len(h.Value)
	}
	return n
}

// Shared, never-mutated statuses for the two answers the engine gives.
var (
	statusNoContent = &typev3.HttpStatus{Code: typev3.StatusCode_NoContent}
	statusForbidden = &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}
)

func httpStatus(code int) *typev3.HttpStatus {
	switch code {
	case 204:
		return statusNoContent
	case 403:
		return statusForbidden
	default:
		return &typev3.HttpStatus{Code: typev3.StatusCode(code)}
	}
}

// preflightDetails holds the precomputed details strings for preflight
// answers, indexed by Reason: "cors_preflight_allowed" and
// "cors_preflight_rejected_<reason>". Envoy replaces whitespace in details by
// "_" itself (docs/envoy.md#what-envoy-does-with-an-immediate-response); doing it here makes the string the server sends
// the one that shows up in access logs.
var preflightDetails = func() (t [256]string) {
	for i := range t {
		t[i] = "cors_preflight_rejected_" + cors.Reason(i).Label()
	}
	return t
}()

func details(d *cors.Decision) string {
	if d.Kind == cors.KindPreflight {
		if d.Allowed {
			return "cors_preflight_allowed"
		}
		return preflightDetails[d.Reason]
	}
	// The engine answers only preflights at the edge; should that change,
	// still say what happened.
	if d.Allowed {
		return "cors_" + d.Kind.String() + "_allowed"
	}
	return "cors_" + d.Kind.String() + "_rejected_" + d.Reason.Label()
}
