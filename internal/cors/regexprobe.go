package cors

import (
	"regexp"
	"regexp/syntax"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// credentialedRegexHole returns an origin of a site the author did not mean,
// that rx (an anchored allowOriginRegexes pattern) nevertheless matches; or
// "" if none of the probes gets through. With credentials, such a regex lets
// that site read users' data: the classic CORS hole.
//
// The probes are an arbitrary origin, and the shortest origin the regex
// itself accepts, bent two ways that attackers register domains for: a
// suffix ("https://app.example.com.attacker.test") and a prefix glued to the
// first label ("https://attackerexample.com"). A probe counts only when its
// registrable domain (eTLD+1) differs from the sample's: a regex that admits
// any subdomain of example.com is not a hole.
func credentialedRegexHole(rx *regexp.Regexp, re *syntax.Regexp) string {
	for _, p := range []string{"https://corsgate-probe.invalid", "http://corsgate-probe.invalid", nullOrigin} {
		if rx.MatchString(p) {
			return p
		}
	}
	// Two samples: one reads "." as a literal dot (an unescaped dot in a host
	// usually meant one) and repeats nothing; the other reads "." as a letter
	// and repeats "*" once (so ".*\.example\.com" yields a real host).
	for _, mode := range []sampleMode{{anyChar: '.'}, {anyChar: 'a', starOnce: true}} {
		sample, ok := shortestMatch(re, mode)
		if !ok || !rx.MatchString(sample) {
			continue
		}
		o, ok := parseOrigin(sample)
		if !ok || o.host[0] == '[' {
			continue
		}
		site := registrable(o.host)
		scheme := o.raw[:len(o.scheme)+3]
		probes := []string{
			scheme + o.host + ".corsgate-probe.invalid" + o.port,
			scheme + "corsgate-probe" + o.host + o.port,
			scheme + "corsgate-probe-" + o.host + o.port,
		}
		// "app.example.com" with unescaped dots also matches "appxexample.com".
		for i := 0; i < len(o.host); i++ {
			if o.host[i] == '.' {
				probes = append(probes, scheme+o.host[:i]+"x"+o.host[i+1:]+o.port)
			}
		}
		for _, p := range probes {
			if po, ok := parseOrigin(p); ok && rx.MatchString(p) && registrable(po.host) != site {
				return p
			}
		}
	}
	return ""
}

// sampleMode says how shortestMatch reads "." and "*".
type sampleMode struct {
	anyChar  byte
	starOnce bool
}

func registrable(host string) string {
	d, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return host
	}
	return d
}

// shortestMatch builds a short string that re matches: literals as written,
// the first rune of each class, no repetition beyond the minimum. It gives up
// (false) on constructs it does not follow.
func shortestMatch(re *syntax.Regexp, m sampleMode) (string, bool) {
	var b strings.Builder
	ok := writeShortest(&b, re.Simplify(), m, 0)
	return b.String(), ok && b.Len() <= maxOriginLen
}

func writeShortest(b *strings.Builder, re *syntax.Regexp, m sampleMode, depth int) bool {
	if depth > 100 || b.Len() > maxOriginLen {
		return false
	}
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				r = toLowerRune(r)
			}
			b.WriteRune(r)
		}
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return false
		}
		// Prefer a lower-case letter or digit, as an origin would have.
		r := re.Rune[0]
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if lo, hi := re.Rune[i], re.Rune[i+1]; lo <= 'a' && 'a' <= hi {
				r = 'a'
				break
			} else if lo >= 'a' && lo <= 'z' {
				r = lo
			}
		}
		b.WriteRune(r)
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		b.WriteByte(m.anyChar)
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpQuest:
	case syntax.OpStar:
		if m.starOnce {
			return writeShortest(b, re.Sub[0], m, depth+1)
		}
	case syntax.OpCapture, syntax.OpPlus:
		return writeShortest(b, re.Sub[0], m, depth+1)
	case syntax.OpRepeat:
		for range re.Min {
			if !writeShortest(b, re.Sub[0], m, depth+1) {
				return false
			}
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !writeShortest(b, sub, m, depth+1) {
				return false
			}
		}
	case syntax.OpAlternate:
		return writeShortest(b, re.Sub[0], m, depth+1)
	default:
		return false
	}
	return true
}

func toLowerRune(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}
