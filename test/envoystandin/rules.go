package envoystandin

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// checkOp and checkResult mirror Filters::Common::MutationRules.
type checkOp int

const (
	opSet checkOp = iota
	opAppend
	opRemove
)

type checkResult int

const (
	checkOK checkResult = iota
	checkIgnore
	checkFail
)

// checker is MutationRules::Checker (mutation_rules.cc), the rules every
// header mutation and every ImmediateResponse header passes (docs/envoy.md#what-the-default-mutation-rules-refuse).
// With no rules configured it ignores changes to routing headers (host,
// :authority, :method, :scheme), to x-envoy-*, appends to ":" headers,
// removal of ":" headers and host, and values Envoy could not use.
type checker struct {
	rules              *mutationrulesv3.HeaderMutationRules // may be nil: all defaults
	allowExpr, denyExp *regexp.Regexp
}

func newChecker(rules *mutationrulesv3.HeaderMutationRules) (*checker, error) {
	c := &checker{rules: rules}
	var err error
	if c.allowExpr, err = compileFull(rules.GetAllowExpression(), "mutation_rules.allow_expression"); err != nil {
		return nil, err
	}
	if c.denyExp, err = compileFull(rules.GetDisallowExpression(), "mutation_rules.disallow_expression"); err != nil {
		return nil, err
	}
	return c, nil
}

// compileFull compiles an Envoy RegexMatcher. Envoy's RE2 matcher matches the
// whole string (RE2::FullMatch), hence the anchors; Go's regexp is RE2 syntax.
func compileFull(m *matcherv3.RegexMatcher, field string) (*regexp.Regexp, error) {
	if m == nil {
		return nil, nil
	}
	re, err := regexp.Compile(`^(?:` + m.GetRegex() + `)$`)
	if err != nil {
		return nil, fmt.Errorf("envoystandin: %s %q does not compile: %w", field, m.GetRegex(), err)
	}
	return re, nil
}

func (c *checker) check(op checkOp, name, value string) checkResult {
	if c.isAllowed(op, name) && (op == opRemove || isValidValue(name, value)) {
		return checkOK
	}
	if c.rules.GetDisallowIsError().GetValue() {
		return checkFail
	}
	return checkIgnore
}

func (c *checker) isAllowed(op checkOp, name string) bool {
	// HeaderUtility::isModifiableHeader: never remove "host" or any ":" header.
	if op == opRemove && (strings.HasPrefix(name, ":") || name == "host") {
		return false
	}
	if c.denyExp != nil && c.denyExp.MatchString(name) {
		return false
	}
	if c.allowExpr != nil && c.allowExpr.MatchString(name) {
		return true
	}
	if c.rules.GetDisallowAll().GetValue() {
		return false
	}
	if !c.rules.GetAllowAllRouting().GetValue() && isRoutingHeader(name) {
		return false
	}
	// System headers take one value, so appending to them is never allowed.
	if strings.HasPrefix(name, ":") && (op == opAppend || c.rules.GetDisallowSystem().GetValue()) {
		return false
	}
	// Bootstrap header_prefix defaults to "x-envoy"; Envoy compares the bare
	// prefix, so "x-envoyfoo" counts too.
	if !c.rules.GetAllowEnvoy().GetValue() && strings.HasPrefix(name, "x-envoy") {
		return false
	}
	return true
}

func isRoutingHeader(name string) bool {
	switch name {
	case "host", ":authority", ":method", ":scheme":
		return true
	}
	return false
}

// isValidValue is Checker::isValidValue: values Envoy itself could not use.
func isValidValue(name, value string) bool {
	if !strings.HasPrefix(name, ":") && !headerValueIsValid(value) {
		return false
	}
	switch name {
	case "host", ":authority":
		return authorityIsValid(value)
	case ":scheme":
		return strings.EqualFold(value, "http") || strings.EqualFold(value, "https")
	case ":status":
		n, err := strconv.ParseUint(value, 10, 32)
		return err == nil && n >= 200
	}
	return true
}

// headerNameIsValid is HeaderUtility::headerNameIsValid: an HTTP token
// (RFC 9110 §5.6.2), upper case allowed; for a pseudo-header name the
// HTTP/2 rules (lower case only) apply to what follows the colon. An empty
// name passes Envoy's loop but can never be set meaningfully; the stand-in
// treats it as invalid.
func headerNameIsValid(name string) bool {
	pseudo := strings.HasPrefix(name, ":")
	if pseudo {
		name = name[1:]
	}
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !isTchar(ch) || (pseudo && 'A' <= ch && ch <= 'Z') {
			return false
		}
	}
	return true
}

func isTchar(ch byte) bool {
	switch {
	case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0
}

// headerValueIsValid is HeaderUtility::headerValueIsValid (quiche
// IsValidHeaderValue with obs-text allowed): HTAB, visible ASCII, space and
// bytes >= 0x80; no NUL, CR, LF or other control bytes.
func headerValueIsValid(v string) bool {
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch == '\t' || (ch >= 0x20 && ch != 0x7f) {
			continue
		}
		return false
	}
	return true
}

// authorityIsValid approximates HeaderUtility::authorityIsValid
// (nghttp2_check_authority): RFC 3986 authority characters.
func authorityIsValid(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@[]%", ch) >= 0:
		default:
			return false
		}
	}
	return true
}
