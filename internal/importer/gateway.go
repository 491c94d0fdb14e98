package importer

import (
	"errors"
	"fmt"
	"regexp"
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
		cors map[string]any
		rule map[string]any
	}
	var fs []found
	for _, r := range rules {
		for _, f := range list(r, "filters") {
			if t, _ := get(f, "type").(string); t == "CORS" {
				fs = append(fs, found{mapOf(get(f, "cors")), mapOf(r)})
			}
		}
	}
	if len(fs) == 0 {
		return nil, nil
	}
	same := true
	for _, f := range fs[1:] {
		if fmt.Sprint(f.cors) != fmt.Sprint(fs[0].cors) {
			same = false
		}
	}
	whole := same && len(fs) == len(rules)
	var out []*conv
	for i, f := range fs {
		if whole && i > 0 {
			break
		}
		ruleName, _ := f.rule["name"].(string)
		name := o.name()
		if !whole {
			if ruleName == "" {
				c := newConv(o, name)
				c.warn("applies its CORS filter to some of its rules only, and those rules have no name",
					"attaches to a route or to a named rule (targetRefs sectionName), so it cannot select these rules", "name the rules (rules[].name) and import the route again")
				return []*conv{c}, errors.New("its CORS filters apply to unnamed rules among others: name the rules (rules[].name) and import again")
			}
			name += "-" + strings.ToLower(ruleName)
		}
		c := newConv(o, name)
		ref := gwapiv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
			Group: v1alpha1.GatewayGroup, Kind: v1alpha1.KindHTTPRoute, Name: gwapiv1.ObjectName(o.name())}}
		if !whole {
			sn := gwapiv1.SectionName(ruleName)
			ref.SectionName = &sn
		}
		c.spec.TargetRefs = append(c.spec.TargetRefs, ref)
		c.gatewayCORS(f.cors)
		for _, m := range list(f.rule, "matches") {
			if meth, _ := get(m, "method").(string); meth != "" && meth != "OPTIONS" {
				c.warn(fmt.Sprintf("matches only %s requests in a rule with a CORS filter, so preflights (OPTIONS) never reached that filter", meth),
					"answers the preflights for the rule's paths", "")
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func (c *conv) gatewayCORS(cf map[string]any) {
	credentials, _ := cf["allowCredentials"].(bool)
	anyOrigin := false
	for _, v := range strList(cf, "allowOrigins") {
		switch {
		case v == "*":
			anyOrigin = true
		case strings.Contains(v, "://*") && !strings.Contains(v, "://*."):
			// "https://*", "http://*:8080": any host of the scheme (and port).
			scheme, rest, _ := strings.Cut(v, "://*")
			rx := regexp.QuoteMeta(strings.ToLower(scheme)+"://") + `[a-z0-9.-]+` + regexp.QuoteMeta(rest)
			c.warn(fmt.Sprintf("allowed %q, any host of the scheme", v), fmt.Sprintf("has no such wildcard and matches the regex %q", rx), "")
			c.spec.AllowOriginRegexes = addUnique(c.spec.AllowOriginRegexes, rx)
		default:
			if o := c.normOrigin(v, true, "the Gateway API"); o != "" {
				c.spec.AllowOrigins = addUnique(c.spec.AllowOrigins, o)
			}
		}
	}
	if anyOrigin {
		c.anyOrigin(credentials, `echoed every origin with Access-Control-Allow-Credentials: true ("*" with allowCredentials, as the Gateway API specifies it)`)
	} else {
		c.spec.AllowCredentials = credentials
	}
	c.spec.AllowMethods = c.methods(strList(cf, "allowMethods"), "the route")
	hs := c.headers(strList(cf, "allowHeaders"))
	if slicesContains(hs, "*") {
		c.warn(`allowed the request headers "*", which Envoy-based gateways answer by echoing every requested header, Authorization included`,
			`allows every header except Authorization, as the Fetch standard reads "*"`, `write allowHeaders: ["*", "authorization"] if requests send Authorization`)
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
	targets := list(o.Doc, "spec", "targetRefs")
	if t := get(o.Doc, "spec", "targetRef"); t != nil && len(targets) == 0 {
		targets = []any{t} // the deprecated singular form
	}
	if len(targets) == 0 {
		return []*conv{c}, errors.New("it names no targetRefs (targetSelectors cannot be imported): write the CorsPolicy's targetRefs by hand")
	}
	for _, t := range targets {
		kind, _ := get(t, "kind").(string)
		name, _ := get(t, "name").(string)
		if kind != v1alpha1.KindGateway && kind != v1alpha1.KindHTTPRoute {
			return []*conv{c}, fmt.Errorf("it targets the %s %q: a CorsPolicy attaches to Gateways and HTTPRoutes only", kind, name)
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
		c.anyOrigin(credentials, `reflected every origin with Access-Control-Allow-Credentials: true ("*" with allowCredentials)`)
	} else {
		c.spec.AllowCredentials = credentials
	}
	ms := c.methods(strList(cf, "allowMethods"), "Envoy Gateway")
	if slicesContains(ms, "*") && len(ms) > 1 {
		c.warn(`listed "*" among other methods, which Envoy Gateway reads as "*" alone`, `allows every method with "*"`, "")
		ms = []string{"*"}
	}
	c.spec.AllowMethods = ms
	hs := c.headers(strList(cf, "allowHeaders"))
	if slicesContains(hs, "*") {
		c.warn(`allowed the request headers "*" (alone or among others), which Envoy answers by echoing every requested header, Authorization included`,
			`allows every header except Authorization, as the Fetch standard reads "*"`, `write allowHeaders: ["*", "authorization"] if requests send Authorization`)
		hs = []string{"*"}
	}
	c.spec.AllowHeaders = hs
	ex := c.headers(strList(cf, "exposeHeaders"))
	if slicesContains(ex, "*") {
		ex = []string{"*"}
	}
	c.spec.ExposeHeaders = ex
	if s, ok := cf["maxAge"].(string); ok && s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			c.setMaxAge(int64(d/time.Second), "maxAge "+s)
		}
	}
	return []*conv{c}, nil
}
