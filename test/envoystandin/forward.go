package envoystandin

import (
	"fmt"
	"strings"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// forwardRules is forward_rules (HeaderForwardingRules): which header names
// go to the server at all (MutationUtils::headerCanBeForwarded).
type forwardRules struct {
	allowed, disallowed []stringMatcher
}

func newForwardRules(r *extprocfilterv3.HeaderForwardingRules) (*forwardRules, error) {
	fr := &forwardRules{}
	var err error
	if fr.allowed, err = compileList(r.GetAllowedHeaders(), "forward_rules.allowed_headers"); err != nil {
		return nil, err
	}
	if fr.disallowed, err = compileList(r.GetDisallowedHeaders(), "forward_rules.disallowed_headers"); err != nil {
		return nil, err
	}
	return fr, nil
}

func (fr *forwardRules) forwards(key string) bool {
	if anyMatch(fr.disallowed, key) {
		return false
	}
	return len(fr.allowed) == 0 || anyMatch(fr.allowed, key)
}

type stringMatcher func(string) bool

func anyMatch(ms []stringMatcher, s string) bool {
	for _, m := range ms {
		if m(s) {
			return true
		}
	}
	return false
}

func compileList(l *matcherv3.ListStringMatcher, field string) ([]stringMatcher, error) {
	var out []stringMatcher
	for i, p := range l.GetPatterns() {
		m, err := compileStringMatcher(p)
		if err != nil {
			return nil, fmt.Errorf("envoystandin: %s.patterns[%d]: %w", field, i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// compileStringMatcher is Matchers::StringMatcherImpl for the pattern kinds
// Envoy supports in forward_rules; ignore_case applies to all but safe_regex.
func compileStringMatcher(p *matcherv3.StringMatcher) (stringMatcher, error) {
	fold := func(s string) string {
		if p.GetIgnoreCase() {
			return strings.ToLower(s)
		}
		return s
	}
	switch pat := p.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		want := fold(pat.Exact)
		return func(s string) bool { return fold(s) == want }, nil
	case *matcherv3.StringMatcher_Prefix:
		want := fold(pat.Prefix)
		return func(s string) bool { return strings.HasPrefix(fold(s), want) }, nil
	case *matcherv3.StringMatcher_Suffix:
		want := fold(pat.Suffix)
		return func(s string) bool { return strings.HasSuffix(fold(s), want) }, nil
	case *matcherv3.StringMatcher_Contains:
		want := fold(pat.Contains)
		return func(s string) bool { return strings.Contains(fold(s), want) }, nil
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := compileFull(pat.SafeRegex, "safe_regex")
		if err != nil {
			return nil, err
		}
		return re.MatchString, nil
	default:
		return nil, fmt.Errorf("string matcher %T is not reproduced by the stand-in: use exact, prefix, suffix, contains or safe_regex", pat)
	}
}
