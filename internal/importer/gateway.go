package importer

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
)

// importHTTPRoute reads the CORS filters of an HTTPRoute's rules. The policy
// attaches to the route with targetRefs, so it follows the route's own
// hostnames and paths (and, for a named rule, that rule only) instead of an
// approximation of them.
func importHTTPRoute(o Object) ([]*conv, error) {
	rules := list(o.Doc, "spec", "rules")
	type found struct {
		cors  map[string]any
		rule  map[string]any
		index int    // of the rule
		field string // of the filter's cors block
	}
	var fs []found
	for i, r := range rules {
		for j, f := range list(r, "filters") {
			if t, _ := get(f, "type").(string); t == "CORS" {
				fs = append(fs, found{mapOf(get(f, "cors")), mapOf(r), i, fmt.Sprintf("spec.rules[%d].filters[%d].cors", i, j)})
			}
		}
	}
	if len(fs) == 0 {
		return nil, nil
	}
	// Convert each filter first: rules whose filters mean the same policy
	// (compared after conversion, so spellings that differ but behave alike
	// count as one) attach as the whole route; a rule without a CORS filter
	// must not gain one, so then each rule needs its own, named, policy.
	var convs, active []*conv
	for _, f := range fs {
		ruleName, _ := f.rule["name"].(string)
		label := fmt.Sprintf("rules[%d]", f.index)
		if ruleName != "" {
			label += fmt.Sprintf(" %q", ruleName)
		}
		c := newConv(o, o.name())
		if len(rules) > 1 {
			c.rule = label
		}
		c.field = f.field
		c.gatewayCORS(f.cors)
		c.gatewayMatches(f.rule, label)
		if len(c.spec.AllowOrigins) == 0 && len(c.spec.AllowOriginRegexes) == 0 {
			c.warn("has a CORS filter that allows no origin, so browsers got no CORS headers from it",
				"imports nothing for it", "list the origins in allowOrigins")
			c.skip = true
		} else {
			active = append(active, c)
		}
		convs = append(convs, c)
	}
	if len(active) == 0 {
		return convs, nil
	}
	same := len(active) == len(rules)
	for _, c := range active[1:] {
		if !reflect.DeepEqual(c.spec, active[0].spec) {
			same = false
		}
	}
	ref := func(section string) gwapiv1.LocalPolicyTargetReferenceWithSectionName {
		r := gwapiv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
			Group: v1alpha1.GatewayGroup, Kind: v1alpha1.KindHTTPRoute, Name: gwapiv1.ObjectName(o.name())}}
		if section != "" {
			sn := gwapiv1.SectionName(section)
			r.SectionName = &sn
		}
		return r
	}
	if same {
		// One policy for the route; every rule's warnings still say which
		// rule they are about.
		c := active[0]
		for _, x := range active[1:] {
			c.warnings = append(c.warnings, x.warnings...)
		}
		c.spec.TargetRefs = append(c.spec.TargetRefs, ref(""))
		return []*conv{c}, nil
	}
	for _, c := range active {
		ruleName, _ := fs[slices.Index(convs, c)].rule["name"].(string)
		if ruleName == "" {
			c.warn("applies different CORS filters to different rules (or a filter to some rules only), and this rule has no name",
				"attaches to a route or to a named rule (targetRefs sectionName), so it cannot select this rule alone", "name the rules (rules[].name) and import the route again")
			// Every rule's warnings still count: audit reports them.
			return convs, errors.New("its CORS filters differ between rules, or apply to some rules only, and the rules have no name: name the rules (rules[].name) and import again")
		}
		c.name = o.name() + "-" + ruleName
		c.spec.TargetRefs = append(c.spec.TargetRefs, ref(ruleName))
	}
	return convs, nil
}

// gatewayMatches warns about the matches corsgate does not serve for a rule
// (docs/gateway-api.md, "What a target covers"): Exact and RegularExpression
// paths, and methods other than OPTIONS.
func (c *conv) gatewayMatches(rule map[string]any, label string) {
	ms := list(rule, "matches")
	served := len(ms) == 0 // no matches: the prefix "/"
	var unserved []string
	for _, m := range ms {
		if meth, _ := get(m, "method").(string); meth != "" && meth != "OPTIONS" {
			c.warn(fmt.Sprintf("matches only %s requests in a rule with a CORS filter, so preflights (OPTIONS) never reached that filter", meth),
				"answers the preflights for the rule's paths", "")
		}
		pt, _ := get(m, "path", "type").(string)
		pv, _ := get(m, "path", "value").(string)
		switch pt {
		case "Exact", "RegularExpression":
			unserved = append(unserved, fmt.Sprintf("%s %q", pt, pv))
		default:
			served = true
		}
	}
	switch {
	case len(unserved) > 0 && !served:
		c.warn(fmt.Sprintf("answered CORS on %s, whose only path matches are %s", label, strings.Join(unserved, ", ")),
			"serves nothing for them (an Exact or RegularExpression path has no prefix form it could serve without widening): the policy is written but covers nothing there",
			"write PathPrefix matches in the rule where the subpaths belong to it")
	case len(unserved) > 0:
		c.warn(fmt.Sprintf("answered CORS on %s for the path matches %s too", label, strings.Join(unserved, ", ")),
			"serves only the rule's PathPrefix matches, not these", "write PathPrefix matches where the subpaths belong to the rule")
	}
}

func (c *conv) gatewayCORS(cf map[string]any) {
	credentials, _ := cf["allowCredentials"].(bool)
	anyOrigin := false
	var anyHost []string // the regexes for "https://*": not registrable holes but any origin of the scheme
	for _, v := range strList(cf, "allowOrigins") {
		switch {
		case v == "*":
			anyOrigin = true
		case strings.Contains(v, "://*") && !strings.Contains(v, "://*."):
			// "https://*", "http://*:8080": any host of the scheme (and port).
			scheme, rest, _ := strings.Cut(v, "://*")
			rx := regexp.QuoteMeta(strings.ToLower(scheme)+"://") + `[a-z0-9.-]+` + regexp.QuoteMeta(rest)
			if credentials {
				c.risk(AnyOriginWithCredentials, Critical, c.field+".allowOrigins",
					fmt.Sprintf("echoed every %s origin with Access-Control-Allow-Credentials: true (%q with allowCredentials)", scheme, v),
					"any page on the web served over "+scheme+" can read this route's responses with the visiting user's cookies",
					fmt.Sprintf("has no such wildcard and matches the regex %q, which it refuses with credentials (credentials are withdrawn)", rx),
					"list the origins that may send credentials")
			} else {
				c.warn(fmt.Sprintf("allowed %q, any host of the scheme", v), fmt.Sprintf("has no such wildcard and matches the regex %q", rx), "")
			}
			anyHost = append(anyHost, rx)
			c.spec.AllowOriginRegexes = addUnique(c.spec.AllowOriginRegexes, rx)
		default:
			if o := c.normOrigin(v, true, "the Gateway API"); o != "" {
				c.spec.AllowOrigins = addUnique(c.spec.AllowOrigins, o)
			}
		}
	}
	if anyOrigin {
		c.anyOrigin(credentials, true, c.field+".allowOrigins", `echoed every origin with Access-Control-Allow-Credentials: true ("*" with allowCredentials, as the Gateway API specifies it)`)
	} else {
		c.spec.AllowCredentials = credentials
		var rxs []string
		for _, rx := range c.spec.AllowOriginRegexes {
			if !slices.Contains(anyHost, rx) {
				rxs = append(rxs, rx)
			}
		}
		c.originRisks(c.field+".allowOrigins", c.spec.AllowOrigins, rxs, credentials)
	}
	if !anyOrigin || credentials {
		c.varies(c.field+".allowOrigins", "the gateway")
	}
	c.spec.AllowMethods = c.methods(strList(cf, "allowMethods"), "the route")
	if slices.Contains(c.spec.AllowMethods, "*") && credentials {
		c.risk(EchoWithCredentials, Low, c.field+".allowMethods", `allowed the methods "*" with credentials, which the Gateway API answers by echoing the requested method`,
			"a page of an allowed origin (or a script injected into one) may send any method with the user's cookies",
			`echoes any method too ("*" with credentials)`, "list the methods the application serves")
	}
	hs := c.headers(strList(cf, "allowHeaders"))
	if slices.Contains(hs, "*") {
		c.echoHeaders(credentials, c.field+".allowHeaders", `allowed the request headers "*", which Envoy-based gateways answer by echoing every requested header, Authorization included`)
		hs = []string{"*"}
	}
	c.spec.AllowHeaders = hs
	c.spec.ExposeHeaders = c.headers(strList(cf, "exposeHeaders"))
	switch v := cf["maxAge"].(type) {
	case float64:
		c.setMaxAge(int64(v), "maxAge")
	case int64:
		c.setMaxAge(v, "maxAge")
	default:
		c.warn("sent Access-Control-Max-Age: 5 (the Gateway API's default when maxAge is unset)", "sends maxAge: 5 too", "set maxAge to cache preflights longer")
		c.setMaxAge(5, "default")
	}
}

// importSecurityPolicy reads an Envoy Gateway SecurityPolicy's cors. The
// policy attaches to the same Gateways and HTTPRoutes (targetRefs).
func importSecurityPolicy(o Object) ([]*conv, error) {
	cf := mapOf(get(o.Doc, "spec", "cors"))
	if cf == nil {
		return nil, nil
	}
	c := newConv(o, o.name())
	c.field = "spec.cors"
	targets := list(o.Doc, "spec", "targetRefs")
	if t := get(o.Doc, "spec", "targetRef"); t != nil && len(targets) == 0 {
		targets = []any{t} // the deprecated singular form
	}
	// A target the import cannot write is an error, but only after the cors
	// block is read: its warnings (audit's findings) hold either way.
	var targetErr error
	if len(targets) == 0 {
		targetErr = errors.New("it names no targetRefs (targetSelectors cannot be imported): write the CorsPolicy's targetRefs by hand")
	}
	for _, t := range targets {
		kind, _ := get(t, "kind").(string)
		name, _ := get(t, "name").(string)
		if kind != v1alpha1.KindGateway && kind != v1alpha1.KindHTTPRoute {
			targetErr = fmt.Errorf("it targets the %s %q: a CorsPolicy attaches to Gateways and HTTPRoutes only", kind, name)
			break
		}
		ref := gwapiv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
			Group: v1alpha1.GatewayGroup, Kind: gwapiv1.Kind(kind), Name: gwapiv1.ObjectName(name)}}
		if sn, _ := get(t, "sectionName").(string); sn != "" {
			s := gwapiv1.SectionName(sn)
			ref.SectionName = &s
		}
		if kind == v1alpha1.KindGateway {
			c.warn(fmt.Sprintf("applied to every route of the Gateway %q", name), "applies to every route of that Gateway too", "")
		}
		c.spec.TargetRefs = append(c.spec.TargetRefs, ref)
	}

	credentials, _ := cf["allowCredentials"].(bool)
	anyOrigin := false
	for _, v := range list(cf, "allowOrigins") {
		s, ok := v.(string)
		if !ok {
			// v0.6's {type, value} form: refused, not guessed.
			c.warn(fmt.Sprintf("lists an origin in the old {type, value} form (%v)", v), "cannot read it and leaves it out", "write the origins as strings, as Envoy Gateway does today")
			continue
		}
		switch {
		case s == "*":
			anyOrigin = true
		case strings.Contains(s, "://*.") && strings.Count(s, "*") == 1:
			if o := c.normOrigin(s, true, "Envoy Gateway"); o != "" {
				c.spec.AllowOrigins = addUnique(c.spec.AllowOrigins, o)
			}
		case strings.Contains(s, "*"):
			// Envoy Gateway turns each "*" into ".*", matched whole.
			rx := strings.ReplaceAll(regexp.QuoteMeta(strings.ToLower(s)), `\*`, `.*`)
			c.warn(fmt.Sprintf("matched the origin pattern %q as the regex %q", s, rx), "matches the same anchored regex, in allowOriginRegexes", "list the origins in allowOrigins instead")
			c.spec.AllowOriginRegexes = addUnique(c.spec.AllowOriginRegexes, rx)
		default:
			if o := c.normOrigin(s, true, "Envoy Gateway"); o != "" {
				c.spec.AllowOrigins = addUnique(c.spec.AllowOrigins, o)
			}
		}
	}
	if anyOrigin {
		c.anyOrigin(credentials, true, "spec.cors.allowOrigins", `reflected every origin with Access-Control-Allow-Credentials: true ("*" with allowCredentials)`)
	} else {
		c.spec.AllowCredentials = credentials
		c.originRisks("spec.cors.allowOrigins", c.spec.AllowOrigins, c.spec.AllowOriginRegexes, credentials)
	}
	c.varies("spec.cors.allowOrigins", "Envoy (Envoy Gateway)")
	ms := c.methods(strList(cf, "allowMethods"), "Envoy Gateway")
	if slices.Contains(ms, "*") && len(ms) > 1 {
		c.warn(`listed "*" among other methods, which Envoy Gateway reads as "*" alone`, `allows every method with "*"`, "")
		ms = []string{"*"}
	}
	c.spec.AllowMethods = ms
	hs := c.headers(strList(cf, "allowHeaders"))
	if slices.Contains(hs, "*") {
		c.echoHeaders(credentials, "spec.cors.allowHeaders", `allowed the request headers "*" (alone or among others), which Envoy answers by echoing every requested header, Authorization included`)
		hs = []string{"*"}
	}
	c.spec.AllowHeaders = hs
	ex := c.headers(strList(cf, "exposeHeaders"))
	if slices.Contains(ex, "*") {
		ex = []string{"*"}
	}
	c.spec.ExposeHeaders = ex
	if s, ok := cf["maxAge"].(string); ok && s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			c.setMaxAge(int64(d/time.Second), "maxAge "+s)
		}
	}
	return []*conv{c}, targetErr
}
