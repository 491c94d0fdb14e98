package cors

// Cross-origin request protection. CORS decides who may read a response; it
// does not stop a browser from sending a state-changing simple request (a form
// POST needs no preflight). This check refuses, at the edge, the non-safe
// requests that a browser marks as coming from another origin and whose origin
// the policy does not trust. The rule is Go 1.25's
// net/http.CrossOriginProtection (src/net/http/csrf.go), with "trusted" meaning
// "allowed by this policy's origin rules":
//
//   - GET, HEAD and OPTIONS always pass (they must not change state).
//   - Sec-Fetch-Site "same-origin" or "none" (typed in the address bar,
//     a bookmark) passes; any other value is refused unless the Origin is
//     trusted.
//   - Without Sec-Fetch-Site (browsers before 2020-2023), an Origin whose host
//     differs from the request's host is refused unless trusted; one whose
//     host equals it passes (the scheme is unknown at this point, so an
//     http->https request passes too, as in Go).
//   - With neither header the request passes: it did not come from a browser,
//     or from a browser old enough to send neither, which the same-origin
//     policy's own rules then govern.

// CrossOriginMode says whether and how a policy applies cross-origin
// protection.
type CrossOriginMode uint8

const (
	// CrossOriginOff: no check (the default).
	CrossOriginOff CrossOriginMode = iota
	// CrossOriginEnforce refuses with 403 at the edge.
	CrossOriginEnforce
	// CrossOriginDryRun lets the request through and records
	// ReasonCrossOriginDryRun.
	CrossOriginDryRun
)

// Sec-Fetch-Site values that mark a request as not cross-origin (Fetch
// Metadata, https://w3c.github.io/webappsec-fetch-metadata/#sec-fetch-site-header).
const (
	siteSameOrigin = "same-origin"
	siteNone       = "none"
)

// isSafeMethod reports the methods the check never refuses (RFC 9110 §9.2.1
// safe methods, as net/http.CrossOriginProtection lists them).
func isSafeMethod(m string) bool {
	return m == "GET" || m == "HEAD" || m == "OPTIONS"
}

// crossOriginRefused reports whether the rule refuses r. It allocates nothing.
func (p *Policy) crossOriginRefused(r *Request) bool {
	if isSafeMethod(r.Method) {
		return false
	}
	switch r.SecFetchSite {
	case siteSameOrigin, siteNone:
		return false
	case "":
		if !r.HasOrigin {
			return false
		}
		if h, ok := originHost(r.Origin); ok && h == r.Host {
			return false
		}
	}
	if !r.HasOrigin {
		// Sec-Fetch-Site says cross-site (or same-site) and there is no Origin
		// to trust.
		return true
	}
	_, reason := p.allowOrigin(r.Origin)
	return reason != ReasonAllowed
}

// originHost returns the host[:port] of a serialized origin, as
// url.Parse(origin).Host would. ok is false for anything that is not a
// serialized origin (for example "null", or a scheme url.Parse refuses): Go
// refuses those, and so does this check, since their host cannot be compared.
func originHost(origin string) (string, bool) {
	o, ok := parseOrigin(origin)
	if !ok {
		return "", false
	}
	return o.host + o.port, true
}

// decideCrossOrigin fills d for a request the rule refuses under
// CrossOriginEnforce: the edge answers 403 without CORS headers and the
// upstream never sees the request.
func decideCrossOrigin(r *Request, d *Decision) {
	d.Kind = KindNotCORS
	if r.HasOrigin {
		d.Kind = KindActual
	}
	d.Action, d.Status = ActionRespond, 403
	d.Reason = ReasonCrossOriginRefused
	d.Detail = r.Origin
	if !r.HasOrigin {
		d.Detail = r.SecFetchSite
	}
}
