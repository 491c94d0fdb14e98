package cors

// origin is a request's Origin split into its parts, each a substring of the
// header value (no copies).
type origin struct {
	raw    string
	scheme string // "https"
	host   string // "app.example.com", "[::1]"
	port   string // "" or ":8443"
}

// parseOrigin accepts exactly the serialized origins a browser sends (Fetch
// §3.1.2 "Origin header": serialized-origin = scheme "://" host [":" port]):
// lower-case scheme and host, no path, no trailing "/", no comma list (two
// Origin lines joined by Envoy), no control bytes or spaces. Anything else can
// only come from a non-browser and is never allowed, whatever a regex says.
// "null" is not a serialized origin; callers handle it first.
func parseOrigin(s string) (origin, bool) {
	if len(s) > maxOriginLen {
		return origin{}, false
	}
	o := origin{raw: s}
	// scheme = lower-alpha *( lower-alphanum / "+" / "-" / "." )
	i := 0
	for i < len(s) && isSchemeChar(s[i], i == 0) {
		i++
	}
	if i == 0 || len(s)-i < 3 || s[i:i+3] != "://" {
		return origin{}, false
	}
	o.scheme = s[:i]
	rest := s[i+3:]
	hostEnd := len(rest)
	if len(rest) > 0 && rest[0] == '[' {
		// IPv6 literal: lower-case hex, ':' and '.' (an embedded IPv4), bracketed.
		j := 1
		for j < len(rest) && isIPv6Char(rest[j]) {
			j++
		}
		if j == 1 || j >= len(rest) || rest[j] != ']' {
			return origin{}, false
		}
		hostEnd = j + 1
	} else {
		for j := 0; j < len(rest); j++ {
			c := rest[j]
			if c == ':' {
				hostEnd = j
				break
			}
			if !isHostChar(c) {
				return origin{}, false
			}
		}
		h := rest[:hostEnd]
		// No empty label: not "", ".a", "a.", "a..b".
		if h == "" || h[0] == '.' || h[len(h)-1] == '.' || containsDoubleDot(h) {
			return origin{}, false
		}
	}
	o.host = rest[:hostEnd]
	if p := rest[hostEnd:]; p != "" {
		// serialized-port = 1*5DIGIT; the URL serializer never writes a leading zero.
		if len(p) < 2 || len(p) > 6 || p[0] != ':' || p[1] == '0' {
			return origin{}, false
		}
		for k := 1; k < len(p); k++ {
			if p[k] < '0' || p[k] > '9' {
				return origin{}, false
			}
		}
		o.port = p
	}
	return o, true
}

func isSchemeChar(c byte, first bool) bool {
	if 'a' <= c && c <= 'z' {
		return true
	}
	if first {
		return false
	}
	return '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

// isHostChar admits what a URL serializer writes for a domain or IPv4 host:
// lower-case ASCII (Punycode for the rest), digits, '-', '.', and '_' which
// some internal names carry.
func isHostChar(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_'
}

func isIPv6Char(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || c == ':' || c == '.'
}

func containsDoubleDot(h string) bool {
	for i := 1; i < len(h); i++ {
		if h[i] == '.' && h[i-1] == '.' {
			return true
		}
	}
	return false
}
