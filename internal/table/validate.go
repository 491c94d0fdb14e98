package table

import (
	"fmt"
	"strings"

	"github.com/corsgate/corsgate/internal/cors"
)

// NormalizeHost checks a configured host pattern and returns its lower-case
// form. The error says what to write instead.
func NormalizeHost(h string) (string, error) {
	lh := strings.ToLower(h)
	name, wild := strings.CutPrefix(lh, "*.")
	switch {
	case h == "" || h == "*":
		return "", fmt.Errorf("%s is not a host: to match every host, leave hosts empty", cors.Quote(h))
	case len(lh) > maxHostLen:
		return "", fmt.Errorf("%s is longer than %d characters", cors.Quote(h), maxHostLen)
	case strings.Contains(lh, "://") || strings.Contains(lh, "/"):
		// A URL (or an origin) pasted into hosts: its host is meant.
		host := lh
		if _, rest, ok := strings.Cut(host, "://"); ok {
			host = rest
		}
		host, _, _ = strings.Cut(host, "/")
		if i := strings.LastIndexByte(host, '@'); i >= 0 {
			host = host[i+1:]
		}
		if i := strings.IndexByte(host, ':'); i >= 0 {
			host = host[:i]
		}
		return "", fmt.Errorf("%s is a URL, and hosts are host names (a scheme belongs in allowOrigins, a path in pathPrefixes): write %q", cors.Quote(h), host)
	case strings.Contains(lh, ":"):
		return "", fmt.Errorf("%s has a port: hosts are matched without ports, write %q", cors.Quote(h), lh[:strings.IndexByte(lh, ':')])
	case strings.Contains(name, "*"):
		return "", fmt.Errorf(`%s has a wildcard that is not the leftmost label: write e.g. "*.example.com" (any subdomain of example.com)`, cors.Quote(h))
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("%s has an empty or over-long label: write a DNS name such as %q", cors.Quote(h), "api.example.com")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("%s has the invalid character %q: write a DNS name in Punycode, such as %q", cors.Quote(h), c, "api.example.com")
			}
		}
	}
	if wild && !strings.Contains(name, ".") {
		// "*.com" would claim every .com host a request may name.
		return "", fmt.Errorf("%s would match every host under a top-level domain: write e.g. %q", cors.Quote(h), "*.example.com")
	}
	return lh, nil
}

// NormalizePathPrefix checks a configured path prefix.
func NormalizePathPrefix(p string) (string, error) {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("%s does not start with '/': write e.g. %q", cors.Quote(p), "/api")
	case len(p) >= maxReadingLen:
		return "", fmt.Errorf("a path prefix of %d bytes is longer than the %d bytes a request path is read for: shorten it", len(p), maxReadingLen-1)
	case strings.ContainsAny(p, "?#"):
		return "", fmt.Errorf("%s has a query or fragment: prefixes match the path only, write %q", cors.Quote(p), p[:strings.IndexAny(p, "?#")])
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] == 0x7f {
			return "", fmt.Errorf("%s contains a space or control character: percent-encode it as the request path does", cors.Quote(p))
		}
	}
	// A prefix must read the same every way an upstream may read a request
	// path (path.go): a request spelt as the prefix is would otherwise be
	// ambiguous, and refused, every time.
	key := prefixKey(p)
	if flags := readingsOf(key); flags != 0 {
		full := string(appendReading(nil, key, flags))
		if full == "" {
			full = "/"
		}
		return "", fmt.Errorf("%q may be read by an upstream as %q (decoded, with dot segments, parameters "+
			"and empty segments removed), and a request spelt like it would be refused as path ambiguous: write %q", p, full, full)
	}
	return p, nil
}
