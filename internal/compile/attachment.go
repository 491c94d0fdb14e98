package compile

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

// Gateway API attachment (spec.targetRefs, GEP-713): a targetRef is turned
// into the (host, path prefix) pairs it serves, per ancestor Gateway, here;
// the Kubernetes source reads the Gateways and HTTPRoutes (Builder.Resolve).

// Attachment ranks (table.Entry.Rank): where two policies claim the same host
// and path prefix, the one attached closer to the route wins (GEP-713: a
// route rule beats a route, which beats a listener, which beats a Gateway).
// A policy selecting by hosts/pathPrefixes has rank 0: a policy that names
// the object routing a request says more about it than one that matches
// its host.
const (
	RankSelector = 0
	RankGateway  = 1
	RankListener = 2
	RankRoute    = 3
	RankRule     = 4
)

// Part is one set of hosts × path prefixes an attachment covers.
type Part struct {
	// Hosts are table host patterns; empty is every host (a listener and a
	// route without hostnames).
	Hosts, PathPrefixes []string
	Rank                int
	// Since is when the route (or Gateway) attached through was created:
	// between namespaces, the oldest route's policy decides an identical
	// match, as the Gateway API routes it (table.Entry.Since).
	Since time.Time
}

// GatewayClasses names the GatewayClasses whose Gateways the edge serves:
// the classes whose Envoys call this corsgate (--gateway-classes). A Gateway
// of another class routes through another proxy, or none; a policy
// attached through it would decide requests that never pass it, and, as
// the table serves one edge, requests for its hostnames arriving through
// the served Gateways. Nil serves every class.
type GatewayClasses map[string]bool

// ParseGatewayClasses reads --gateway-classes: comma-separated names, or
// "*" for every class.
func ParseGatewayClasses(s string) (GatewayClasses, error) {
	if strings.TrimSpace(s) == "*" {
		return nil, nil
	}
	c := GatewayClasses{}
	for n := range strings.SplitSeq(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			c[n] = true
		}
	}
	if len(c) == 0 {
		return nil, fmt.Errorf("--gateway-classes is empty: name the GatewayClasses whose Envoys call corsgate (e.g. eg), or write \"*\" for every class")
	}
	return c, nil
}

// serves reports whether gw's class is served; why says why not.
func (c GatewayClasses) serves(gw *gwapiv1.Gateway) (why string, ok bool) {
	if c == nil || c[string(gw.Spec.GatewayClassName)] {
		return "", true
	}
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprintf("Gateway %s/%s is of GatewayClass %q, which this corsgate does not serve (--gateway-classes=%s): a policy attaches only through Gateways whose Envoys call corsgate; if this one's do, add its class to --gateway-classes (chart value gatewayClasses)",
		gw.Namespace, gw.Name, gw.Spec.GatewayClassName, strings.Join(names, ",")), false
}

// Attachment is what one targetRef came to through one ancestor Gateway.
type Attachment struct {
	// Ancestor is the Gateway (namespace set), or the target itself when no
	// Gateway is known (a target that does not exist).
	Ancestor gwapiv1.ParentReference
	// Reason is "" when the target is attached through Ancestor, otherwise
	// the GEP-713 reason it is not (TargetNotFound, Invalid); Message says
	// why and what to do.
	Reason, Message string
	Parts           []Part
	// Skipped lists the route matches and listeners the table cannot
	// express exactly, as sentences: they are not served (never widened).
	Skipped []string
}

// AncestorResult is a policy's status for one ancestor Gateway.
type AncestorResult struct {
	Ref gwapiv1.ParentReference
	// Reason is a GEP-713 reason: Accepted, Invalid, TargetNotFound or
	// Conflicted.
	Reason, Message string
}

// Resolver resolves a policy's targetRef in namespace ns.
type Resolver func(ns string, ref gwapiv1.LocalPolicyTargetReferenceWithSectionName) []Attachment

// checkTargetRefs is the CRD's targetRefs rules, for the file source.
func checkTargetRefs(spec *v1alpha1.CorsPolicySpec) []error {
	if len(spec.TargetRefs) == 0 {
		return nil
	}
	var errs []error
	if len(spec.Hosts) > 0 || len(spec.PathPrefixes) > 0 {
		errs = append(errs, &cors.FieldError{Field: "spec.targetRefs", Message: "targetRefs and hosts/pathPrefixes are mutually exclusive: use targetRefs to attach to a Gateway or HTTPRoute (the policy follows its hostnames and paths), or hosts and pathPrefixes to select requests without the Gateway API"})
	}
	if len(spec.TargetRefs) > v1alpha1.MaxTargetRefs {
		errs = append(errs, &cors.FieldError{Field: "spec.targetRefs", Message: fmt.Sprintf("has %d entries, more than the %d allowed: split the policy in two", len(spec.TargetRefs), v1alpha1.MaxTargetRefs)})
	}
	seen := map[string]bool{}
	for i, r := range spec.TargetRefs {
		field := fmt.Sprintf("spec.targetRefs[%d]", i)
		if r.Group != v1alpha1.GatewayGroup || (r.Kind != v1alpha1.KindGateway && r.Kind != v1alpha1.KindHTTPRoute) {
			errs = append(errs, &cors.FieldError{Field: field, Value: string(r.Kind), Message: "a targetRef names a Gateway or an HTTPRoute: write group: gateway.networking.k8s.io with kind: HTTPRoute (or kind: Gateway)"})
		}
		k := refString(r)
		if seen[k] {
			errs = append(errs, &cors.FieldError{Field: field, Value: k, Message: "each targetRef may be listed once: remove the duplicate"})
		}
		seen[k] = true
	}
	return errs
}

func refString(r gwapiv1.LocalPolicyTargetReferenceWithSectionName) string {
	s := string(r.Kind) + " " + string(r.Name)
	if r.SectionName != nil {
		s += " section " + string(*r.SectionName)
	}
	return s
}

// ResolveGateway is what a targetRef to gw (sectionName: one listener)
// covers: every HTTP and HTTPS listener's hostname under "/". A Gateway its
// controller has not accepted covers nothing.
func ResolveGateway(gw *gwapiv1.Gateway, section *gwapiv1.SectionName, classes GatewayClasses) Attachment {
	a := Attachment{Ancestor: gatewayRef(gw.Namespace, gw.Name)}
	if why, ok := classes.serves(gw); !ok {
		a.Reason, a.Message = string(gwapiv1.PolicyReasonTargetNotFound), why
		return a
	}
	if !acceptedAt(gw.Status.Conditions, gw.Generation) {
		a.Reason = string(gwapiv1.PolicyReasonTargetNotFound)
		a.Message = fmt.Sprintf("Gateway %s/%s is not accepted by its controller at generation %d (status.conditions), so it serves nothing: check its GatewayClass", gw.Namespace, gw.Name, gw.Generation)
		return a
	}
	rank := RankGateway
	if section != nil {
		rank = RankListener
	}
	found := false
	for _, l := range gw.Spec.Listeners {
		if section != nil && l.Name != *section {
			continue
		}
		found = true
		if !httpListener(&l) {
			a.Skipped = append(a.Skipped, fmt.Sprintf("listener %s is %s, not HTTP or HTTPS: CORS does not apply to it", l.Name, l.Protocol))
			continue
		}
		host := ""
		if l.Hostname != nil {
			h, err := table.NormalizeHost(string(*l.Hostname))
			if err != nil {
				a.Skipped = append(a.Skipped, fmt.Sprintf("listener %s: hostname %s", l.Name, err))
				continue
			}
			host = h
		}
		a.Parts = append(a.Parts, Part{Hosts: hostList(host), Rank: rank, Since: gw.CreationTimestamp.Time})
	}
	if section != nil && !found {
		a.Reason = string(gwapiv1.PolicyReasonTargetNotFound)
		a.Message = fmt.Sprintf("Gateway %s/%s has no listener named %q: write the name of one of its listeners in sectionName, or leave it out to attach to every listener", gw.Namespace, gw.Name, *section)
	}
	return a
}

// GatewayLookup returns a Gateway, or nil when it does not exist.
type GatewayLookup func(namespace, name string) *gwapiv1.Gateway

// NamespaceLabels returns a namespace's labels, for listeners that admit
// routes by namespace selector; ok is false when it cannot be read.
type NamespaceLabels func(namespace string) (labels.Set, bool)

// ResolveRoute is what a targetRef to route (sectionName: one rule, GEP-995)
// covers, per parent Gateway: the route's hostnames intersected with those of
// the parent's listeners that admit it, under its rules' PathPrefix matches.
// Only parents whose status.parents say they accepted the route at its
// current generation count: a namespace cannot claim a hostname with a route
// no Gateway admitted.
func ResolveRoute(route *gwapiv1.HTTPRoute, section *gwapiv1.SectionName, gateway GatewayLookup, nsLabels NamespaceLabels, classes GatewayClasses) []Attachment {
	rank := RankRoute
	var prefixes []string
	var skipped []string
	found := false
	for i, rule := range route.Spec.Rules {
		if section != nil && (rule.Name == nil || *rule.Name != *section) {
			continue
		}
		found = true
		if section != nil {
			rank = RankRule
		}
		p, s := rulePrefixes(i, &rule)
		prefixes, skipped = append(prefixes, p...), append(skipped, s...)
	}
	var out []Attachment
	for _, pr := range route.Spec.ParentRefs {
		if (pr.Group != nil && *pr.Group != v1alpha1.GatewayGroup) || (pr.Kind != nil && *pr.Kind != v1alpha1.KindGateway) {
			continue // a parent that is not a Gateway (a ListenerSet, say) is not read
		}
		ns := route.Namespace
		if pr.Namespace != nil {
			ns = string(*pr.Namespace)
		}
		a := Attachment{Ancestor: gatewayRef(ns, string(pr.Name)), Skipped: skipped}
		if pr.SectionName != nil {
			a.Ancestor.SectionName = pr.SectionName
		}
		switch {
		case section != nil && !found:
			a.Reason = string(gwapiv1.PolicyReasonTargetNotFound)
			a.Message = fmt.Sprintf("HTTPRoute %s/%s has no rule named %q (GEP-995): write the name of one of its rules in sectionName, or leave it out to attach to the whole route", route.Namespace, route.Name, *section)
		case !routeAccepted(route, &pr, ns):
			a.Reason = string(gwapiv1.PolicyReasonTargetNotFound)
			a.Message = fmt.Sprintf("HTTPRoute %s/%s is not accepted by Gateway %s/%s at generation %d (status.parents has no Accepted=True condition for it), so the policy serves nothing through it: the Gateway decides which routes may serve which hostnames", route.Namespace, route.Name, ns, pr.Name, route.Generation)
		default:
			gw := gateway(ns, string(pr.Name))
			if gw == nil {
				a.Reason = string(gwapiv1.PolicyReasonTargetNotFound)
				a.Message = fmt.Sprintf("Gateway %s/%s, a parent of HTTPRoute %s/%s, does not exist", ns, pr.Name, route.Namespace, route.Name)
				break
			}
			if why, ok := classes.serves(gw); !ok {
				a.Reason, a.Message = string(gwapiv1.PolicyReasonTargetNotFound), why
				break
			}
			hosts, hs := routeHosts(route, gw, &pr, nsLabels)
			a.Skipped = append(append([]string(nil), a.Skipped...), hs...)
			if len(hosts) == 0 {
				a.Reason = string(gwapiv1.PolicyReasonTargetNotFound)
				a.Message = fmt.Sprintf("no listener of Gateway %s/%s admits HTTPRoute %s/%s with a hostname they share, so the policy serves nothing through it", ns, pr.Name, route.Namespace, route.Name)
				break
			}
			for _, h := range hosts {
				if len(prefixes) > 0 {
					a.Parts = append(a.Parts, Part{Hosts: hostList(h), PathPrefixes: prefixes, Rank: rank, Since: route.CreationTimestamp.Time})
				}
			}
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		out = append(out, Attachment{
			Ancestor: targetAsAncestor(route.Namespace, v1alpha1.KindHTTPRoute, route.Name),
			Reason:   string(gwapiv1.PolicyReasonTargetNotFound),
			Message:  fmt.Sprintf("HTTPRoute %s/%s has no Gateway parent, so it serves nothing", route.Namespace, route.Name),
		})
	}
	return out
}

// rulePrefixes turns a rule's matches into path prefixes. A rule without
// matches matches every path ("/"). A match the table cannot express
// exactly is skipped and said why: serving it as a prefix would apply the
// policy to requests the route does not send to this rule.
func rulePrefixes(i int, rule *gwapiv1.HTTPRouteRule) (prefixes, skipped []string) {
	name := fmt.Sprintf("rule %d", i)
	if rule.Name != nil {
		name = fmt.Sprintf("rule %s", *rule.Name)
	}
	if len(rule.Matches) == 0 {
		return []string{"/"}, nil
	}
	for j, m := range rule.Matches {
		what := fmt.Sprintf("%s match %d", name, j)
		var why []string
		if len(m.Headers) > 0 {
			why = append(why, "a header match")
		}
		if len(m.QueryParams) > 0 {
			why = append(why, "a query parameter match")
		}
		if m.Method != nil {
			why = append(why, "a method match (a preflight is an OPTIONS request)")
		}
		prefix := "/"
		if m.Path != nil {
			typ := gwapiv1.PathMatchPathPrefix
			if m.Path.Type != nil {
				typ = *m.Path.Type
			}
			if m.Path.Value != nil {
				prefix = *m.Path.Value
			}
			switch typ {
			case gwapiv1.PathMatchPathPrefix:
			case gwapiv1.PathMatchExact:
				// The table matches segment prefixes: "/login" would also
				// cover "/login/x", which other rules may route.
				why = append(why, fmt.Sprintf("an Exact path %q (the edge matches path prefixes, and %q would also cover %q)", prefix, prefix, strings.TrimSuffix(prefix, "/")+"/..."))
			default:
				why = append(why, fmt.Sprintf("a %s path %q", typ, prefix))
			}
		}
		if len(why) > 0 {
			skipped = append(skipped, fmt.Sprintf("%s has %s, which the edge cannot express: the policy does not serve it (use a PathPrefix match without header, query or method matches)", what, strings.Join(why, " and ")))
			continue
		}
		p, err := table.NormalizePathPrefix(prefix)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: path %s", what, err))
			continue
		}
		prefixes = appendNew(prefixes, p)
	}
	return prefixes, skipped
}

// routeHosts is the hosts route serves through gw's listeners that pr
// selects and that admit it: Gateway API hostname intersection (HTTPRoute
// spec.hostnames). "" is every host.
func routeHosts(route *gwapiv1.HTTPRoute, gw *gwapiv1.Gateway, pr *gwapiv1.ParentReference, nsLabels NamespaceLabels) (hosts, skipped []string) {
	for _, l := range gw.Spec.Listeners {
		if pr.SectionName != nil && l.Name != *pr.SectionName {
			continue
		}
		if pr.Port != nil && l.Port != *pr.Port {
			continue
		}
		if !admits(&l, gw.Namespace, route.Namespace, nsLabels) {
			continue
		}
		listenerHost := ""
		if l.Hostname != nil {
			listenerHost = strings.ToLower(string(*l.Hostname))
		}
		var candidates []string
		if len(route.Spec.Hostnames) == 0 {
			candidates = []string{listenerHost}
		}
		for _, rh := range route.Spec.Hostnames {
			if h, ok := IntersectHostnames(listenerHost, strings.ToLower(string(rh))); ok {
				candidates = append(candidates, h)
			}
		}
		for _, h := range candidates {
			if h != "" {
				n, err := table.NormalizeHost(h)
				if err != nil {
					skipped = append(skipped, fmt.Sprintf("hostname via listener %s: %s", l.Name, err))
					continue
				}
				h = n
			}
			hosts = appendNew(hosts, h)
		}
	}
	return hosts, skipped
}

// IntersectHostnames is the hostname a request must have to match both a
// listener's hostname and a route's ("" is any), per the Gateway API
// (HTTPRoute spec.hostnames): "*.example.com" matches any name with one or
// more labels in front of ".example.com", never "example.com" itself; of two
// matching names the more specific is the one served.
func IntersectHostnames(listener, route string) (string, bool) {
	switch {
	case listener == "":
		return route, true
	case route == "":
		return listener, true
	case listener == route:
		return route, true
	}
	lw, rw := strings.HasPrefix(listener, "*."), strings.HasPrefix(route, "*.")
	switch {
	case lw && coveredBy(route, listener):
		return route, true
	case rw && coveredBy(listener, route):
		return listener, true
	}
	return "", false
}

// coveredBy reports whether name (exact or wildcard) is within wildcard
// "*.suffix": at least one label in front of ".suffix".
func coveredBy(name, wildcard string) bool {
	suffix := wildcard[1:] // ".example.com"
	// "*.a.example.com" is within "*.example.com" as "a.example.com" is.
	name = strings.TrimPrefix(name, "*")
	return len(name) > len(suffix) && strings.HasSuffix(name, suffix)
}

// admits reports whether listener l of a Gateway in gwNS admits an HTTPRoute
// in routeNS (allowedRoutes; the Gateway API defaults: same namespace, and
// HTTPRoute on HTTP and HTTPS listeners).
func admits(l *gwapiv1.Listener, gwNS, routeNS string, nsLabels NamespaceLabels) bool {
	kindOK := httpListener(l)
	if l.AllowedRoutes != nil && len(l.AllowedRoutes.Kinds) > 0 {
		kindOK = false
		for _, k := range l.AllowedRoutes.Kinds {
			if k.Kind == v1alpha1.KindHTTPRoute && (k.Group == nil || *k.Group == v1alpha1.GatewayGroup) {
				kindOK = true
			}
		}
	}
	if !kindOK {
		return false
	}
	from := gwapiv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if l.AllowedRoutes != nil && l.AllowedRoutes.Namespaces != nil {
		if l.AllowedRoutes.Namespaces.From != nil {
			from = *l.AllowedRoutes.Namespaces.From
		}
		sel = l.AllowedRoutes.Namespaces.Selector
	}
	switch from {
	case gwapiv1.NamespacesFromAll:
		return true
	case gwapiv1.NamespacesFromSame:
		return gwNS == routeNS
	case gwapiv1.NamespacesFromSelector:
		if sel == nil || nsLabels == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return false // an unreadable selector admits nothing
		}
		set, ok := nsLabels(routeNS)
		return ok && s.Matches(set)
	}
	return false // None, or a value this version does not know
}

func httpListener(l *gwapiv1.Listener) bool {
	return l.Protocol == gwapiv1.HTTPProtocolType || l.Protocol == gwapiv1.HTTPSProtocolType
}

// routeAccepted reports whether route's status says the parent pr (in ns)
// accepted it at the route's current generation. An older status may
// describe other hostnames, so it does not count.
func routeAccepted(route *gwapiv1.HTTPRoute, pr *gwapiv1.ParentReference, ns string) bool {
	for _, ps := range route.Status.Parents {
		p := &ps.ParentRef
		pns := route.Namespace
		if p.Namespace != nil {
			pns = string(*p.Namespace)
		}
		if p.Name != pr.Name || pns != ns || !samePtr(p.SectionName, pr.SectionName) || !samePtr(p.Port, pr.Port) ||
			(p.Group != nil && *p.Group != v1alpha1.GatewayGroup) || (p.Kind != nil && *p.Kind != v1alpha1.KindGateway) {
			continue
		}
		if acceptedAt(ps.Conditions, route.Generation) {
			return true
		}
	}
	return false
}

func acceptedAt(conds []metav1.Condition, generation int64) bool {
	c := meta.FindStatusCondition(conds, string(gwapiv1.RouteConditionAccepted))
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == generation
}

func samePtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func gatewayRef(ns, name string) gwapiv1.ParentReference {
	return targetAsAncestor(ns, v1alpha1.KindGateway, name)
}

// targetAsAncestor is a reference to a Gateway API object as a status
// ancestor.
func targetAsAncestor(ns, kind, name string) gwapiv1.ParentReference {
	g, k, n := gwapiv1.Group(v1alpha1.GatewayGroup), gwapiv1.Kind(kind), gwapiv1.Namespace(ns)
	return gwapiv1.ParentReference{Group: &g, Kind: &k, Namespace: &n, Name: gwapiv1.ObjectName(name)}
}

// TargetNotFound is the attachment of a targetRef whose object does not exist.
func TargetNotFound(ns string, ref gwapiv1.LocalPolicyTargetReferenceWithSectionName) Attachment {
	return Attachment{
		Ancestor: targetAsAncestor(ns, string(ref.Kind), string(ref.Name)),
		Reason:   string(gwapiv1.PolicyReasonTargetNotFound),
		Message:  fmt.Sprintf("%s %s/%s does not exist: a targetRef names an object in the policy's own namespace (GEP-713)", ref.Kind, ns, ref.Name),
	}
}

func hostList(h string) []string {
	if h == "" {
		return nil
	}
	return []string{h}
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
