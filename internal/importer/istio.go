package importer

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/corsgate/corsgate/internal/cors"
)

// importVirtualService reads each http route's corsPolicy. Routes with the
// same corsPolicy make one policy; different ones make one policy each,
// named <virtualservice>-<route name or index>.
func importVirtualService(o Object) ([]*conv, error) {
	routes := list(o.Doc, "spec", "http")
	type group struct {
		cp     map[string]any
		routes []map[string]any
		label  string
		rule   string // "http[0]" or `http[0] "name"`, for warnings
		field  string
	}
	var groups []*group
	for i, r := range routes {
		rm := mapOf(r)
		cp := mapOf(rm["corsPolicy"])
		if cp == nil {
			continue
		}
		key := fmt.Sprint(cp)
		var g *group
		for _, x := range groups {
			if fmt.Sprint(x.cp) == key {
				g = x
			}
		}
		if g == nil {
			label, _ := rm["name"].(string)
			rule := fmt.Sprintf("http[%d]", i)
			if label == "" {
				label = fmt.Sprint(i)
			} else {
				rule += fmt.Sprintf(" %q", label)
			}
			g = &group{cp: cp, label: label, rule: rule, field: fmt.Sprintf("spec.http[%d].corsPolicy", i)}
			groups = append(groups, g)
		}
		g.routes = append(g.routes, rm)
	}
	var out []*conv
	for _, g := range groups {
		name := o.name()
		if len(groups) > 1 {
			name += "-" + g.label
		}
		c := newConv(o, name)
		if len(routes) > 1 {
			c.rule = g.rule
			if len(g.routes) > 1 {
				c.rule += fmt.Sprintf(" (and %d more with the same corsPolicy)", len(g.routes)-1)
			}
		}
		c.field = g.field
		c.istioCORS(g.cp)
		c.istioScope(o, g.routes, len(routes))
		out = append(out, c)
	}
	return out, nil
}

func (c *conv) istioCORS(cp map[string]any) {
	credentials, _ := cp["allowCredentials"].(bool)
	allOrigins := false
	matchers := list(cp, "allowOrigins")
	if len(matchers) == 0 {
		// The deprecated allowOrigin, read only without allowOrigins, each
		// entry an exact match.
		for _, s := range strList(cp, "allowOrigin") {
			matchers = append(matchers, map[string]any{"exact": s})
		}
	}
	for _, m := range matchers {
		mm := mapOf(m)
		switch {
		case mm["exact"] != nil:
			v, _ := mm["exact"].(string)
			if v == "*" {
				allOrigins = true
				continue
			}
			if o := c.normOrigin(v, false, "Istio"); o != "" {
				c.spec.AllowOrigins = addUnique(c.spec.AllowOrigins, o)
			}
		case mm["prefix"] != nil:
			v, _ := mm["prefix"].(string)
			if v == "*" || v == "" {
				// Envoy allows every origin when a matcher matches the
				// literal "*" (its allow-all rule), and "" prefixes all.
				c.warn(fmt.Sprintf("allowed every origin with the origin matcher prefix: %q (Envoy treats a matcher that matches \"*\" as allow-all)", v),
					`allows every origin with "*"`, "")
				allOrigins = true
				continue
			}
			c.istioPrefix(v, credentials)
		case mm["regex"] != nil:
			v, _ := mm["regex"].(string)
			if rx, err := regexp.Compile("^(?:" + v + ")$"); err == nil && rx.MatchString("*") {
				c.warn(fmt.Sprintf("allowed every origin with the origin regex %q, which matches \"*\" (Envoy's allow-all rule)", v), `allows every origin with "*"`, "")
				allOrigins = true
				continue
			}
			c.warn(fmt.Sprintf("matched origins with the regex %q (RE2, whole value)", v),
				"matches it whole too, in allowOriginRegexes, but only against well-formed origins", "")
			c.spec.AllowOriginRegexes = addUnique(c.spec.AllowOriginRegexes, v)
		}
	}
	if allOrigins {
		c.anyOrigin(credentials, true, c.field+".allowOrigins", "reflected every origin with Access-Control-Allow-Credentials: true (an allow-all origin matcher with allowCredentials)")
	} else {
		c.spec.AllowCredentials = credentials
		c.originRisks(c.field+".allowOrigins", c.spec.AllowOrigins, c.spec.AllowOriginRegexes, credentials)
	}
	c.varies(c.field+".allowOrigins", "Envoy (Istio)")
	c.spec.AllowMethods = c.methods(strList(cp, "allowMethods"), "Istio")
	if slices.Contains(c.spec.AllowMethods, "*") && len(c.spec.AllowMethods) > 1 {
		c.spec.AllowMethods = []string{"*"}
	}
	hs := c.headers(strList(cp, "allowHeaders"))
	if slices.Contains(hs, "*") {
		c.echoHeaders(credentials, c.field+".allowHeaders", `allowed the request headers "*", which Envoy answers by echoing every requested header, Authorization included`)
		hs = []string{"*"}
	}
	c.spec.AllowHeaders = hs
	ex := c.headers(strList(cp, "exposeHeaders"))
	if slices.Contains(ex, "*") {
		ex = []string{"*"}
	}
	c.spec.ExposeHeaders = ex
	if s, ok := cp["maxAge"].(string); ok && s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			c.setMaxAge(int64(d/time.Second), "maxAge "+s)
		}
	}
	switch up, _ := cp["unmatchedPreflights"].(string); up {
	case "IGNORE":
		// Envoy answered a preflight from an unmatched origin itself (200
		// without Access-Control-Allow-Origin): corsgate's Reject has the
		// same browser outcome.
	default:
		if allOrigins {
			// Every origin matches, so no preflight is ever "unmatched":
			// nothing reached the upstream that way.
			c.warn("answered every preflight itself (every origin matches), never checking the requested method or headers",
				"checks the method and headers of each preflight and answers 403 for one it does not allow", "list every method and header the pages send")
			break
		}
		c.risk(PreflightForwarded, Low, c.field+".unmatchedPreflights",
			"passed preflights from origins it did not allow to the upstream (unmatchedPreflights unset or FORWARD)",
			"the upstream's own CORS answer, if it has one, decides for every unlisted origin: an attacker's page gets whatever the upstream grants (nothing, if it sends no CORS headers)",
			"answers them 403 at the edge (unmatchedPreflight: Reject), and checks the method and headers of each preflight, which Envoy never did",
			"set unmatchedPreflights: IGNORE; in corsgate, write unmatchedPreflight: Forward only if the upstream answers those preflights itself (corsgate then forwards those failing on method or headers too)")
	}
}

// istioPrefix converts a prefix origin matcher. A prefix that is a whole
// scheme://host also matched longer hosts (https://app.example.com.evil.test)
// and any port: the import keeps the origin exactly. Any other prefix
// becomes an anchored regex.
func (c *conv) istioPrefix(v string, credentials bool) {
	rx := regexp.QuoteMeta(v) + ".*"
	field := c.field + ".allowOrigins"
	sev := Low
	if credentials {
		sev = High
	}
	hole := RegistrableHole(rx)
	if _, _, err := cors.Compile(cors.Config{AllowOrigins: []string{v}}); err == nil && v == strings.ToLower(v) {
		old := fmt.Sprintf("matched origins by the prefix %q, so %q and other ports matched too", v, v+".evil.example")
		new := fmt.Sprintf("allows exactly %q", v)
		instead := fmt.Sprintf(`add allowOriginRegexes ["%s(:[0-9]+)?"] if other ports were meant`, regexp.QuoteMeta(v))
		if hole != "" {
			c.risk(RegistrableOrigin, sev, field, old,
				fmt.Sprintf("whoever registers a domain like %s can read %s", hole, readWhat(credentials)), new,
				fmt.Sprintf("write {exact: %q} in the VirtualService; %s", v, instead))
		} else {
			c.warn(old, new, instead)
		}
		c.spec.AllowOrigins = addUnique(c.spec.AllowOrigins, v)
		return
	}
	old := fmt.Sprintf("matched origins by the plain prefix %q", v)
	new := fmt.Sprintf("matches the anchored regex %q, which anyone who registers a matching domain passes", rx)
	if hole != "" {
		c.risk(RegistrableOrigin, sev, field, old+fmt.Sprintf(", so %q matched too", hole),
			fmt.Sprintf("whoever registers a domain like %s can read %s", hole, readWhat(credentials)), new,
			"list the origins with exact matchers (and in allowOrigins) instead")
	} else {
		c.warn(old, new, "list the origins in allowOrigins instead")
	}
	c.spec.AllowOriginRegexes = addUnique(c.spec.AllowOriginRegexes, rx)
}

// echoHeaders reports a "*" header list that the source answered by echoing
// every requested header.
func (c *conv) echoHeaders(credentials bool, field, old string) {
	const new = `allows every header except Authorization, as the Fetch standard reads "*"`
	const instead = `write allowHeaders: ["*", "authorization"] if requests send Authorization`
	if !credentials {
		c.warn(old, new, instead)
		return
	}
	c.risk(EchoWithCredentials, Low, field, old+", with credentials",
		"a page of an allowed origin (or a script injected into one) may send any header, Authorization included, with the user's cookies; the preflight no longer limits what trusted origins send",
		new, "list the headers the application reads")
}

func (c *conv) istioScope(o Object, routes []map[string]any, nRoutes int) {
	ns := o.namespace()
	for _, h := range strList(o.Doc, "spec", "hosts") {
		switch {
		case h == "*":
			c.warn(`listed the host "*"`, "selects every host (hosts left empty)", "")
			c.spec.Hosts = nil
			goto paths
		case !strings.Contains(h, "."):
			full := h + "." + ns + ".svc.cluster.local"
			c.warn(fmt.Sprintf("expanded the short host %q with the VirtualService's namespace", h), fmt.Sprintf("selects %q", full), "")
			h = full
		}
		c.spec.Hosts = addUnique(c.spec.Hosts, strings.ToLower(h))
	}
paths:
	if len(strList(o.Doc, "spec", "gateways")) == 0 {
		c.warn("has no gateways, so its routes applied to the mesh's sidecars, not to an edge", "applies at the Envoy edge corsgate is attached to", "")
	}
	if nRoutes > 1 {
		c.warn("picked the first http route that matched, in order", "picks the longest path prefix", "")
	}
	allPaths := false
	for _, r := range routes {
		ms := list(r, "match")
		if len(ms) == 0 {
			allPaths = true
		}
		for _, m := range ms {
			mm := mapOf(m)
			for k := range mm {
				if k != "uri" && k != "name" {
					c.warn(fmt.Sprintf("matched requests by %s too", k), "cannot select by it and selects by host and path only: a wider selection", "")
				}
			}
			uri := mapOf(mm["uri"])
			switch {
			case uri == nil:
				allPaths = true
			case uri["prefix"] != nil:
				p, _ := uri["prefix"].(string)
				c.warn(fmt.Sprintf("matched the path prefix %q character by character (%sX too)", p, strings.TrimRight(p, "/")),
					"matches it segment by segment", "write the other path prefixes too")
				c.addPrefix(p)
			case uri["exact"] != nil:
				p, _ := uri["exact"].(string)
				c.warn(fmt.Sprintf("matched the path %q exactly", p), "has no exact paths and selects it as a prefix, with the paths under it", "")
				c.addPrefix(p)
			case uri["regex"] != nil:
				p, _ := uri["regex"].(string)
				pre := prefixOfPath(strings.TrimPrefix(p, "^"))
				c.warn(fmt.Sprintf("matched paths by the regex %q", p), fmt.Sprintf("selects the path prefix %q", pre), "write the path prefixes the regex stands for")
				c.addPrefix(pre)
			default:
				allPaths = true
			}
		}
		for k := range mapOf(get(r, "headers", "response", "set")) {
			if strings.EqualFold(k, "access-control-allow-private-network") {
				c.risk(PrivateNetwork, Medium, "headers.response.set",
					fmt.Sprintf("set %s on every response (headers.response.set)", k),
					"pages on the public internet may reach this service inside the private network (Private Network Access); with an allow-all origin matcher, any page",
					"removes every upstream and route Access-Control-* header under an enforcing policy and answers Private Network Access preflights only with allowPrivateNetwork: true", "remove the header from the VirtualService")
				continue
			}
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				c.warn(fmt.Sprintf("set %s on every response (headers.response.set)", k),
					"removes every upstream and route Access-Control-* header under an enforcing policy and sets its own", "remove the header from the VirtualService")
			}
		}
	}
	if allPaths {
		c.spec.PathPrefixes = nil
		return
	}
	c.tidyScope()
}
