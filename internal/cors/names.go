package cors

// Header names as Envoy carries them (lower case), and the abbreviations used
// across the package: ACAO = Access-Control-Allow-Origin, and so on.
const (
	HeaderOrigin = "origin"
	HeaderVary   = "vary"

	HeaderACRM  = "access-control-request-method"
	HeaderACRH  = "access-control-request-headers"
	HeaderACRPN = "access-control-request-private-network"

	HeaderACAO  = "access-control-allow-origin"
	HeaderACAC  = "access-control-allow-credentials"
	HeaderACAM  = "access-control-allow-methods"
	HeaderACAH  = "access-control-allow-headers"
	HeaderACMA  = "access-control-max-age"
	HeaderACEH  = "access-control-expose-headers"
	HeaderACAPN = "access-control-allow-private-network"

	// PrefixAccessControl starts every CORS response header; the edge removes
	// upstream headers with it so that a browser never sees two answers.
	PrefixAccessControl = "access-control-"
)

const (
	wildcard      = "*"
	nullOrigin    = "null"
	headerTrue    = "true"
	authorization = "authorization"

	// preflightVary keeps a cache in front of the edge from serving one
	// preflight answer to another origin or another preflight question. Browsers
	// do not need it (the preflight cache is keyed by origin and URL, Fetch
	// §4.9), shared caches that store OPTIONS do.
	preflightVary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
)

// Bounds on attacker-controlled input, checked before any parsing so that the
// work per request is bounded whatever its size (rs/cors#170: one 1 MiB
// Access-Control-Request-Headers cost 127 ms and 121 MB before such a bound).
const (
	// maxOriginLen: a 64-byte scheme, "://", a 253-byte host, ":" and a
	// five-digit port.
	maxOriginLen = 64 + 3 + 253 + 1 + 5
	// maxACRHLen is far above what a browser sends (sorted lower-case names of
	// the request's few CORS-unsafe headers).
	maxACRHLen = 4096
	// maxHeaderNameLen bounds one name in Access-Control-Request-Headers.
	maxHeaderNameLen = 256
	// maxMethodLen bounds Access-Control-Request-Method.
	maxMethodLen = 64
)

// isSafelistedMethod reports the CORS-safelisted methods (Fetch §2.2.1
// "methods"): they pass a preflight without being listed.
func isSafelistedMethod(m string) bool {
	return m == "GET" || m == "HEAD" || m == "POST"
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110 §5.6.2),
// the grammar of methods and header names.
func isTokenChar(c byte) bool {
	return tokenTable[c]
}

var tokenTable = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}
