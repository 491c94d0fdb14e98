package extproc

import (
	"slices"
	"strings"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/header"
)

// responseHeaders is the response phase: make the edge authoritative for CORS
// on the upstream's response.
func (s *Server) responseHeaders(st *streamState, headers []header.Field, a *answer) error {
	switch st.phase {
	case phaseStart:
		// The stream starts with response_headers: a local reply made by
		// another filter (jwt 401, rbac 403, router 404...) before ext_proc saw
		// the request (docs/envoy.md#streams-that-start-with-response-headers). There are no request headers to decide
		// on, so it passes through.
		st.phase = phaseResponse
		a.fixed = responseContinue
		return nil
	case phaseRequest:
	case phaseResponded:
		return protocolError("response_headers after an immediate response; Envoy sends nothing more on a stream it answered locally")
	default:
		return protocolError("second response_headers on the same stream; Envoy sends response headers once per stream")
	}
	st.phase = phaseResponse

	if !st.apply {
		// No policy, DryRun, or a forwarded preflight: the request phase asked
		// Envoy to skip this phase, and Envoy (allow_mode_override: false)
		// asked anyway. Nothing changes.
		a.fixed = responseContinue
		return nil
	}
	a.responseMutation(&st.decision, headers)
	if len(a.remove) == 0 && len(a.set) == 0 {
		// A response that needs no change: rare under an enforcing policy.
		a.fixed = responseContinue
	}
	return nil
}

// responseMutation computes the change to an upstream response under an
// enforcing policy (docs/design.md#actual-requests-and-non-cors-requests):
//   - every Access-Control-* header of the upstream goes, so that a browser
//     never sees two Access-Control-Allow-Origin (remove_headers runs before
//     set_headers in Envoy, docs/envoy.md#the-order-envoy-applies-a-mutation-in);
//   - the decision's headers are set, overwriting;
//   - exposeHeaders "*" with credentials lists the upstream's own header names;
//   - Origin joins the upstream's Vary without losing or repeating a value.
//
// Both lists (a.remove, a.set) are empty when the response needs no change.
// They are built in a's storage where they fit.
func (a *answer) responseMutation(d *cors.Decision, upstream []header.Field) {
	a.remove = upstreamAccessControl(upstream, a.removeRoom[:0])
	a.set = a.setRoom[:0]

	var decisionVary, decisionExpose string
	for _, h := range d.Headers.All() {
		switch {
		case h.Name == cors.HeaderVary:
			decisionVary = h.Value
		case h.Name == cors.HeaderACEH && d.ExposeResponseHeaders:
			decisionExpose = h.Value
		default:
			a.set = append(a.set, h)
		}
	}
	var expose string
	if d.ExposeResponseHeaders {
		expose = exposeList(decisionExpose, upstream)
	}
	vary, varyChanged := mergeVary(upstream, decisionVary)
	if expose != "" {
		a.set = append(a.set, header.Field{Name: cors.HeaderACEH, Value: expose})
	}
	if varyChanged {
		a.set = append(a.set, header.Field{Name: cors.HeaderVary, Value: vary})
	}
}

// upstreamAccessControl lists, once each, the Access-Control-* header names
// present in the upstream response, appended to names (which has room for
// the usual few); nil when there are none.
func upstreamAccessControl(upstream []header.Field, names []string) []string {
	n := 0
	for _, h := range upstream {
		if strings.HasPrefix(h.Name, cors.PrefixAccessControl) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	for _, h := range upstream {
		if k := h.Name; strings.HasPrefix(k, cors.PrefixAccessControl) && !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	return names
}

// mergeVary returns the Vary value the response must carry: the upstream's
// values, in order, plus Origin and any token the decision asks for that is
// not already there (compared case-insensitively: Vary lists header names).
// changed is false when the upstream's Vary already has every token, or is
// "*" (which varies on everything, RFC 9110 §12.5.5). The whole value is
// written with append false: appending to an inline header that already says
// Origin would make "Origin,Origin" (docs/envoy.md#repeated-and-inline-headers).
func mergeVary(upstream []header.Field, decisionVary string) (value string, changed bool) {
	if upstreamHasVary(upstream, "*") {
		return "", false
	}
	missingOrigin := !upstreamHasVary(upstream, "Origin")
	missingDecided := 0
	for t := range strings.SplitSeq(decisionVary, ",") {
		if t = trimOWS(t); t != "" && !strings.EqualFold(t, "Origin") && !upstreamHasVary(upstream, t) {
			missingDecided++
		}
	}
	if !missingOrigin && missingDecided == 0 {
		return "", false
	}

	var b strings.Builder
	b.Grow(64)
	sep := func() {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
	}
	for _, h := range upstream {
		if h.Name != cors.HeaderVary {
			continue
		}
		for t := range strings.SplitSeq(h.Value, ",") {
			if t = trimOWS(t); t != "" {
				sep()
				b.WriteString(t)
			}
		}
	}
	if missingOrigin {
		sep()
		b.WriteString("Origin")
	}
	if missingDecided > 0 {
		for t := range strings.SplitSeq(decisionVary, ",") {
			if t = trimOWS(t); t != "" && !strings.EqualFold(t, "Origin") && !upstreamHasVary(upstream, t) && !hasToken(b.String(), t) {
				sep()
				b.WriteString(t)
			}
		}
	}
	return b.String(), true
}

func upstreamHasVary(upstream []header.Field, token string) bool {
	for _, h := range upstream {
		if h.Name == cors.HeaderVary && hasToken(h.Value, token) {
			return true
		}
	}
	return false
}

// hasToken reports whether the comma-separated list holds token, ignoring
// case and optional whitespace.
func hasToken(list, token string) bool {
	for t := range strings.SplitSeq(list, ",") {
		if strings.EqualFold(trimOWS(t), token) {
			return true
		}
	}
	return false
}

// trimOWS trims HTTP optional whitespace (SP and HTAB, RFC 9110 §5.6.3).
func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

// exposeList builds Access-Control-Expose-Headers for a policy that exposes
// "*" with credentials: a credentialed browser reads "*" as a header literally
// named "*" (Fetch §3.2.3, Access-Control-Expose-Headers), so the edge, which
// sees the upstream's response, names its headers instead. The policy's own
// named headers come first. Left out: pseudo-headers; the CORS-safelisted
// response-header names, which a browser exposes anyway (Fetch §2.2.2);
// Set-Cookie and Set-Cookie2, which a browser never exposes (forbidden
// response-header names); and Access-Control-* headers, which the edge
// removes. Returns "" when nothing is left.
func exposeList(configured string, upstream []header.Field) string {
	var b strings.Builder
	add := func(name string) {
		if name == "" || name == "*" || hasToken(b.String(), name) {
			return
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
	}
	for t := range strings.SplitSeq(configured, ",") {
		add(trimOWS(t))
	}
	for _, h := range upstream {
		if k := h.Name; exposable(k) {
			add(k)
		}
	}
	return b.String()
}

func exposable(name string) bool {
	if name == "" || name[0] == ':' || strings.HasPrefix(name, cors.PrefixAccessControl) {
		return false
	}
	switch name {
	case "cache-control", "content-language", "content-length", "content-type",
		"expires", "last-modified", "pragma", // CORS-safelisted response-header names
		"set-cookie", "set-cookie2": // forbidden response-header names
		return false
	}
	return true
}
