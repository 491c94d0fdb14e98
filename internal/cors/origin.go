package cors

import "strings"

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
		if j := strings.IndexByte(rest, ':'); j >= 0 {
			hostEnd = j
		}
		if !validHost(rest[:hostEnd]) {
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

// validHost reports whether h is made of host characters (isHostChar) with
// no empty label: not "", ".a", "a." or "a..b". It runs on every CORS request
// whose origin is not listed exactly, over up to 253 bytes, so it checks
// eight bytes at a time (SWAR: each byte of a uint64 classified at once with
// between); the rest goes through a table with no data-dependent branch.
func validHost(h string) bool {
	if h == "" || h[0] == '.' || h[len(h)-1] == '.' {
		return false
	}
	i := 0
	var carry uint64 // the previous word's last byte was a dot: bit 7 set
	for ; i+8 <= len(h); i += 8 {
		b := h[i : i+8]
		w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		if w&highs != 0 {
			return false
		}
		dots := between(w, '.', '.')
		// Most words of a host are letters and dots; the other classes are
		// computed only for words that are not.
		if valid := between(w, 'a', 'z') | dots; valid != highs {
			valid |= between(w, '0', '9') | between(w, '-', '-') | between(w, '_', '_')
			if valid != highs {
				return false
			}
		}
		if dots&(dots<<8|carry) != 0 {
			return false
		}
		carry = dots >> 56
	}
	acc, prev := byte(0), byte(carry>>6) // bit 7 of carry becomes hostClassDot
	for ; i < len(h); i++ {
		c := hostClass[h[i]]
		acc |= c&hostClassBad | c&prev
		prev = c
	}
	return acc == 0
}

// SWAR constants: a byte value repeated in every byte of a word.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// between sets bit 7 of each byte of w that lies in [lo, hi], for words
// whose bytes are all below 0x80 (callers check w&highs first). No carry
// crosses a byte then: for b < 0x80, b+(0x80-lo) has bit 7 set iff b >= lo,
// and b+(0x7f-hi) has it clear iff b <= hi.
func between(w, lo, hi uint64) uint64 {
	return (w + ones*(0x80-lo)) &^ (w + ones*(0x7f-hi)) & highs
}

const (
	hostClassBad = 1 << iota // not a host character
	hostClassDot             // '.'
)

var hostClass = func() (t [256]byte) {
	for c := range t {
		switch {
		case c == '.':
			t[c] = hostClassDot
		case !isHostChar(byte(c)):
			t[c] = hostClassBad
		}
	}
	return t
}()

func isIPv6Char(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || c == ':' || c == '.'
}
