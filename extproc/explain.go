package extproc

import (
	"slices"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/header"
)

// This file opens the server's request reading and reply building to
// `corsgate explain`, so that explain reports what the server does by running
// the same code, not a copy of it. Nothing here is on the serving path.

// ReadRequest reads a request the way the server reads Envoy's
// request_headers: headers are lower-case names with their values, the
// pseudo-headers :method, :authority and :path among them; a repeated CORS
// header is joined with ",", as Envoy joins inline headers.
func ReadRequest(headers []header.Field) (req cors.Request, authority, path string) {
	authority, path = readRequest(headers, &req)
	return req, authority, path
}

// EdgeAnswer is what the edge does with a decision, as the server tells Envoy.
type EdgeAnswer struct {
	// Respond: the edge answers with Status and Headers (an immediate
	// response); the upstream never sees the request.
	Respond bool
	Status  int
	// Details is Envoy's %RESPONSE_CODE_DETAILS% for an immediate response.
	Details string
	// Remove are the upstream response's headers the edge removes (before
	// Set, as Envoy applies a header mutation) when the request went upstream.
	Remove []string
	// Headers are the immediate response's headers with Respond, else the
	// headers set on the upstream's response (overwriting).
	Headers []header.Field
}

// Answer returns what the server makes Envoy do with d: the immediate
// response for ActionRespond, the response-phase mutation of the upstream
// response (whose headers are upstream, lower-case names) for ActionContinue,
// and nothing for ActionPassThrough.
func Answer(d *cors.Decision, upstream []header.Field) EdgeAnswer {
	var a answer
	switch d.Action {
	case cors.ActionRespond:
		a.immediateResponse(d)
		return EdgeAnswer{Respond: true, Status: int(a.status), Details: a.details, Headers: slices.Clone(a.set)}
	case cors.ActionContinue:
		a.responseMutation(d, upstream)
		return EdgeAnswer{Remove: slices.Clone(a.remove), Headers: slices.Clone(a.set)}
	default:
		return EdgeAnswer{}
	}
}
