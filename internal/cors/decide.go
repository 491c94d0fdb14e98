package cors

import (
	"net/http"
	"strings"
)

// Decide classifies r and decides it under the policy, following the Fetch
// standard's CORS protocol (§3.2). It allocates nothing: the Decision's strings
// are compiled constants or substrings of r.
//
// The Decision (about 300 bytes) is filled in place through a pointer rather
// than built and returned by each helper: copying it at every level cost more
// than the decision itself on short requests.
func (p *Policy) Decide(r *Request) (d Decision) {
	p.decide(r, &d)
	if p.mode == ModeDryRun {
		d.DryRun, d.EnforceAction, d.Action = true, d.Action, ActionPassThrough
	}
	return d
}

// decide fills d, which must be the zero Decision.
func (p *Policy) decide(r *Request, d *Decision) {
	if p.crossOrigin == CrossOriginOff || !p.crossOriginRefused(r) {
		p.decideCORS(r, d)
		return
	}
	if p.crossOrigin == CrossOriginEnforce {
		decideCrossOrigin(r, d)
		return
	}
	// DryRun: decide as without the check, then say what Enforce would have
	// done. A refused request's origin is untrusted, so the CORS decision
	// carries no CORS headers either way.
	p.decideCORS(r, d)
	d.Reason, d.Detail = ReasonCrossOriginDryRun, r.Origin
}

// decideCORS is the CORS protocol's decision, without cross-origin protection.
func (p *Policy) decideCORS(r *Request, d *Decision) {
	if !r.HasOrigin {
		d.Kind, d.Action, d.Reason = KindNotCORS, ActionContinue, ReasonNotCORS
		return
	}
	// Fetch §3.2.2: a CORS-preflight request uses OPTIONS and includes
	// Access-Control-Request-Method. An OPTIONS without it is an actual request.
	if r.Method == http.MethodOptions && r.AccessControlRequestMethod != "" {
		p.decidePreflight(r, d)
		return
	}
	p.decideActual(r, d)
}

func (p *Policy) decideActual(r *Request, d *Decision) {
	d.Kind, d.Action = KindActual, ActionContinue
	acao, reason := p.allowOrigin(r.Origin)
	if reason != ReasonAllowed {
		d.Reason, d.Detail = reason, r.Origin
		return
	}
	d.Allowed = true
	d.Headers.add(HeaderACAO, acao)
	if p.credentialed {
		d.Headers.add(HeaderACAC, headerTrue)
	}
	if p.exposeHeaders != "" {
		d.Headers.add(HeaderACEH, p.exposeHeaders)
	}
	d.ExposeResponseHeaders = p.exposeFromUpstrm
}

// decidePreflight checks a preflight in the order a browser would (Fetch
// §4.8 "CORS-preflight fetch", steps 7 to 9): origin, method, headers, then
// private network access. The first failure is the reason.
func (p *Policy) decidePreflight(r *Request, d *Decision) {
	d.Kind = KindPreflight
	acao, reason := p.allowOrigin(r.Origin)
	detail := r.Origin
	if reason == ReasonAllowed {
		reason, detail = p.checkMethod(r.AccessControlRequestMethod)
	}
	if reason == ReasonAllowed {
		reason, detail = p.checkHeaders(r.AccessControlRequestHeaders)
	}
	askedPNA := r.AccessControlRequestPrivateNetwork == headerTrue
	if reason == ReasonAllowed && askedPNA && !p.privateNetwork {
		reason, detail = ReasonPrivateNetworkNotAllowed, r.AccessControlRequestPrivateNetwork
	}
	if reason != ReasonAllowed {
		d.Reason, d.Detail = reason, detail
		if p.unmatched == PreflightForward {
			d.Action = ActionPassThrough
			return
		}
		// Fetch §3.2.3: "the 403 status can be used, coupled with omitting the
		// relevant headers".
		d.Action, d.Status = ActionRespond, http.StatusForbidden
		return
	}

	d.Action, d.Allowed, d.Status = ActionRespond, true, http.StatusNoContent
	d.Headers.add(HeaderACAO, acao)
	if p.credentialed {
		d.Headers.add(HeaderACAC, headerTrue)
	}
	if m := p.answerMethods(r.AccessControlRequestMethod); m != "" {
		d.Headers.add(HeaderACAM, m)
	}
	if r.AccessControlRequestHeaders != "" {
		if h := p.answerHeaders(r.AccessControlRequestHeaders); h != "" {
			d.Headers.add(HeaderACAH, h)
		}
	}
	if p.maxAge != "" {
		d.Headers.add(HeaderACMA, p.maxAge)
	}
	if askedPNA {
		d.Headers.add(HeaderACAPN, headerTrue)
	}
	d.Headers.add(HeaderVary, preflightVary)
}

// allowOrigin returns the Access-Control-Allow-Origin value for an allowed
// origin, or the reason it is not allowed.
func (p *Policy) allowOrigin(s string) (string, Reason) {
	if s == nullOrigin {
		// "null" is sent by opaque origins; it matches only a literal "null"
		// (docs/design.md#matching-rules), never "*" or a regex.
		if p.allowNull {
			return nullOrigin, ReasonAllowed
		}
		return "", ReasonOriginNotAllowed
	}
	// An origin listed exactly is allowed without parsing it: Compile keeps
	// in exact only keys that parseOrigin accepts, so a byte-equal request
	// origin is well formed. (exact is empty when anyOrigin is set.)
	if _, ok := p.exact[s]; ok {
		return s, ReasonAllowed
	}
	if !p.anyOrigin && len(p.wildcards) == 0 && len(p.regexes) == 0 {
		// Only exact origins, and this is none of them: denied whether or
		// not it is well formed, so spare the parse (a denial is the common
		// case of a probe, and the cheapest answer is the best defence).
		return "", ReasonOriginNotAllowed
	}
	o, ok := parseOrigin(s)
	if !ok {
		return "", ReasonOriginMalformed
	}
	if p.anyOrigin {
		return wildcard, ReasonAllowed
	}
	if len(p.wildcards) > 0 && p.matchWildcard(o) {
		return s, ReasonAllowed
	}
	for _, rx := range p.regexes {
		if rx.MatchString(s) {
			return s, ReasonAllowed
		}
	}
	return "", ReasonOriginNotAllowed
}

// matchWildcard looks the origin up under every "*.<suffix>" form that keeps
// at least one label in front: for https://a.b.example.com that is
// https://*.b.example.com, then https://*.example.com, then https://*.com.
// Cutting only at dots keeps label boundaries (no "evilexample.com" for
// "*.example.com"), and the work grows with the number of labels, not of
// policies.
func (p *Policy) matchWildcard(o origin) bool {
	if o.host[0] == '[' {
		return false
	}
	var buf [maxOriginLen + 1]byte
	prefix := len(o.scheme) + len("://")
	n := copy(buf[:], o.raw[:prefix])
	buf[n] = '*'
	n++
	for i := 1; i < len(o.host); i++ {
		if o.host[i] != '.' {
			continue
		}
		m := n + copy(buf[n:], o.host[i:])
		m += copy(buf[m:], o.port)
		if _, ok := p.wildcards[string(buf[:m])]; ok { // no allocation: the compiler looks up without converting
			return true
		}
	}
	return false
}

func (p *Policy) checkMethod(m string) (Reason, string) {
	// "*" is a token, but no method: answering it under a credentialed "*"
	// would echo a literal "*" (Fetch §3.2.3), so it is never allowed.
	if len(m) > maxMethodLen || !isToken(m) || m == wildcard {
		return ReasonMethodNotAllowed, m
	}
	if isSafelistedMethod(m) || p.anyMethod {
		return ReasonAllowed, ""
	}
	if _, ok := p.methods[m]; ok {
		return ReasonAllowed, ""
	}
	return ReasonMethodNotAllowed, m
}

func (p *Policy) answerMethods(requested string) string {
	if p.anyMethod && p.credentialed {
		// "*" is literal for credentialed requests (Fetch §3.2.3): answer the
		// method asked for, which checkMethod has validated as a token.
		return requested
	}
	return p.allowMethods
}

// checkHeaders walks Access-Control-Request-Headers, a comma-separated list
// of names. Browsers send it sorted, lower case and without spaces (Fetch
// "CORS-unsafe request-header names"), but intermediaries may join repeated
// lines, add optional whitespace or empty elements: those are tolerated. The
// length is bounded first, so the work is too, whatever the header's size.
func (p *Policy) checkHeaders(acrh string) (Reason, string) {
	if acrh == "" {
		return ReasonAllowed, ""
	}
	if len(acrh) > maxACRHLen {
		return ReasonHeadersTooLarge, ""
	}
	var buf [maxHeaderNameLen]byte
	for i := 0; ; {
		// Commas and whitespace between elements (empty elements included)
		// are skipped in a tight loop, so a list of nothing but separators
		// costs one table lookup per byte.
		for i < len(acrh) && listSeparator[acrh[i]] {
			i++
		}
		if i == len(acrh) {
			break
		}
		end := len(acrh)
		if j := strings.IndexByte(acrh[i:], ','); j >= 0 {
			end = i + j
		}
		name := trimTrailingOWS(acrh[i:end])
		i = end
		// "*" is a token but names no real header; echoed under a
		// credentialed "*" it would read as the wildcard (Fetch §3.2.3).
		if len(name) > maxHeaderNameLen || !isToken(name) || name == wildcard {
			return ReasonHeaderNotAllowed, name
		}
		lower := toLower(buf[:0], name)
		if string(lower) == authorization {
			if !p.allowAuthorization {
				return ReasonHeaderNotAllowed, name
			}
			continue
		}
		if p.anyHeader {
			continue
		}
		if _, ok := p.headers[string(lower)]; !ok {
			return ReasonHeaderNotAllowed, name
		}
	}
	return ReasonAllowed, ""
}

func (p *Policy) answerHeaders(acrh string) string {
	if p.anyHeader && p.credentialed {
		// "*" is literal for credentialed requests: echo the names asked for,
		// every one of which checkHeaders has allowed.
		return acrh
	}
	return p.allowHeaders
}

// listSeparator marks ',', SP and HTAB.
var listSeparator = [256]bool{',': true, ' ': true, '\t': true}

// trimTrailingOWS removes trailing spaces and tabs.
func trimTrailingOWS(s string) string {
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// toLower appends the ASCII lower-case form of s to dst.
func toLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
