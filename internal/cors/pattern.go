package cors

import (
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// originPattern is one compiled entry of allowOrigins.
type originPattern struct {
	// key is the canonical form: "https://app.example.com" or, for a wildcard,
	// "https://*.example.com:8443" (what a request is looked up under after its
	// leftmost labels are replaced by "*").
	key      string
	wildcard bool
	scheme   string
	host     string // without "*." for a wildcard
}

// parseOriginPattern checks one configured origin against the canonical form
// a browser serializes (Fetch §3.1.2), so that the byte comparison done per
// request is right. The message names what to write instead.
func parseOriginPattern(s string) (originPattern, string) {
	scheme, hostport, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return originPattern{}, quote(s) + ` is not an origin: write scheme://host[:port], e.g. "https://app.example.com"`
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return originPattern{}, quote(s) + " has non-ASCII characters: write the host in Punycode, " + punycodeHint(scheme, hostport)
		}
		if s[i] <= ' ' || s[i] == 0x7f {
			return originPattern{}, quote(s) + " contains a space or control character: remove it"
		}
	}
	canon, faults := canonicalOrigin(scheme, hostport)
	if len(faults) > 0 {
		return originPattern{}, quote(s) + " is not a serialized origin (it has " + strings.Join(faults, ", ") +
			"), so no browser ever sends it: write " + quote(canon)
	}
	for i := 0; i < len(scheme); i++ {
		if !isSchemeChar(scheme[i], i == 0) {
			return originPattern{}, quote(s) + ` has an invalid scheme: write e.g. "https://app.example.com"`
		}
	}
	host, port := splitHostPort(hostport)
	if port != "" {
		n, err := strconv.Atoi(port[1:])
		if err != nil || n < 1 || n > 65535 || port[1] < '1' || port[1] > '9' { // no sign, no leading zero
			return originPattern{}, quote(s) + " has an invalid port: write a number from 1 to 65535 without leading zeros, or leave the port out"
		}
	}
	p := originPattern{key: s, scheme: scheme, host: host}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		p.wildcard, p.host = true, rest
	}
	if strings.Contains(p.host, "*") || host == "*" {
		return originPattern{}, quote(s) + ` has a wildcard that is not the leftmost label: a wildcard stands for one or more leftmost labels only, as in "` + scheme + `://*.example.com"`
	}
	if strings.HasPrefix(p.host, "[") {
		if p.wildcard {
			return originPattern{}, quote(s) + " puts a wildcard on an IP address: list the address itself"
		}
		inner := strings.TrimSuffix(strings.TrimPrefix(p.host, "["), "]")
		a, err := netip.ParseAddr(inner)
		if err != nil || !a.Is6() || a.Zone() != "" || !strings.HasSuffix(p.host, "]") {
			return originPattern{}, quote(s) + ` has an invalid IPv6 host: write it in brackets, e.g. "http://[::1]:8080"`
		}
		if a.Is4In6() {
			return originPattern{}, quote(s) + " uses an IPv4-mapped IPv6 address: browsers serialize it as IPv4, write " + quote(scheme+"://"+a.Unmap().String()+port)
		}
		if a.String() != inner {
			return originPattern{}, quote(s) + " is not how a browser writes this IPv6 address: write " + quote(scheme+"://["+a.String()+"]"+port)
		}
		return p, ""
	}
	if msg := checkDomain(p.host); msg != "" {
		return originPattern{}, quote(s) + " " + msg
	}
	return p, ""
}

// canonicalOrigin strips what a serialized origin never has and lists it.
func canonicalOrigin(scheme, hostport string) (string, []string) {
	var faults []string
	if i := strings.IndexByte(hostport, '#'); i >= 0 {
		hostport, faults = hostport[:i], append(faults, "a fragment")
	}
	if i := strings.IndexByte(hostport, '?'); i >= 0 {
		hostport, faults = hostport[:i], append(faults, "a query")
	}
	if i := strings.IndexByte(hostport, '/'); i >= 0 {
		if hostport[i:] == "/" {
			faults = append(faults, "a trailing /")
		} else {
			faults = append(faults, "a path")
		}
		hostport = hostport[:i]
	}
	if i := strings.LastIndexByte(hostport, '@'); i >= 0 {
		hostport, faults = hostport[i+1:], append(faults, "userinfo")
	}
	if strings.ToLower(scheme) != scheme || strings.ToLower(hostport) != hostport {
		scheme, hostport, faults = strings.ToLower(scheme), strings.ToLower(hostport), append(faults, "upper case")
	}
	host, port := splitHostPort(hostport)
	if (scheme == "https" && port == ":443") || (scheme == "http" && port == ":80") {
		hostport, faults = host, append(faults, "the default port "+port[1:])
	}
	return scheme + "://" + hostport, faults
}

// splitHostPort splits "host[:port]" with the port's ':' kept; an IPv6 host
// keeps its brackets.
func splitHostPort(hp string) (host, port string) {
	start := 0
	if strings.HasPrefix(hp, "[") {
		if i := strings.IndexByte(hp, ']'); i >= 0 {
			start = i
		}
	}
	if i := strings.LastIndexByte(hp[start:], ':'); i >= 0 {
		return hp[:start+i], hp[start+i:]
	}
	return hp, ""
}

// checkDomain validates a lower-case DNS name or dotted-quad IPv4 address.
func checkDomain(h string) string {
	if h == "" {
		return `has no host: write e.g. "https://app.example.com"`
	}
	if len(h) > 253 {
		return "has a host longer than 253 characters"
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" {
			return "has an empty label in its host (a leading, trailing or doubled dot): remove it"
		}
		if len(label) > 63 {
			return "has a host label longer than 63 characters"
		}
		for i := 0; i < len(label); i++ {
			if !isHostChar(label[i]) || label[i] == '.' {
				return "has an invalid character " + strconv.QuoteRune(rune(label[i])) + " in its host"
			}
		}
	}
	if last := h[strings.LastIndexByte(h, '.')+1:]; last[0] >= '0' && last[0] <= '9' {
		// A host whose last label is numeric is parsed as an IPv4 address by
		// browsers (WHATWG URL "ends in a number"), and serialized dotted-quad.
		if a, err := netip.ParseAddr(h); err != nil || !a.Is4() {
			return "looks like an IPv4 address but is not a dotted quad a browser would write, e.g. \"http://192.0.2.1\""
		}
	}
	return ""
}

// isPublicSuffix reports whether a wildcard's base domain is itself a public
// suffix ("github.io", "co.uk"): "https://*.github.io" admits every tenant of
// github.io, which with credentials hands cookies' data to strangers.
func isPublicSuffix(domain string) bool {
	ps, _ := publicsuffix.PublicSuffix(domain)
	return ps == domain
}

// isLoopback reports hosts browsers treat as potentially trustworthy without
// TLS: localhost names and loopback addresses.
func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && a.IsLoopback()
}

func punycodeHint(scheme, hostport string) string {
	host, port := splitHostPort(strings.ToLower(hostport))
	wild := ""
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		wild, host = "*.", rest
	}
	if a, err := idna.Lookup.ToASCII(host); err == nil {
		return "e.g. " + quote(strings.ToLower(scheme)+"://"+wild+a+port)
	}
	return `e.g. "https://xn--rsum-bpad.example"`
}

func quote(s string) string { return Quote(s) }
