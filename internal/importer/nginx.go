package importer

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ingress-nginx's CORS annotations and defaults (its annotations docs,
// "Enable CORS"; the cors annotation parser).
const (
	nginxPrefix         = "nginx.ingress.kubernetes.io/"
	nginxDefaultMethods = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
	nginxDefaultHeaders = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"
	nginxDefaultMaxAge  = 1728000
)

var (
	// The whole annotation, spaces removed; when it fails, nginx serves "*".
	nginxOriginsRe = regexp.MustCompile(`^((((([a-z]+://)?(\*\.)?[A-Za-z0-9\-.]*(:\d+)?,?)|null)+)|\*)?$`)
	// Each entry; one that fails is skipped.
	nginxOriginRe  = regexp.MustCompile(`^([a-z]+://(\*\.)?[A-Za-z0-9\-.]*(:\d+)?|\*|null)?$`)
	nginxMethodsRe = regexp.MustCompile(`^([A-Za-z]+,?\s?)+$`)
	nginxHeadersRe = regexp.MustCompile(`^([A-Za-z0-9\-\_]+,?\s?)+$`)
	nginxExposeRe  = regexp.MustCompile(`^(([A-Za-z0-9\-\_]+|\*),?\s?)+$`)
)

func importIngress(o Object) ([]*conv, error) {
	ann := map[string]string{}
	for k, v := range mapOf(get(o.Doc, "metadata", "annotations")) {
		if s, ok := v.(string); ok && strings.HasPrefix(k, nginxPrefix) {
			ann[strings.TrimPrefix(k, nginxPrefix)] = s
		}
	}
	hasCORS := false
	for k := range ann {
		if strings.HasPrefix(k, "cors-") {
			hasCORS = true
		}
	}
	c := newConv(o, o.name())
	enable, set := ann["enable-cors"]
	if !set {
		if hasCORS {
			c.warn("has cors-* annotations without nginx.ingress.kubernetes.io/enable-cors: \"true\", which ingress-nginx ignores (no CORS headers were sent)",
				"imports nothing for it", `set enable-cors: "true" on the Ingress and import it again`)
			c.skip = true
			return []*conv{c}, nil
		}
		return nil, nil
	}
	on, err := strconv.ParseBool(enable)
	if err != nil || !on {
		if err != nil {
			c.warn(fmt.Sprintf("has enable-cors: %q, which ingress-nginx does not read as true (it parses booleans as Go does), so CORS was off", enable),
				"imports nothing for it", `write enable-cors: "true" and import it again`)
			c.skip = true
			return []*conv{c}, nil
		}
		return nil, nil
	}

	// Credentials: default true, and an unreadable value is true too.
	credentials := true
	credsVal, credsSet := ann["cors-allow-credentials"]
	if credsSet {
		if b, err := strconv.ParseBool(credsVal); err == nil {
			credentials = b
		}
	}

	// Origins.
	raw, originsSet := ann["cors-allow-origin"]
	value := strings.ReplaceAll(raw, " ", "")
	star := !originsSet || value == ""
	if !star && !nginxOriginsRe.MatchString(value) {
		old := fmt.Sprintf("could not parse cors-allow-origin %q as a whole and so served Access-Control-Allow-Origin: * (its fallback for an invalid value)", raw)
		const new = "allows only the entries it can read, the stricter choice"
		const instead = `write allowOrigins: ["*"] (without allowCredentials) if any origin was meant`
		if credentials {
			c.risk(WildcardWithCredentials, Info, nginxField("cors-allow-origin"), old+" with Access-Control-Allow-Credentials: true",
				"nothing: browsers refuse a credentialed response with Access-Control-Allow-Origin: *, so credentialed requests fail: broken, not open", new, instead)
		} else {
			c.warn(old, new, instead)
		}
	}
	if !star {
		for e := range strings.SplitSeq(value, ",") {
			if e == "" {
				continue // empty entries are ignored
			}
			if e == "*" {
				star = true
				break
			}
			if !nginxOriginRe.MatchString(e) {
				c.warn(fmt.Sprintf("skipped the cors-allow-origin entry %q (not scheme://host[:port])", e), "leaves it out too", "write it as scheme://host[:port], such as \"https://app.example.com\"")
				continue
			}
			c.nginxOrigin(e, credentials)
		}
	}
	if star {
		old := "sent Access-Control-Allow-Origin: * (its default when cors-allow-origin is unset) with Access-Control-Allow-Credentials: true, so browsers refused every credentialed request"
		if originsSet && value != "" {
			old = "sent Access-Control-Allow-Origin: * with Access-Control-Allow-Credentials: true, so browsers refused every credentialed request"
		}
		c.anyOrigin(credentials, false, nginxField("cors-allow-origin"), old)
	} else {
		c.spec.AllowCredentials = credentials
		if credentials && !credsSet && (len(c.spec.AllowOrigins) > 0 || len(c.spec.AllowOriginRegexes) > 0) {
			c.warn("allowed credentials by default (cors-allow-credentials unset means true)",
				"sends Access-Control-Allow-Credentials: true for the listed origins, as nginx did",
				"set allowCredentials: false if the pages never send cookies")
		}
		if len(c.spec.AllowOrigins) == 0 && len(c.spec.AllowOriginRegexes) == 0 {
			c.warn("sent no CORS headers at all: every cors-allow-origin entry was skipped", "imports nothing for it", "write valid origins in cors-allow-origin")
			c.skip = true
			return []*conv{c}, nil
		}
	}

	// Methods: an unreadable value (such as "*") becomes the defaults.
	methods, mSet := ann["cors-allow-methods"]
	if !mSet || !nginxMethodsRe.MatchString(methods) {
		if mSet {
			c.warn(fmt.Sprintf("could not read cors-allow-methods %q (it has no wildcard) and answered with its default methods", methods),
				"allows those default methods", "list the methods in allowMethods")
		} else {
			c.warn("answered preflights with its default methods ("+nginxDefaultMethods+")", "allows the same methods, checked on each preflight", "list only the methods the application uses in allowMethods")
		}
		methods = nginxDefaultMethods
	}
	c.spec.AllowMethods = c.methods(strings.Split(methods, ","), "ingress-nginx")

	headers, hSet := ann["cors-allow-headers"]
	if !hSet || !nginxHeadersRe.MatchString(headers) || strings.Contains(headers, "\n") {
		if hSet {
			c.warn(fmt.Sprintf("could not read cors-allow-headers %q (it has no wildcard) and answered with its default headers", headers),
				"allows those default headers", "list the headers in allowHeaders")
		} else {
			c.warn("answered preflights with its default request headers ("+nginxDefaultHeaders+"), Authorization among them", "allows the same headers", "list only the headers the application uses in allowHeaders")
		}
		headers = nginxDefaultHeaders
	}
	c.spec.AllowHeaders = c.headers(strings.Split(headers, ","))

	if expose, ok := ann["cors-expose-headers"]; ok && nginxExposeRe.MatchString(expose) {
		names := c.headers(strings.Split(expose, ","))
		var named []string
		hasStar := false
		for _, n := range names {
			if n == "*" {
				hasStar = true
				continue
			}
			named = append(named, n)
		}
		switch {
		case hasStar && c.spec.AllowCredentials:
			c.warn(`sent Access-Control-Expose-Headers with "*", which browsers read literally on credentialed requests, so only the named headers were readable`,
				"exposes the named headers only", `write exposeHeaders: ["*"] to expose every response header (corsgate lists them for credentialed requests)`)
			c.spec.ExposeHeaders = named
		case hasStar:
			if len(named) > 0 {
				c.warn(fmt.Sprintf("sent Access-Control-Expose-Headers: %s", expose), `takes "*" alone (every header, as browsers read it without credentials)`, "")
			}
			c.spec.ExposeHeaders = []string{"*"}
		default:
			c.spec.ExposeHeaders = named
		}
	}

	maxAge := int64(nginxDefaultMaxAge)
	what := "ingress-nginx's default"
	if v, ok := ann["cors-max-age"]; ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
			maxAge, what = n, "cors-max-age"
		}
	}
	c.setMaxAge(maxAge, what)

	const checks = "checks the method and headers of each preflight and answers 403 for one it does not allow (unmatchedPreflight: Reject); OPTIONS without Access-Control-Request-Method goes to the backend"
	if star {
		// With "*" every origin is allowed, so nginx answers every OPTIONS
		// itself: no preflight ever reached the backend.
		c.warn("answered every OPTIONS request with 204 at the edge, whatever method and headers it asked for (with \"*\" no preflight reached the backend)",
			checks, "write unmatchedPreflight: Forward if the backend must see the preflights corsgate does not allow")
	} else {
		c.warn("answered every OPTIONS request from an allowed origin with 204 at the edge, whatever method and headers it asked for", checks,
			"write unmatchedPreflight: Forward if the backend answers the preflights corsgate does not allow")
		c.risk(PreflightForwarded, Low, nginxField("cors-allow-origin"),
			"passed preflights from origins it did not list to the backend, and any Access-Control-* headers the backend answered with to the browser",
			"the backend's own CORS answer, if it has one, decides for every unlisted origin: an attacker's page gets whatever the backend grants (nothing, if it sends no CORS headers)",
			"answers them 403 at the edge (unmatchedPreflight: Reject)", "make sure the backend sends no Access-Control-* headers of its own")
		c.varies(nginxField("cors-allow-origin"), "ingress-nginx")
	}
	c.originRisks(nginxField("cors-allow-origin"), c.spec.AllowOrigins, c.spec.AllowOriginRegexes, c.spec.AllowCredentials)
	if snip := ann["configuration-snippet"]; strings.Contains(strings.ToLower(snip), "access-control-allow-private-network") {
		c.risk(PrivateNetwork, Medium, nginxField("configuration-snippet"),
			"sent Access-Control-Allow-Private-Network from a configuration-snippet",
			"pages of the allowed origins, on the public internet, may reach this service inside the private network (Private Network Access)",
			"answers Private Network Access preflights only with allowPrivateNetwork: true, which the import does not set", "remove the header from the snippet unless public pages must reach the service")
	}

	if err := c.nginxScope(o, ann); err != nil {
		return []*conv{c}, err
	}
	return []*conv{c}, nil
}

// nginxOrigin adds one readable origin entry. nginx matches origins
// case-insensitively, anchored at the end only, and its "*." stands for
// exactly one DNS label.
func (c *conv) nginxOrigin(e string, credentials bool) {
	if e == "null" {
		if credentials {
			c.risk(NullOrigin, Critical, nginxField("cors-allow-origin"),
				`allowed the origin "null" (with credentials), matched as a suffix, so any origin ending in "null" (http://devnull) matched too`,
				"any page can send Origin: null from a sandboxed iframe and read the responses with the user's cookies",
				`never allows "null" with credentials (any sandboxed iframe sends it), so it is left out`, `remove "null" from cors-allow-origin`)
			return
		}
		c.risk(NullOrigin, Low, nginxField("cors-allow-origin"),
			`allowed the origin "null", matched as a suffix, so any origin ending in "null" (http://devnull) matched too`,
			"any page can send Origin: null from a sandboxed iframe and read the responses without cookies (as with \"*\")",
			`allows exactly "null" (with a warning: any sandboxed iframe or file sends it)`, `remove "null" from cors-allow-origin`)
		c.spec.AllowOrigins = addUnique(c.spec.AllowOrigins, "null")
		return
	}
	o := c.normOrigin(e, true, "ingress-nginx")
	if o == "" {
		return
	}
	scheme, hostport, _ := strings.Cut(o, "://")
	if rest, ok := strings.CutPrefix(hostport, "*."); ok {
		rx := regexp.QuoteMeta(scheme+"://") + `[a-z0-9-]+\.` + regexp.QuoteMeta(rest)
		c.warn(fmt.Sprintf("matched %q as exactly one subdomain label", e),
			fmt.Sprintf("keeps one label with allowOriginRegexes %q (its wildcard %q would match one or more)", rx, o),
			fmt.Sprintf("write allowOrigins: [%q] if deeper subdomains are welcome", o))
		c.spec.AllowOriginRegexes = addUnique(c.spec.AllowOriginRegexes, rx)
		return
	}
	c.spec.AllowOrigins = addUnique(c.spec.AllowOrigins, o)
}

// nginxScope reads hosts and paths from the Ingress rules.
func (c *conv) nginxScope(o Object, ann map[string]string) error {
	rules := list(o.Doc, "spec", "rules")
	if len(rules) == 0 {
		if get(o.Doc, "spec", "defaultBackend") != nil {
			if c.spec.AllowCredentials {
				// A credentialed policy for every host would reach further
				// than nginx's catch-all server (which only gets the hosts
				// no other Ingress names): refuse rather than widen.
				c.warn("has only a defaultBackend, so ingress-nginx applied the annotations, with credentials, to its catch-all server (the hosts no other Ingress names)",
					"cannot select \"every host no other policy names\"; a policy for every host would send credentials for hosts nginx never did, so nothing is imported", "write a CorsPolicy with the hosts this traffic uses in hosts")
				return errors.New("it has only a defaultBackend and allows credentials: a credentialed policy for every host would be looser than nginx's catch-all server; write the hosts by hand")
			}
			c.warn("has only a defaultBackend, so ingress-nginx applied the annotations to its catch-all server", "selects every host (hosts left empty)", "write the hosts this traffic uses in hosts")
		}
		return nil
	}
	regexPaths := ann["use-regex"] == "true" || ann["rewrite-target"] != ""
	hostPaths := map[string]map[string]bool{}
	allHosts := false
	for _, r := range rules {
		host, _ := get(r, "host").(string)
		if host == "" {
			allHosts = true
		} else {
			if strings.HasPrefix(host, "*.") {
				c.warn(fmt.Sprintf("matched the host %q as exactly one label (Ingress wildcards are one label deep)", host),
					"matches it one or more labels deep: corsgate has no one-label host wildcard", "list the hosts one by one if deeper ones must not be covered")
			}
			c.spec.Hosts = addUnique(c.spec.Hosts, strings.ToLower(host))
		}
		paths := map[string]bool{}
		for _, p := range list(r, "http", "paths") {
			path, _ := get(p, "path").(string)
			pt, _ := get(p, "pathType").(string)
			switch {
			case regexPaths:
				pre := prefixOfPath(path)
				if pre != path {
					c.warn(fmt.Sprintf("matched the path %q as a case-insensitive regex (use-regex or rewrite-target)", path),
						fmt.Sprintf("selects the path prefix %q, segment by segment", pre), "write the path prefixes the regex stands for")
				} else {
					c.warn(fmt.Sprintf("matched the path %q as a case-insensitive character prefix (use-regex or rewrite-target), so %sX matched too", path, path),
						"matches it segment by segment, case-sensitively", "write the other path prefixes too")
				}
				path = pre
			case pt == "Exact":
				c.warn(fmt.Sprintf("matched the path %q exactly", path), "has no exact paths and selects it as a prefix, with the paths under it", "")
			}
			if path == "" {
				path = "/"
			}
			paths[path] = true
			c.addPrefix(path)
		}
		if len(paths) == 0 {
			paths["/"] = true
			c.addPrefix("/")
		}
		hostPaths[host] = paths
	}
	if allHosts {
		c.warn("has a rule without host, served for every host", "selects every host (hosts left empty)", "write the hosts in hosts")
		c.spec.Hosts = nil
	}
	// A policy selects every host with every prefix; the rules may pair them
	// more narrowly.
	var first string
	for i, h := range sortedKeys(boolKeys(hostPaths)) {
		ps := strings.Join(sortedKeys(hostPaths[h]), ",")
		if i == 0 {
			first = ps
		} else if ps != first {
			c.warn("pairs different paths with different hosts in its rules", "selects every listed path on every listed host", "split the policy in one per host")
			break
		}
	}
	c.tidyScope()
	return nil
}

func nginxField(annotation string) string {
	return `metadata.annotations["` + nginxPrefix + annotation + `"]`
}

func boolKeys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func mapOf(v any) map[string]any { m, _ := v.(map[string]any); return m }
