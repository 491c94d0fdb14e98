package extproc

import (
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/header"
	"github.com/corsgate/corsgate/internal/table"
)

// requestHeaders is the request phase: look the request up, decide, and turn
// the decision into Envoy's reply.
func (s *Server) requestHeaders(st *streamState, headers []header.Field, a *answer) error {
	switch st.phase {
	case phaseStart:
	case phaseResponse:
		return protocolError("request_headers after response_headers on the same stream; Envoy sends request headers first, once per stream")
	default:
		return protocolError("second request_headers on the same stream; Envoy opens one stream per HTTP request")
	}

	var req cors.Request
	authority, path := readRequest(headers, &req)

	// Decide reads the path as the upstream may (decoded, dot segments
	// removed: docs/paths.md); readings that select different policies make
	// the match Ambiguous, and then no policy grants the request. A nil table
	// (before the first one) matches nothing.
	var match table.Match
	match, st.decision = st.table.Decide(&req, authority, path)
	entry := match.Entry
	if entry == nil {
		// No policy: not corsgate's business. Skip the response phase (only
		// honoured with allow_mode_override; otherwise responseHeaders answers
		// an empty reply).
		st.phase = phaseRequest
		a.fixed = passThrough
		return nil
	}

	d := &st.decision
	if s.observer != nil {
		s.observer.ObserveDecision(entry, *d, RequestInfo{Method: req.Method, Authority: authority, Path: path, Origin: req.Origin})
	}

	switch d.Action {
	case cors.ActionRespond:
		st.phase = phaseResponded
		a.immediateResponse(d)
	case cors.ActionContinue:
		st.phase = phaseRequest
		st.apply = true
		a.fixed = requestContinue
	default: // cors.ActionPassThrough: DryRun, or a preflight forwarded as is.
		st.phase = phaseRequest
		a.fixed = passThrough
	}
	return nil
}

// readRequest extracts what the engine and the table read from Envoy's request
// headers. Envoy sends keys in lower case and, since 1.27, values in raw_value
// (docs/envoy.md#how-request-headers-arrive); the value field is read only
// when raw_value is empty, to tolerate older Envoys (header.Field). A
// repeated CORS header (which Envoy joins into one value when the name is an
// inline header, docs/envoy.md#how-request-headers-arrive) is joined with ","
// here too, so the engine sees the same thing either way: a comma in Origin
// makes it malformed. The header names read are those of readsRequestHeader.
func readRequest(headers []header.Field, req *cors.Request) (authority, path string) {
	for _, h := range headers {
		switch h.Name {
		case ":authority":
			authority = h.Value
		case ":path":
			path = h.Value
		case ":method":
			req.Method = h.Value
		case "origin":
			req.Origin = join(req.Origin, req.HasOrigin, h.Value)
			req.HasOrigin = true
		case "access-control-request-method":
			req.AccessControlRequestMethod = join(req.AccessControlRequestMethod, req.AccessControlRequestMethod != "", h.Value)
		case "access-control-request-headers":
			req.AccessControlRequestHeaders = join(req.AccessControlRequestHeaders, req.AccessControlRequestHeaders != "", h.Value)
		case "access-control-request-private-network":
			req.AccessControlRequestPrivateNetwork = join(req.AccessControlRequestPrivateNetwork, req.AccessControlRequestPrivateNetwork != "", h.Value)
		case "sec-fetch-site":
			// Joined like the others: a repeated Sec-Fetch-Site is no known
			// value, so cross-origin protection refuses it unless trusted.
			req.SecFetchSite = join(req.SecFetchSite, req.SecFetchSite != "", h.Value)
		}
	}
	req.Host = authority
	return authority, path
}

// readsRequestHeader reports whether readRequest reads the request header
// key. The wire decoder keeps only these of request_headers (a browser sends
// a dozen more, which no CORS decision reads); a test keeps the two lists
// the same.
func readsRequestHeader(key string) bool {
	switch key {
	case ":authority", ":path", ":method", "origin", "access-control-request-method",
		"access-control-request-headers", "access-control-request-private-network", "sec-fetch-site":
		return true
	}
	return false
}

// join appends v to a repeated header's earlier value(s) the way Envoy folds
// inline headers: with "," and no space.
func join(prev string, seen bool, v string) string {
	if !seen {
		return v
	}
	return prev + "," + v
}

// immediateResponse answers a preflight at the edge (docs/envoy.md#immediate-responses): the status,
// the decision's headers (all of them: Envoy sends no response_headers after
// an immediate response), and details for Envoy's %RESPONSE_CODE_DETAILS%.
func (a *answer) immediateResponse(d *cors.Decision) {
	a.immediate = true
	a.status = uint32(d.Status)
	a.details = details(d)
	a.set = append(a.setRoom[:0], d.Headers.All()...)
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
