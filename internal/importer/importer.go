// Package importer converts the CORS settings of other systems into
// CorsPolicy objects: ingress-nginx's enable-cors annotations, Istio's
// VirtualService corsPolicy, the Gateway API's HTTPRoute CORS filter and
// Envoy Gateway's SecurityPolicy cors.
//
// It keeps what browsers really saw under the old system and never re-opens
// a hole: where corsgate would behave differently, a Warning says what the
// old system did, what corsgate will do and what to write if the old
// behaviour was intended; where the old system allowed less than the import
// would, or corsgate cannot express it, the output is the stricter choice.
// Every policy it writes compiles with the server's compile path.
package importer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/cors"
)

// Object is one manifest, as read.
type Object struct {
	// File is where it came from ("-" for standard input, "cluster").
	File string
	Doc  map[string]any
}

func (o Object) str(path ...string) string { s, _ := get(o.Doc, path...).(string); return s }

func (o Object) kind() string       { return o.str("kind") }
func (o Object) apiVersion() string { return o.str("apiVersion") }
func (o Object) name() string       { return o.str("metadata", "name") }
func (o Object) namespace() string {
	if ns := o.str("metadata", "namespace"); ns != "" {
		return ns
	}
	return "default"
}

// GroupKind is the object's API group and kind ("" group when apiVersion
// names none, as the core group's "v1").
func (o Object) GroupKind() schema.GroupKind {
	group, _, ok := strings.Cut(o.apiVersion(), "/")
	if !ok {
		group = ""
	}
	return schema.GroupKind{Group: group, Kind: o.kind()}
}

// The kinds import reads.
var (
	ingressKind        = schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}
	virtualServiceKind = schema.GroupKind{Group: "networking.istio.io", Kind: "VirtualService"}
	httpRouteKind      = schema.GroupKind{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute"}
	securityPolicyKind = schema.GroupKind{Group: "gateway.envoyproxy.io", Kind: "SecurityPolicy"}
)

// Kinds are the kinds Import reads, in the order a cluster is listed for
// them (import --from-cluster; audit adds corsgate's own CorsPolicy).
var Kinds = []schema.GroupKind{ingressKind, virtualServiceKind, httpRouteKind, securityPolicyKind}

// Ref is how warnings and comments name the object: "Ingress shop/web".
func (o Object) Ref() string { return o.kind() + " " + o.namespace() + "/" + o.name() }

// Policy is one imported policy.
type Policy struct {
	// Source names the object it came from, e.g. "Ingress shop/web".
	Source string
	File   string
	Policy v1alpha1.CorsPolicy
}

// Warning is one semantic difference. A warning with a Class is also a
// finding of `corsgate audit`: the source object has that hole (or is broken
// that way), Attack says what an attacker's page gains, and Severity ranks it.
type Warning struct {
	// Source names the object, e.g. "Ingress shop/web".
	Source string `json:"source"`
	// Rule names the route or rule within it ("http[1] \"ratings\"",
	// "rules[0]"), when the object has several.
	Rule string `json:"rule,omitempty"`
	// Field is where in the source object the setting is, when known.
	Field string `json:"field,omitempty"`
	// Class and Severity are set on the warnings that are findings.
	Class    Class    `json:"class,omitempty"`
	Severity Severity `json:"severity,omitempty"`
	Attack   string   `json:"attack,omitempty"`
	// Old is what the old system did, New what corsgate will do, Instead
	// what to write if the old behaviour was intended ("" when corsgate
	// cannot express it, which Old and New then say). On a finding, Instead
	// is the fix to the source object.
	Old     string `json:"old"`
	New     string `json:"new"`
	Instead string `json:"instead,omitempty"`
}

// Where is the object and, when there is one, its route or rule.
func (w Warning) Where() string {
	if w.Rule == "" {
		return w.Source
	}
	return w.Source + " " + w.Rule
}

func (w Warning) String() string {
	s := w.Where() + ": "
	if w.Class != "" {
		s += "[" + string(w.Class) + "] "
	}
	s += fmt.Sprintf("%s; corsgate %s", w.Old, w.New)
	switch {
	case w.Instead == "":
	case w.Class != "":
		// A hole is not what anyone intended: Instead is its fix.
		s += "; fix: " + w.Instead
	default:
		s += "; if that was intended, " + w.Instead
	}
	return s
}

// Result is what an import produced.
type Result struct {
	Policies []Policy
	Warnings []Warning
	// Errors are objects that could not be imported, each with the reason.
	Errors []error
	// Skipped counts documents of kinds the importer does not read, and
	// objects of known kinds without CORS settings.
	Skipped int
}

// Read splits multi-document YAML (or JSON) into objects; a List's items are
// objects of their own.
func Read(r io.Reader, file string) ([]Object, error) {
	var out []Object
	err := ReadEach(r, file, func(o Object) { out = append(out, o) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadEach is Read, one object at a time: a caller that keeps only what it
// derives from each object holds one document in memory, not the file.
func ReadEach(r io.Reader, file string, each func(Object)) error {
	yr := yaml.NewYAMLReader(bufio.NewReader(r))
	for n := 1; ; n++ {
		doc, err := yr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", file, n, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var m map[string]any
		if err := sigsyaml.Unmarshal(doc, &m); err != nil {
			return fmt.Errorf("%s: document %d is not valid YAML: %w", file, n, err)
		}
		if m == nil {
			continue
		}
		if k, _ := m["kind"].(string); strings.HasSuffix(k, "List") {
			items, _ := m["items"].([]any)
			for _, it := range items {
				if im, ok := it.(map[string]any); ok {
					each(Object{File: file, Doc: im})
				}
			}
			continue
		}
		each(Object{File: file, Doc: m})
	}
}

// Import converts the objects it knows, in order.
func Import(objs []Object) *Result {
	res := &Result{}
	names := map[string]bool{}
	for _, o := range objs {
		var got []*conv
		var err error
		switch o.GroupKind() {
		case ingressKind:
			got, err = importIngress(o)
		case virtualServiceKind:
			got, err = importVirtualService(o)
		case httpRouteKind:
			got, err = importHTTPRoute(o)
		case securityPolicyKind:
			got, err = importSecurityPolicy(o)
		default:
			res.Skipped++
			continue
		}
		for _, c := range got {
			res.Warnings = append(res.Warnings, c.warnings...)
		}
		if err != nil {
			res.Errors = append(res.Errors, fmt.Errorf("%s (%s): %w", o.Ref(), o.File, err))
			continue
		}
		if len(got) == 0 {
			res.Skipped++
			continue
		}
		for _, c := range got {
			if c.skip {
				// The source had CORS switched off: nothing to import, and
				// nothing failed (the warning says why).
				res.Skipped++
				continue
			}
			p, err := c.finish()
			res.Warnings = append(res.Warnings, c.late...)
			if err != nil {
				res.Errors = append(res.Errors, fmt.Errorf("%s (%s): %w", o.Ref(), o.File, err))
				continue
			}
			if n := dnsName(p.Name); n != p.Name {
				res.Warnings = append(res.Warnings, Warning{Source: c.src, Rule: c.rule,
					Old: fmt.Sprintf("is named %q here, which is not a valid object name (lower-case letters, digits, '-' and '.')", p.Name),
					New: fmt.Sprintf("names the policy %q", n), Instead: "rename the policy (metadata.name) as you like"})
				p.Name = n
			}
			key := p.Key()
			if names[key] {
				p.Name += "-" + strings.ToLower(o.kind())
				key = p.Key()
			}
			for i := 2; names[key]; i++ {
				p.Name = fmt.Sprintf("%s-%d", strings.TrimRight(p.Name, "-0123456789"), i)
				key = p.Key()
			}
			names[key] = true
			res.Policies = append(res.Policies, Policy{Source: c.src, File: o.File, Policy: *p})
		}
	}
	return res
}

// dnsName makes name a valid object name (a DNS-1123 subdomain, as the API
// server requires): lower case, every other character a '-', no '-' or '.'
// at either end, at most 253 characters.
func dnsName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.':
			b.WriteRune(r)
		default:
			if s := b.String(); !strings.HasSuffix(s, "-") {
				b.WriteByte('-')
			}
		}
	}
	n := strings.Trim(b.String(), "-.")
	if len(n) > 253 {
		n = strings.Trim(n[:253], "-.")
	}
	if n == "" {
		n = "imported"
	}
	return n
}

// conv is one policy under construction.
type conv struct {
	src      string
	rule     string // the route or rule, for warnings (Warning.Rule)
	field    string // the source's CORS block, for findings (Warning.Field)
	name, ns string
	spec     v1alpha1.CorsPolicySpec
	warnings []Warning
	late     []Warning // from finish
	// skip: the source sent no CORS headers at all; a warning says why.
	skip      bool
	seenWarns map[string]bool
}

func newConv(o Object, name string) *conv {
	return &conv{src: o.Ref(), name: name, ns: o.namespace(), seenWarns: map[string]bool{}}
}

func (c *conv) warn(old, new, instead string) {
	w := Warning{Source: c.src, Rule: c.rule, Old: old, New: new, Instead: instead}
	if c.seenWarns[w.String()] {
		return
	}
	c.seenWarns[w.String()] = true
	c.warnings = append(c.warnings, w)
}

// finish checks the policy with the server's compile path and takes out, one
// by one and with a warning, what it refuses (always the stricter choice:
// an entry dropped, or credentials withdrawn). A policy left without an
// origin is an error: nothing safe is left to import.
func (c *conv) finish() (*v1alpha1.CorsPolicy, error) {
	p := &v1alpha1.CorsPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CorsPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: c.ns},
		Spec:       c.spec,
	}
	for range 64 {
		if len(p.Spec.AllowOrigins) == 0 && len(p.Spec.AllowOriginRegexes) == 0 {
			return nil, errors.New("no origin is left that corsgate can allow (see the warnings above); nothing was imported")
		}
		_, _, err := compile.Compile(p)
		if err == nil {
			return p, nil
		}
		fes := cors.FieldErrors(err)
		if len(fes) == 0 {
			return nil, err
		}
		fe := fes[0]
		field, idx := splitIndex(fe.Field)
		switch {
		case p.Spec.AllowCredentials && strings.Contains(strings.ToLower(fe.Message), "credentials") &&
			(strings.HasPrefix(field, "spec.allowOrigin")):
			p.Spec.AllowCredentials = false
			c.late = append(c.late, Warning{Source: c.src, Rule: c.rule, Old: fmt.Sprintf("allowed credentials together with %s %q", field, fe.Value),
				New:     "refuses that combination (" + compile.Message(err) + "), so the policy is imported without allowCredentials",
				Instead: "list the origins that may send credentials in allowOrigins and set allowCredentials: true"})
		case idx >= 0 && removeAt(&p.Spec, field, idx):
			c.late = append(c.late, Warning{Source: c.src, Rule: c.rule, Old: fmt.Sprintf("accepted %s %q", field, fe.Value),
				New:     "refuses it (" + fe.Message + ") and it is left out",
				Instead: "write it as the message says"})
		default:
			return nil, fmt.Errorf("the imported policy is not valid: %s", compile.Message(err))
		}
	}
	return nil, errors.New("the imported policy could not be made valid")
}

var indexRe = regexp.MustCompile(`^(.*)\[(\d+)\]$`)

func splitIndex(field string) (string, int) {
	m := indexRe.FindStringSubmatch(field)
	if m == nil {
		return field, -1
	}
	i, _ := strconv.Atoi(m[2])
	return m[1], i
}

func removeAt(s *v1alpha1.CorsPolicySpec, field string, i int) bool {
	var l *[]string
	switch field {
	case "spec.allowOrigins":
		l = &s.AllowOrigins
	case "spec.allowOriginRegexes":
		l = &s.AllowOriginRegexes
	case "spec.allowMethods":
		l = &s.AllowMethods
	case "spec.allowHeaders":
		l = &s.AllowHeaders
	case "spec.exposeHeaders":
		l = &s.ExposeHeaders
	case "spec.hosts":
		l = &s.Hosts
	case "spec.pathPrefixes":
		l = &s.PathPrefixes
	default:
		return false
	}
	if i >= len(*l) {
		return false
	}
	*l = slices.Delete(*l, i, i+1)
	return true
}

// get walks nested maps.
func get(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

func list(m any, path ...string) []any { l, _ := get(m, path...).([]any); return l }

func strList(m any, path ...string) []string {
	var out []string
	for _, v := range list(m, path...) {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// addUnique appends v unless present.
func addUnique(l []string, v string) []string {
	if slices.Contains(l, v) {
		return l
	}
	return append(l, v)
}

// maxAgeCap is the largest maxAge the import writes: Chromium's cap, above
// which corsgate lint warns (and lint --strict fails). The CRD allows up to
// 86400 (Firefox's cap); a shorter cache only means more preflights.
const maxAgeCap = 7200

func (c *conv) setMaxAge(seconds int64, what string) {
	if seconds > maxAgeCap {
		c.warn(fmt.Sprintf("sent Access-Control-Max-Age: %d (%s)", seconds, what),
			fmt.Sprintf("writes maxAge: %d, Chromium's cap (Firefox caches up to 86400 s; corsgate lint warns above %d), so browsers ask again sooner", maxAgeCap, maxAgeCap),
			"write a maxAge up to 86400 and accept lint's warning if Firefox should cache longer")
		seconds = maxAgeCap
	}
	v := int32(seconds)
	c.spec.MaxAge = &v
}

// safeMethods drops what corsgate refuses or what means nothing for CORS,
// each with a warning.
func (c *conv) methods(ms []string, system string) []string {
	var out []string
	for _, m := range ms {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		switch strings.ToUpper(m) {
		case "CONNECT", "TRACE", "TRACK":
			c.warn(fmt.Sprintf("%s listed the method %s", system, m), "refuses it (browsers never send it: a forbidden method) and it is left out", "")
			continue
		case "DELETE", "GET", "HEAD", "POST", "PUT":
			if m != strings.ToUpper(m) {
				// Browsers upper-case these methods (Fetch "normalize") and
				// compare the preflight answer case-sensitively, so the
				// lower-case spelling never allowed anything.
				c.warn(fmt.Sprintf("%s listed the method %q, which never matched: browsers send %q and compare the answer case-sensitively", system, m, strings.ToUpper(m)),
					"leaves it out", fmt.Sprintf("write %q", strings.ToUpper(m)))
				continue
			}
		case "OPTIONS":
			c.warn(fmt.Sprintf("%s listed OPTIONS among the allowed methods", system),
				"answers preflights (which are OPTIONS requests) without it, so it is left out",
				`add "OPTIONS" to allowMethods if scripts send fetch(url, {method: "OPTIONS"}) cross-origin`)
			continue
		}
		out = addUnique(out, m)
	}
	return out
}

func (c *conv) headers(hs []string) []string {
	var out []string
	for _, h := range hs {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		out = addUnique(out, h)
	}
	return out
}

// normOrigin lower-cases when the source matched case-insensitively, removes
// a default port and checks the result is an origin corsgate accepts. ""
// means drop it (with a warning already given).
func (c *conv) normOrigin(o string, foldCase bool, system string) string {
	orig := o
	if foldCase {
		o = strings.ToLower(o)
	} else if o != strings.ToLower(o) {
		c.warn(fmt.Sprintf("%s compared the origin %q byte for byte, and browsers send origins in lower case, so it never matched", system, orig),
			"leaves it out rather than allow the lower-case origin it never allowed", fmt.Sprintf("write %q", strings.ToLower(o)))
		return ""
	}
	if strings.HasPrefix(o, "https://") && strings.HasSuffix(o, ":443") || strings.HasPrefix(o, "http://") && strings.HasSuffix(o, ":80") {
		c.warn(fmt.Sprintf("listed %q with its default port, which browsers never send, so it never matched", orig),
			"leaves it out rather than allow the origin without the port", fmt.Sprintf("write %q", o[:strings.LastIndexByte(o, ':')]))
		return ""
	}
	if o == "*" {
		return o
	}
	if _, _, err := cors.Compile(cors.Config{AllowOrigins: []string{o}}); err != nil {
		c.warn(fmt.Sprintf("accepted %q as an origin", orig), "refuses it ("+compile.Message(err)+") and it is left out", "write a serialized origin, such as \"https://app.example.com\"")
		return ""
	}
	return o
}

// anyOrigin sets "*", withdrawing credentials with a warning when the source
// combined them. reflected says what the source did with that combination:
// reflected every origin with credentials (Envoy-based systems, the Gateway
// API: the worst hole there is) or sent "*" literally, which browsers refuse
// for credentialed requests (ingress-nginx: broken, not open).
func (c *conv) anyOrigin(credentials, reflected bool, field, old string) {
	c.spec.AllowOrigins = []string{"*"}
	c.spec.AllowOriginRegexes = nil
	if !credentials {
		return
	}
	c.spec.AllowCredentials = false
	const instead = "list the origins that may send credentials in allowOrigins and set allowCredentials: true"
	const new = `refuses "*" with credentials, so the policy allows every origin without allowCredentials`
	if reflected {
		c.risk(AnyOriginWithCredentials, Critical, field, old,
			"any page on the web can read this API's responses with the visiting user's cookies: their data, as they see it",
			new, instead)
		return
	}
	c.risk(WildcardWithCredentials, Info, field, old,
		"nothing: browsers refuse a credentialed response with Access-Control-Allow-Origin: *, so this is broken, not open (pages without cookies read it, as with any \"*\")",
		new, instead)
}

// varies reports that the source reflected the request's origin without
// Vary: Origin (none of the systems import reads sends it).
func (c *conv) varies(field, system string) {
	old := system + " answered with the request's origin in Access-Control-Allow-Origin and sent no Vary: Origin"
	if system == "the gateway" {
		old = "the Gateway API has the gateway answer with the request's origin and does not require Vary: Origin (Envoy-based gateways send none)"
	}
	c.risk(VaryOriginMissing, Info, field, old,
		"nothing to read: a browser or shared cache that stored one origin's answer hands it to another origin (or a request without Origin), whose request then fails: broken, not open",
		"sends Vary: Origin on every answer that depends on the origin", "")
}

// prefixOfPath is the literal part of a regex path, up to its first
// metacharacter, as a segment prefix.
func prefixOfPath(p string) string {
	i := strings.IndexAny(p, `\.+*?()|[]{}^$`)
	if i >= 0 {
		p = p[:i]
	}
	if j := strings.LastIndexByte(p, '/'); j >= 0 && i >= 0 {
		p = p[:j]
	}
	if p == "" {
		return "/"
	}
	return p
}

func (c *conv) addPrefix(p string) {
	if p == "" {
		p = "/"
	}
	c.spec.PathPrefixes = addUnique(c.spec.PathPrefixes, p)
}

// tidyScope drops "/" from path prefixes when it is the only one (it is the
// default), and sorts nothing: the order is the source's.
func (c *conv) tidyScope() {
	if len(c.spec.PathPrefixes) > 0 && slices.Contains(c.spec.PathPrefixes, "/") {
		// "/" covers every path: the other prefixes add nothing.
		c.spec.PathPrefixes = nil
	}
}

// sortedKeys is for deterministic output.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
