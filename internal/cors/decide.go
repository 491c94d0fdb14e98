package cors

import "net/http"

// Decide classifies r and decides it under the policy, following the Fetch
// standard's CORS protocol (§3.2). It allocates nothing: the Decision's strings
// are compiled constants or substrings of r.
func (p *Policy) Decide(r *Request) Decision {
	d := p.decide(r)
	if p.mode == ModeDryRun {
		d.DryRun, d.EnforceAction, d.Action = true, d.Action, ActionPassThrough
	}
	return d
}

func (p *Policy) decide(r *Request) Decision {
	if !r.HasOrigin {
		return Decision{Kind: KindNotCORS, Action: ActionContinue, Reason: ReasonNotCORS}
	}
	// Fetch §3.2.2: a CORS-preflight request uses OPTIONS and includes
	// Access-Control-Request-Method. An OPTIONS without it is an actual request.
	if r.Method == http.MethodOptions && r.AccessControlRequestMethod != "" {
		return p.decidePreflight(r)
	}
	return p.decideActual(r)
}

func (p *Policy) decideActual(r *Request) Decision {
	d := Decision{Kind: KindActual, Action: ActionContinue}
	acao, reason := p.allowOrigin(r.Origin)
	if reason != ReasonAllowed {
		d.Reason, d.Detail = reason, r.Origin
		return d
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
	return d
}

// decidePreflight checks a preflight in the order a browser would (Fetch
// §4.8 "CORS-preflight fetch", steps 7 to 9): origin, method, headers, then
// private network access. The first failure is the reason.
func (p *Policy) decidePreflight(r *Request) Decision {
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
		d := Decision{Kind: KindPreflight, Reason: reason, Detail: detail}
		if p.unmatched == PreflightForward {
			d.Action = ActionPassThrough
			return d
		}
		// Fetch §3.2.3: "the 403 status can be used, coupled with omitting the
		// relevant headers".
		d.Action, d.Status = ActionRespond, http.StatusForbidden
		return d
	}

	d := Decision{Kind: KindPreflight, Action: ActionRespond, Allowed: true, Status: http.StatusNoContent}
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
	return d
}

// allowOrigin returns the Access-Control-Allow-Origin value for an allowed
// origin, or the reason it is not allowed.
func (p *Policy) allowOrigin(s string) (string, Reason) {
	if s == nullOrigin {
		// "null" is sent by opaque origins; it matches only a literal "null"
		// (DESIGN.md), never "*" or a regex.
		if p.allowNull {
			return nullOrigin, ReasonAllowed
		}
		return "", ReasonOriginNotAllowed
	}
	o, ok := parseOrigin(s)
	if !ok {
		return "", ReasonOriginMalformed
	}
	if p.anyOrigin {
		return wildcard, ReasonAllowed
	}
	if _, ok := p.exact[s]; ok {
		return s, ReasonAllowed
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
	if len(m) > maxMethodLen || !isToken(m) {
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
	for rest := acrh; rest != ""; {
		var name string
		name, rest = nextListElement(rest)
		if name == "" {
			continue
		}
		if len(name) > maxHeaderNameLen || !isToken(name) {
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

// nextListElement returns the first element of a comma-separated list with
// optional whitespace trimmed, and the rest after its comma.
func nextListElement(s string) (elem, rest string) {
	end := len(s)
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			end, rest = i, s[i+1:]
			break
		}
	}
	elem = s[:end]
	for elem != "" && (elem[0] == ' ' || elem[0] == '\t') {
		elem = elem[1:]
	}
	for elem != "" && (elem[len(elem)-1] == ' ' || elem[len(elem)-1] == '\t') {
		elem = elem[:len(elem)-1]
	}
	return elem, rest
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
