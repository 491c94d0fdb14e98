package compile

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/table"
)

// Host ownership: with many teams writing CorsPolicies for one edge, the
// longest-prefix rule lets any namespace that claims another team's host win
// over that team's policy. Ownership closes the hole where the table is built:
// an object is served only if every (host, path prefix) it claims is covered by
// a CorsHostGrant that admits its namespace. The Kubernetes source passes
// Ownership.Admit to Builder.Admit; the file source has one trusted author and
// no grants, and passes nothing.

// Claim is one (host, path prefix) an object selects. Host "" is every host.
type Claim struct{ Host, Prefix string }

func (c Claim) String() string {
	if c.Host == "" {
		return fmt.Sprintf("every host under %q", c.Prefix)
	}
	return fmt.Sprintf("host %q under %q", c.Host, c.Prefix)
}

// NotGrantedError says which claims of an object no grant to its namespace
// covers, and what the platform team would create to admit them.
type NotGrantedError struct {
	Namespace string
	// Uncovered lists the claims no grant covers, in the object's order.
	Uncovered []Claim
	// Withdrawn is true when the object was admitted by an earlier build, so
	// a grant that covered it was deleted or narrowed, or the namespace's
	// labels stopped matching a grant's selector.
	Withdrawn bool
	// Attached: the claims are what the policy's targetRefs route, not its
	// hosts; Partial: the policy serves the rest of them.
	Attached, Partial bool
}

// maxClaimsNamed bounds the claims a message lists; the rest are counted.
const maxClaimsNamed = 5

func (e *NotGrantedError) Error() string {
	var b strings.Builder
	if e.Withdrawn {
		b.WriteString("The edge stopped serving this policy: a CorsHostGrant that covered it was deleted or narrowed, or the namespace's labels no longer match its namespaceSelector. ")
	}
	named := make([]string, 0, maxClaimsNamed)
	anyHost := false
	for _, c := range e.Uncovered {
		anyHost = anyHost || c.Host == ""
		if len(named) < maxClaimsNamed {
			named = append(named, c.String())
		}
	}
	more := ""
	if n := len(e.Uncovered) - len(named); n > 0 {
		more = fmt.Sprintf(" (and %d more)", n)
	}
	through := ""
	if e.Attached {
		through = " (what this policy's targetRefs route)"
	}
	if e.Partial {
		fmt.Fprintf(&b, "No CorsHostGrant lets namespace %q claim %s%s%s in whole, so the edge serves this policy only for the hosts and path prefixes granted to it. ",
			e.Namespace, strings.Join(named, ", "), more, through)
	} else {
		fmt.Fprintf(&b, "No CorsHostGrant lets namespace %q claim %s%s%s, so the edge serves nothing for this policy. ",
			e.Namespace, strings.Join(named, ", "), more, through)
	}
	if anyHost && e.Attached {
		fmt.Fprintf(&b, "A route and listener without hostnames serve every host, which only the platform team's own allHosts grant covers: give the HTTPRoute (or the listener) hostnames granted to this namespace (kubectl get corshostgrants), or, for a platform namespace, a cluster administrator can run: %s",
			applyCommand(allHostsGrant(e.Namespace)))
		return b.String()
	}
	if anyHost {
		fmt.Fprintf(&b, "A policy without hosts selects every host, which only the platform team's own allHosts grant covers: list this policy's hosts in spec.hosts, or, for a platform namespace, a cluster administrator can run: %s",
			applyCommand(allHostsGrant(e.Namespace)))
		return b.String()
	}
	fmt.Fprintf(&b, "Use hosts granted to this namespace (kubectl get corshostgrants), or ask a cluster administrator to run: %s", applyCommand(e.suggestedGrant()))
	return b.String()
}

// grantJSON is the shape of the grant a message suggests; JSON is YAML, so
// `kubectl apply -f -` reads it as it is.
type grantJSON struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec v1alpha1.CorsHostGrantSpec `json:"spec"`
}

func newGrantJSON(name string, spec v1alpha1.CorsHostGrantSpec) grantJSON {
	g := grantJSON{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CorsHostGrant", Spec: spec}
	g.Metadata.Name = name
	return g
}

func allHostsGrant(ns string) grantJSON {
	return newGrantJSON(v1alpha1.AllHostsGrantPrefix+"all-hosts", v1alpha1.CorsHostGrantSpec{Namespaces: []string{ns}, AllHosts: true})
}

// suggestedGrant covers every uncovered claim: their hosts, under their
// prefixes unless one of them is "/".
func (e *NotGrantedError) suggestedGrant() grantJSON {
	var hosts, prefixes []string
	seenHost, seenPrefix := map[string]bool{}, map[string]bool{}
	everyPath := false
	for _, c := range e.Uncovered {
		if !seenHost[c.Host] {
			seenHost[c.Host] = true
			hosts = append(hosts, c.Host)
		}
		everyPath = everyPath || c.Prefix == "/"
		if !seenPrefix[c.Prefix] {
			seenPrefix[c.Prefix] = true
			prefixes = append(prefixes, c.Prefix)
		}
	}
	if everyPath {
		prefixes = nil
	}
	name := e.Namespace + "-" + strings.NewReplacer("*.", "wildcard.", "_", "-").Replace(hosts[0])
	if len(name) > 253 {
		name = strings.TrimRight(name[:253], ".-")
	}
	return newGrantJSON(name, v1alpha1.CorsHostGrantSpec{Namespaces: []string{e.Namespace}, Hosts: hosts, PathPrefixes: prefixes})
}

// applyCommand is a shell line that creates g.
func applyCommand(g grantJSON) string {
	data, err := json.Marshal(g)
	if err != nil { // a struct of strings always marshals
		return err.Error()
	}
	return "kubectl apply -f - <<< '" + strings.ReplaceAll(string(data), "'", `'\''`) + "'"
}

// grant is one CorsHostGrant, indexed.
type grant struct {
	name     string
	names    map[string]bool
	selector labels.Selector // nil: admits by name only
	prefixes []grantPrefix   // empty: every path
	hosts    []string        // normalized; empty with allHosts
	// admits caches the namespace verdict for this build.
	admits map[string]bool
	// admitted collects the keys of the objects this grant covers a claim of.
	admitted []string
	last     string // the last key appended to admitted, to append once
}

// Ownership is an index of CorsHostGrants and namespace labels, rebuilt by
// Reset before each build; Admit checks one hosts policy against it, Grant
// one claim of an attachment. It remembers which objects it admitted, so
// that a withdrawn policy's status says why.
// Not safe for concurrent use.
type Ownership struct {
	grants   []*grant
	exact    map[string][]*grant // exact host → grants
	wildcard map[string][]*grant // "example.com" of "*.example.com" → grants
	allHosts []*grant
	nsLabels map[string]labels.Set

	admitted  map[string]bool // admitted in the current build
	withdrawn map[string]bool // lost admission, until admitted again or gone
	prev      map[string]bool // admitted in the previous build
	seen      map[string]bool // checked in the current build
	scratch   []*grant        // reused by Admit: the grants covering one object
	// candidates is reused by Admit: the grants covering one host.
	candidates []*grant
	ids        map[string]grantID // by name: the grants the index was built from
	// verdicts remembers each object's last check while the grants and the
	// namespaces' labels stay the same, so that a build after one change
	// checks one object, not 10,000. Cleared by Reset on any change.
	verdicts map[string]verdict
}

// verdict is one object's check: which entry (by identity) it was for, what
// it left uncovered, and which grants covered it.
type verdict struct {
	uid             string
	generation      int64
	hosts, prefixes *string // &e.Hosts[0], &e.PathPrefixes[0]: a recompile allocates new ones
	uncovered       []Claim
	covering        []*grant
}

func first(s []string) *string {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// grantID identifies one version of a grant's spec.
type grantID struct {
	uid        string
	generation int64
}

// sameGrants reports whether grants are those the index was built from, in
// any order (a cache lists in no particular order). A generation of 0
// (objects not from the API server) never matches: there is no change
// counter to trust.
func (o *Ownership) sameGrants(grants []v1alpha1.CorsHostGrant) bool {
	if o.ids == nil || len(grants) != len(o.ids) {
		return false
	}
	for i := range grants {
		g := &grants[i]
		if id, ok := o.ids[g.Name]; !ok || g.Generation == 0 || id != (grantID{string(g.UID), g.Generation}) {
			return false
		}
	}
	return true
}

// NewOwnership returns an Ownership with no grants: it admits nothing.
func NewOwnership() *Ownership {
	o := &Ownership{withdrawn: map[string]bool{}, prev: map[string]bool{}}
	o.Reset(nil, nil)
	return o
}

// Reset loads the grants and the namespaces' labels (name → labels) for the
// next build. A grant whose selector cannot be parsed (the CRD's schema
// prevents it) admits by name only: ambiguous input never grants.
func (o *Ownership) Reset(grants []v1alpha1.CorsHostGrant, namespaceLabels map[string]map[string]string) {
	if o.seen != nil {
		// Forget objects that were not in the last build (deleted).
		for key := range o.withdrawn {
			if !o.seen[key] {
				delete(o.withdrawn, key)
			}
		}
		for key := range o.verdicts {
			if !o.seen[key] {
				delete(o.verdicts, key)
			}
		}
		o.prev = o.admitted
	}
	o.admitted, o.seen = map[string]bool{}, map[string]bool{}
	sameLabels := len(o.nsLabels) == len(namespaceLabels)
	next := make(map[string]labels.Set, len(namespaceLabels))
	for ns, l := range namespaceLabels {
		next[ns] = l
		if prev, ok := o.nsLabels[ns]; sameLabels && (!ok || !maps.Equal(prev, labels.Set(l))) {
			sameLabels = false
		}
	}
	o.nsLabels = next
	if !sameLabels || o.verdicts == nil {
		o.verdicts = map[string]verdict{}
	}
	if o.sameGrants(grants) {
		// The grants have not changed since the last Reset (same names,
		// UIDs and generations, as the API server counts spec changes):
		// keep the index, which costs more to build than a table build's
		// checks at 1,000 grants, and forget only the per-build state.
		for _, g := range o.grants {
			clear(g.admits)
			g.admitted, g.last = g.admitted[:0], ""
		}
		return
	}
	o.verdicts = map[string]verdict{}
	o.ids = make(map[string]grantID, len(grants))
	for i := range grants {
		o.ids[grants[i].Name] = grantID{string(grants[i].UID), grants[i].Generation}
	}
	o.grants = make([]*grant, 0, len(grants))
	o.exact, o.wildcard, o.allHosts = map[string][]*grant{}, map[string][]*grant{}, nil
	for i := range grants {
		spec := &grants[i].Spec
		g := &grant{name: grants[i].Name, names: make(map[string]bool, len(spec.Namespaces)), admits: map[string]bool{}}
		for _, ns := range spec.Namespaces {
			g.names[ns] = true
		}
		if spec.NamespaceSelector != nil && !spec.AllHosts {
			if sel, err := metav1.LabelSelectorAsSelector(spec.NamespaceSelector); err == nil && !sel.Empty() {
				g.selector = sel
			}
		}
		for _, p := range spec.PathPrefixes {
			if n, err := table.NormalizePathPrefix(p); err == nil {
				g.prefixes = append(g.prefixes, newGrantPrefix(n))
			}
		}
		o.grants = append(o.grants, g)
		if len(spec.PathPrefixes) > 0 && len(g.prefixes) == 0 {
			continue // every prefix invalid: the grant covers nothing
		}
		if spec.AllHosts {
			if strings.HasPrefix(g.name, v1alpha1.AllHostsGrantPrefix) {
				o.allHosts = append(o.allHosts, g)
			}
			continue
		}
		for _, h := range spec.Hosts {
			n, err := table.NormalizeHost(h)
			if err != nil {
				continue
			}
			g.hosts = append(g.hosts, n)
			if suffix, ok := strings.CutPrefix(n, "*."); ok {
				o.wildcard[suffix] = append(o.wildcard[suffix], g)
			} else {
				o.exact[n] = append(o.exact[n], g)
			}
		}
	}
}

// The claims of an object without hosts or path prefixes; read only.
var everyHost, everyPath = []string{""}, []string{"/"}

// Admit returns nil if every claim of e (the entry the builder would serve
// for obj) is covered by a grant that admits obj's namespace, and a
// *NotGrantedError otherwise. The builder asks it only of hosts specs:
// what a served targetRefs spec attaches to is granted claim by claim, once
// resolved (Grant). Whether obj's current spec has targetRefs says nothing
// of e, which may be its last valid hosts spec.
func (o *Ownership) Admit(obj *v1alpha1.CorsPolicy, e *table.Entry) error {
	key := obj.Key()
	o.seen[key] = true
	v, ok := o.verdicts[key]
	if !ok || obj.Generation == 0 || v.uid != string(obj.UID) || v.generation != obj.Generation ||
		v.hosts != first(e.Hosts) || v.prefixes != first(e.PathPrefixes) {
		v = o.check(obj, e)
		o.verdicts[key] = v
	}
	if len(v.uncovered) > 0 {
		if o.prev[key] {
			o.withdrawn[key] = true
		}
		return &NotGrantedError{Namespace: obj.Namespace, Uncovered: v.uncovered, Withdrawn: o.withdrawn[key]}
	}
	o.admitted[key] = true
	delete(o.withdrawn, key)
	for _, g := range v.covering {
		g.admit(key)
	}
	return nil
}

// admit records that g covers a claim of the object key, once: a build
// checks one object's claims together.
func (g *grant) admit(key string) {
	if g.last != key {
		g.last = key
		g.admitted = append(g.admitted, key)
	}
}

// check computes the verdict on e, the entry obj would serve.
func (o *Ownership) check(obj *v1alpha1.CorsPolicy, e *table.Entry) verdict {
	hosts, prefixes := e.Hosts, e.PathPrefixes
	if len(hosts) == 0 {
		hosts = everyHost
	}
	if len(prefixes) == 0 {
		prefixes = everyPath
	}
	var uncovered []Claim
	covering := o.scratch[:0]
	for _, h := range hosts {
		o.candidates = o.hostGrants(o.candidates[:0], h)
		for _, p := range prefixes {
			n := len(covering)
			for _, g := range o.candidates {
				if g.coversPrefix(p) && g.admitsNamespace(obj.Namespace, o.nsLabels) {
					covering = append(covering, g)
				}
			}
			if len(covering) == n {
				uncovered = append(uncovered, Claim{Host: h, Prefix: p})
			}
		}
	}
	o.scratch = covering
	v := verdict{uid: string(obj.UID), generation: obj.Generation, hosts: first(e.Hosts), prefixes: first(e.PathPrefixes), uncovered: uncovered}
	if len(uncovered) == 0 {
		v.covering = slices.Clone(covering)
	}
	return v
}

// hostGrants appends to dst the grants whose hosts cover host, whatever
// their namespaces and prefixes. It runs for every host of every object on
// every build (100,000 times at 10,000 policies of ten hosts), so it
// allocates nothing but dst.
func (o *Ownership) hostGrants(dst []*grant, host string) []*grant {
	dst = append(dst, o.allHosts...)
	if host == "" {
		return dst
	}
	name, wild := strings.CutPrefix(host, "*.")
	if wild {
		// "*.eu.example.com" is covered by "*.eu.example.com" and by a
		// wildcard on any parent; never by an exact grant.
		dst = append(dst, o.wildcard[name]...)
	} else {
		dst = append(dst, o.exact[name]...)
	}
	// A wildcard grant covers strict subdomains only (the CorsPolicy host
	// syntax): "*.example.com" covers "a.example.com", not "example.com".
	for i := strings.IndexByte(name, '.'); i >= 0; i = strings.IndexByte(name, '.') {
		name = name[i+1:]
		dst = append(dst, o.wildcard[name]...)
	}
	return dst
}

// grantPrefix is a grant's path prefix as the table reads prefixes
// (table.PrefixKey: "/blog/" and "/blog" are one key), and whether it was
// written with a trailing "/". The table cannot serve "strictly under
// /blog/", so such a grant covers only prefixes strictly under its key:
// "/blog/x", never "/blog" nor "/blog/", which the table reads as "/blog"
// and would serve for "/blog" itself.
type grantPrefix struct {
	key    string
	strict bool
}

func newGrantPrefix(p string) grantPrefix {
	k := table.PrefixKey(p)
	return grantPrefix{key: k, strict: k != "" && strings.HasSuffix(p, "/")}
}

// covers reports whether the grant prefix covers every path that the
// table serves for a claim with prefix key k (segment by segment: "/blog"
// covers "/blog" and "/blog/admin", not "/blogs").
func (gp grantPrefix) covers(k string) bool {
	switch {
	case gp.key == "":
		return true
	case k == gp.key:
		return !gp.strict
	}
	return strings.HasPrefix(k, gp.key+"/")
}

// within reports whether the grant prefix selects part of what a claim
// with prefix key k selects, and which prefix serves that part; ok is false
// when the part cannot be served as a prefix (a strict grant under k).
func (gp grantPrefix) within(k string) (prefix string, ok bool) {
	if !(k == "" || strings.HasPrefix(gp.key, k+"/")) || gp.strict {
		return "", false
	}
	return gp.key, true
}

func (g *grant) coversPrefix(p string) bool {
	if len(g.prefixes) == 0 {
		return true
	}
	k := table.PrefixKey(p)
	for _, gp := range g.prefixes {
		if gp.covers(k) {
			return true
		}
	}
	return false
}

func (g *grant) admitsNamespace(ns string, nsLabels map[string]labels.Set) bool {
	if g.names[ns] {
		return true
	}
	if g.selector == nil {
		return false
	}
	ok, cached := g.admits[ns]
	if !cached {
		l, exists := nsLabels[ns]
		ok = exists && g.selector.Matches(l)
		g.admits[ns] = ok
	}
	return ok
}

// Admitted returns, for every grant of the last Reset, the keys
// ("namespace/name") of the objects it covered a claim of in the build since,
// sorted.
func (o *Ownership) Admitted() map[string][]string {
	m := make(map[string][]string, len(o.grants))
	for _, g := range o.grants {
		keys := append([]string(nil), g.admitted...)
		sort.Strings(keys)
		m[g.name] = keys
	}
	return m
}

// Grant appends to dst the parts of claim c of the targetRefs policy key
// ("namespace/name") that CorsHostGrants to its namespace cover, and
// returns it: c itself when one grant covers it whole; otherwise the
// granted hosts within c's host (a wildcard, or every host) and the granted
// prefixes under c's prefix. What a route
// serves is not chosen by the policy's author alone (the route's and the
// listeners' hostnames, the rules' matches), so an attachment serves what
// is granted of it rather than nothing; the builder reports the rest.
func (o *Ownership) Grant(namespace, key string, c Claim, dst []Claim) []Claim {
	o.seen[key] = true
	admitted := func(g *grant) {
		o.admitted[key] = true
		g.admit(key)
	}
	o.candidates = o.hostGrants(o.candidates[:0], c.Host)
	for _, g := range o.candidates {
		if g.coversPrefix(c.Prefix) && g.admitsNamespace(namespace, o.nsLabels) {
			admitted(g)
			return append(dst, c)
		}
	}
	out := dst
	k := table.PrefixKey(c.Prefix)
	add := func(g *grant, host string) {
		if !g.admitsNamespace(namespace, o.nsLabels) {
			return
		}
		n := len(out)
		if g.coversPrefix(c.Prefix) {
			out = appendClaim(out, len(dst), Claim{Host: host, Prefix: c.Prefix})
		}
		for _, gp := range g.prefixes {
			if p, ok := gp.within(k); ok {
				out = appendClaim(out, len(dst), Claim{Host: host, Prefix: p})
			}
		}
		if len(out) > n {
			admitted(g)
		}
	}
	for _, g := range o.candidates {
		add(g, c.Host)
	}
	if c.Host == "" || strings.HasPrefix(c.Host, "*.") {
		for _, g := range o.grants {
			for _, h := range g.hosts {
				if h != c.Host && (c.Host == "" || coveredBy(h, c.Host)) {
					add(g, h)
				}
			}
		}
	}
	return out
}

// appendClaim appends c to list unless list[from:] has it.
func appendClaim(list []Claim, from int, c Claim) []Claim {
	if slices.Contains(list[from:], c) {
		return list
	}
	return append(list, c)
}
