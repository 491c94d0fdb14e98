package compile_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
	"github.com/corsgate/corsgate/test/gen"
)

// Hostname intersection as the Gateway API defines it (HTTPRoute
// spec.hostnames): "*.example.com" matches one or more labels in front of
// ".example.com", never "example.com"; the more specific name is served.
func TestIntersectHostnames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, listener, route, want string
		ok                          bool
	}{
		{desc: "listener without hostname takes the route's", listener: "", route: "api.example.com", want: "api.example.com", ok: true},
		{desc: "route without hostname takes the listener's", listener: "*.example.com", route: "", want: "*.example.com", ok: true},
		{desc: "neither: every host", want: "", ok: true},
		{desc: "same exact name", listener: "api.example.com", route: "api.example.com", want: "api.example.com", ok: true},
		{desc: "different exact names", listener: "api.example.com", route: "web.example.com", ok: false},
		{desc: "exact route under a wildcard listener", listener: "*.example.com", route: "api.example.com", want: "api.example.com", ok: true},
		{desc: "two labels deep under a wildcard", listener: "*.example.com", route: "a.b.example.com", want: "a.b.example.com", ok: true},
		{desc: "a wildcard never matches its apex", listener: "*.example.com", route: "example.com", ok: false},
		{desc: "wildcard route narrowed by an exact listener", listener: "api.example.com", route: "*.example.com", want: "api.example.com", ok: true},
		{desc: "narrower wildcard route", listener: "*.example.com", route: "*.api.example.com", want: "*.api.example.com", ok: true},
		{desc: "narrower wildcard listener", listener: "*.api.example.com", route: "*.example.com", want: "*.api.example.com", ok: true},
		{desc: "suffix on a label boundary only", listener: "*.example.com", route: "badexample.com", ok: false},
		{desc: "unrelated wildcards", listener: "*.example.com", route: "*.example.org", ok: false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, ok := compile.IntersectHostnames(tc.listener, tc.route)
			if got != tc.want || ok != tc.ok {
				t.Errorf("IntersectHostnames(%q, %q) = %q, %v; want %q, %v", tc.listener, tc.route, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// world is a set of Gateway API objects a Resolver reads.
type world struct {
	gateways map[string]*gwapiv1.Gateway
	routes   map[string]*gwapiv1.HTTPRoute
	nsLabels map[string]labels.Set
}

func (w *world) resolve(ns string, ref gwapiv1.LocalPolicyTargetReferenceWithSectionName) []compile.Attachment {
	key := ns + "/" + string(ref.Name)
	switch ref.Kind {
	case "Gateway":
		if gw := w.gateways[key]; gw != nil {
			return []compile.Attachment{compile.ResolveGateway(gw, ref.SectionName, nil)}
		}
	case "HTTPRoute":
		if r := w.routes[key]; r != nil {
			return compile.ResolveRoute(r, ref.SectionName, func(ns, name string) *gwapiv1.Gateway { return w.gateways[ns+"/"+name] },
				func(ns string) (labels.Set, bool) { l, ok := w.nsLabels[ns]; return l, ok }, nil)
		}
	}
	return []compile.Attachment{compile.TargetNotFound(ns, ref)}
}

// gateway "infra/edge" with listeners name=hostname ("" for none), HTTPS on
// 443, admitting routes from every namespace.
func gateway(listeners ...string) *gwapiv1.Gateway {
	gw := &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "edge", Generation: 1}}
	for _, l := range listeners {
		name, host, _ := strings.Cut(l, "=")
		li := gwapiv1.Listener{Name: gwapiv1.SectionName(name), Port: 443, Protocol: gwapiv1.HTTPSProtocolType,
			AllowedRoutes: &gwapiv1.AllowedRoutes{Namespaces: &gwapiv1.RouteNamespaces{From: new(gwapiv1.NamespacesFromAll)}}}
		if host != "" {
			li.Hostname = new(gwapiv1.Hostname(host))
		}
		gw.Spec.Listeners = append(gw.Spec.Listeners, li)
	}
	gw.Status.Conditions = gen.AcceptedAt(1)
	return gw
}

// route "team/shop" attached to infra/edge and accepted by it, with rules
// (name: path prefixes).
func route(hostnames []string, rules map[string][]string) *gwapiv1.HTTPRoute {
	r := &gwapiv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "shop", Generation: 3}}
	parent := gwapiv1.ParentReference{Name: "edge", Namespace: new(gwapiv1.Namespace("infra"))}
	r.Spec.ParentRefs = []gwapiv1.ParentReference{parent}
	for _, h := range hostnames {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gwapiv1.Hostname(h))
	}
	for _, name := range []string{"checkout", "catalog", "other"} {
		prefixes, ok := rules[name]
		if !ok {
			continue
		}
		rule := gwapiv1.HTTPRouteRule{Name: new(gwapiv1.SectionName(name))}
		for _, p := range prefixes {
			rule.Matches = append(rule.Matches, gwapiv1.HTTPRouteMatch{Path: &gwapiv1.HTTPPathMatch{Type: new(gwapiv1.PathMatchPathPrefix), Value: new(p)}})
		}
		r.Spec.Rules = append(r.Spec.Rules, rule)
	}
	r.Status.Parents = []gwapiv1.RouteParentStatus{{ParentRef: parent, ControllerName: "example.com/gw", Conditions: gen.AcceptedAt(3)}}
	return r
}

func targets(refs ...string) gen.Option {
	return func(p *v1alpha1.CorsPolicy) {
		for _, r := range refs {
			kind, rest, _ := strings.Cut(r, "/")
			name, section, _ := strings.Cut(rest, "#")
			ref := gwapiv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
				Group: v1alpha1.GatewayGroup, Kind: gwapiv1.Kind(kind), Name: gwapiv1.ObjectName(name)}}
			if section != "" {
				ref.SectionName = new(gwapiv1.SectionName(section))
			}
			p.Spec.TargetRefs = append(p.Spec.TargetRefs, ref)
		}
	}
}

// servedBy is the policy that decides host and path, and whether it allows origin.
func servedBy(b *compile.Builder, objs []v1alpha1.CorsPolicy, host, path string) (string, []compile.Result) {
	tbl, results := b.Build(objs)
	e := tbl.Lookup(host, path)
	if e == nil {
		return "", results
	}
	return e.Name, results
}

func TestRouteScope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc      string
		listeners []string
		hostnames []string
		rules     map[string][]string
		// served: "host path" -> policy name ("" none).
		served map[string]string
	}{
		{
			desc:      "route hostnames intersected with the listener's",
			listeners: []string{"https=*.example.com"},
			hostnames: []string{"shop.example.com", "shop.example.org"},
			rules:     map[string][]string{"checkout": {"/checkout"}},
			served: map[string]string{
				"shop.example.com /checkout/pay": "p", "shop.example.com /catalog": "", "shop.example.org /checkout": "",
				"shop.example.com /checkoutx": "",
			},
		},
		{
			desc:      "a wildcard route takes the exact listener's hostname",
			listeners: []string{"https=shop.example.com"},
			hostnames: []string{"*.example.com"},
			rules:     map[string][]string{"checkout": {"/"}},
			served:    map[string]string{"shop.example.com /": "p", "other.example.com /": ""},
		},
		{
			desc:      "no hostnames anywhere: every host",
			listeners: []string{"http="},
			rules:     map[string][]string{"checkout": {"/api"}},
			served:    map[string]string{"anything.test /api": "p", "anything.test /": ""},
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			w := &world{gateways: map[string]*gwapiv1.Gateway{"infra/edge": gateway(tc.listeners...)},
				routes: map[string]*gwapiv1.HTTPRoute{"team/shop": route(tc.hostnames, tc.rules)}}
			b := compile.NewBuilder()
			b.Resolve = w.resolve
			p := gen.CorsPolicy("p", gen.WithNamespace("team"), gen.WithOrigins("https://app.example.com"), targets("HTTPRoute/shop"))
			for req, want := range tc.served {
				host, path, _ := strings.Cut(req, " ")
				got, results := servedBy(b, []v1alpha1.CorsPolicy{*p}, host, path)
				if got != want {
					t.Errorf("%s: served by %q, want %q (results %+v)", req, got, want, results)
				}
			}
		})
	}
}

func TestRouteNotAcceptedServesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc   string
		change func(*gwapiv1.HTTPRoute)
		want   string
	}{
		{desc: "Accepted=False", change: func(r *gwapiv1.HTTPRoute) { r.Status.Parents[0].Conditions[0].Status = metav1.ConditionFalse }, want: "is not accepted by Gateway infra/edge"},
		{desc: "no status at all", change: func(r *gwapiv1.HTTPRoute) { r.Status.Parents = nil }, want: "is not accepted by Gateway infra/edge"},
		// The hostnames may have changed since the Gateway looked.
		{desc: "accepted at an older generation", change: func(r *gwapiv1.HTTPRoute) { r.Generation = 4 }, want: "at generation 4"},
		{desc: "accepted by another Gateway", change: func(r *gwapiv1.HTTPRoute) { r.Status.Parents[0].ParentRef.Name = "other" }, want: "is not accepted"},
		{desc: "hostnames no listener shares", change: func(r *gwapiv1.HTTPRoute) { r.Spec.Hostnames = []gwapiv1.Hostname{"bank.example.org"} }, want: "no listener of Gateway infra/edge admits"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := route([]string{"shop.example.com"}, map[string][]string{"checkout": {"/"}})
			tc.change(r)
			w := &world{gateways: map[string]*gwapiv1.Gateway{"infra/edge": gateway("https=*.example.com")}, routes: map[string]*gwapiv1.HTTPRoute{"team/shop": r}}
			b := compile.NewBuilder()
			b.Resolve = w.resolve
			p := gen.CorsPolicy("p", gen.WithNamespace("team"), gen.WithOrigins("https://app.example.com"), targets("HTTPRoute/shop"))
			got, results := servedBy(b, []v1alpha1.CorsPolicy{*p}, "shop.example.com", "/")
			if got != "" {
				t.Fatalf("served by %s; a route its Gateway did not accept must serve nothing", got)
			}
			res := results[0]
			if res.Serving != compile.NotServed || len(res.Ancestors) != 1 || res.Ancestors[0].Reason != "TargetNotFound" || !strings.Contains(res.Ancestors[0].Message, tc.want) {
				t.Errorf("result %+v; want NotServing, one ancestor TargetNotFound saying %q", res, tc.want)
			}
		})
	}
}

func TestUnexpressibleMatchesAreReportedNotWidened(t *testing.T) {
	t.Parallel()
	r := route([]string{"shop.example.com"}, map[string][]string{"checkout": {"/checkout"}})
	rule := &r.Spec.Rules[0]
	rule.Matches = append(rule.Matches,
		gwapiv1.HTTPRouteMatch{Path: &gwapiv1.HTTPPathMatch{Type: new(gwapiv1.PathMatchExact), Value: new("/login")}},
		gwapiv1.HTTPRouteMatch{Path: &gwapiv1.HTTPPathMatch{Type: new(gwapiv1.PathMatchRegularExpression), Value: new("/v[0-9]+/.*")}},
		gwapiv1.HTTPRouteMatch{Path: &gwapiv1.HTTPPathMatch{Type: new(gwapiv1.PathMatchPathPrefix), Value: new("/admin")},
			Headers: []gwapiv1.HTTPHeaderMatch{{Name: "x-admin", Value: "1"}}},
		gwapiv1.HTTPRouteMatch{Path: &gwapiv1.HTTPPathMatch{Type: new(gwapiv1.PathMatchPathPrefix), Value: new("/orders")}, Method: new(gwapiv1.HTTPMethodGet)},
	)
	w := &world{gateways: map[string]*gwapiv1.Gateway{"infra/edge": gateway("https=*.example.com")}, routes: map[string]*gwapiv1.HTTPRoute{"team/shop": r}}
	b := compile.NewBuilder()
	b.Resolve = w.resolve
	p := gen.CorsPolicy("p", gen.WithNamespace("team"), gen.WithOrigins("https://app.example.com"), targets("HTTPRoute/shop"))
	for path, want := range map[string]string{"/checkout": "p", "/login": "", "/login/x": "", "/v1/x": "", "/admin": "", "/orders": "", "/": ""} {
		if got, _ := servedBy(b, []v1alpha1.CorsPolicy{*p}, "shop.example.com", path); got != want {
			t.Errorf("%s served by %q, want %q", path, got, want)
		}
	}
	_, results := b.Build([]v1alpha1.CorsPolicy{*p})
	msg := results[0].Ancestors[0].Message
	for _, want := range []string{`an Exact path "/login"`, `a RegularExpression path "/v[0-9]+/.*"`, "a header match", "a method match", "rule checkout match 1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("ancestor message lacks %q:\n%s", want, msg)
		}
	}
	if results[0].Ancestors[0].Reason != "Accepted" {
		t.Errorf("reason %s, want Accepted: the expressible match is served", results[0].Ancestors[0].Reason)
	}
}

// GEP-713: a policy on a route rule beats one on the route, which beats one
// on a listener, which beats one on the Gateway, whatever their age; a
// hosts policy comes last.
func TestAttachmentPrecedence(t *testing.T) {
	t.Parallel()
	w := &world{
		gateways: map[string]*gwapiv1.Gateway{"team/edge": gateway("https=shop.example.com")},
		routes:   map[string]*gwapiv1.HTTPRoute{"team/shop": route([]string{"shop.example.com"}, map[string][]string{"checkout": {"/"}})},
	}
	w.gateways["team/edge"].Namespace = "team"
	w.routes["team/shop"].Spec.ParentRefs[0].Namespace = nil
	w.routes["team/shop"].Status.Parents[0].ParentRef.Namespace = nil
	at := func(name string, age time.Duration, opt gen.Option) v1alpha1.CorsPolicy {
		return *gen.CorsPolicy(name, gen.WithNamespace("team"), gen.WithAge(age), gen.WithOrigins("https://"+name+".example.com"), opt)
	}
	// Younger the closer to the route: age would pick the other way.
	selector := at("selector", 0, gen.WithHosts("shop.example.com"))
	gatewayLevel := at("gateway", time.Second, targets("Gateway/edge"))
	listenerLevel := at("listener", 2*time.Second, targets("Gateway/edge#https"))
	routeLevel := at("route", 3*time.Second, targets("HTTPRoute/shop"))
	ruleLevel := at("rule", 4*time.Second, targets("HTTPRoute/shop#checkout"))
	all := []v1alpha1.CorsPolicy{selector, gatewayLevel, listenerLevel, routeLevel, ruleLevel}
	b := compile.NewBuilder()
	b.Resolve = w.resolve
	for n := len(all); n > 0; n-- {
		want := all[n-1].Name
		tbl, results := b.Build(all[:n])
		e := tbl.Lookup("shop.example.com", "/checkout")
		if e == nil || e.Name != want {
			t.Fatalf("with %d policies: served by %v, want %s", n, e, want)
		}
		d := e.Policy.Decide(&cors.Request{Method: "GET", Origin: "https://" + want + ".example.com", HasOrigin: true})
		if !d.Allowed {
			t.Errorf("%s's own origin refused: %v", want, d.Reason)
		}
		for _, r := range results[:n-1] {
			if r.Serving != compile.NotServed || len(r.Conflicts) == 0 {
				t.Errorf("with %d policies, %s: serving %v conflicts %q; want NotServing with the claim it lost", n, r.Name, r.Serving, r.Conflicts)
			}
			for _, a := range r.Ancestors {
				if a.Reason != "Conflicted" {
					t.Errorf("with %d policies, %s ancestor %s: %s, want Conflicted", n, r.Name, a.Ref.Name, a.Reason)
				}
			}
		}
		if n > 1 && !strings.Contains(strings.Join(results[n-2].Conflicts, ""), "attached closer to the route") {
			t.Errorf("loser's conflict should say why it lost: %q", results[n-2].Conflicts)
		}
	}
}

// A policy whose targets cover the same host and path twice claims it once,
// and never conflicts with itself.
func TestOverlappingTargetsOfOnePolicy(t *testing.T) {
	t.Parallel()
	w := &world{gateways: map[string]*gwapiv1.Gateway{"team/edge": gateway("https=shop.example.com")},
		routes: map[string]*gwapiv1.HTTPRoute{"team/shop": route([]string{"shop.example.com"}, map[string][]string{"checkout": {"/"}})}}
	w.gateways["team/edge"].Namespace = "team"
	w.routes["team/shop"].Spec.ParentRefs[0].Namespace = nil
	w.routes["team/shop"].Status.Parents[0].ParentRef.Namespace = nil
	b := compile.NewBuilder()
	b.Resolve = w.resolve
	p := gen.CorsPolicy("p", gen.WithNamespace("team"), gen.WithOrigins("https://app.example.com"), targets("Gateway/edge", "HTTPRoute/shop", "HTTPRoute/shop#checkout"))
	tbl, results := b.Build([]v1alpha1.CorsPolicy{*p})
	if e := tbl.Lookup("shop.example.com", "/"); e == nil || e.Rank != compile.RankRule {
		t.Errorf("entry %+v; want the rule-level claim", e)
	}
	if r := results[0]; r.Serving != compile.Served || len(r.Conflicts) != 0 {
		t.Errorf("result %+v; want Serving without conflicts", r)
	}
}

func TestTargetRefsNeedKubernetes(t *testing.T) {
	t.Parallel()
	b := compile.NewBuilder() // as the file source: no Resolve
	p := gen.CorsPolicy("p", gen.WithOrigins("https://app.example.com"), targets("HTTPRoute/shop"))
	tbl, results := b.Build([]v1alpha1.CorsPolicy{*p})
	if tbl.Len() != 0 || tbl.Lookup("anything.test", "/") != nil {
		t.Fatal("a targetRefs policy without a resolver must serve nothing, not every host")
	}
	if r := results[0]; r.Serving != compile.NotServed || len(r.Ancestors) != 1 || r.Ancestors[0].Reason != "Invalid" || !strings.Contains(r.Ancestors[0].Message, "write hosts and pathPrefixes") {
		t.Errorf("result %+v", r)
	}
}

func TestTargetRefsWithHostsRefused(t *testing.T) {
	t.Parallel()
	p := gen.CorsPolicy("p", gen.WithOrigins("https://app.example.com"), gen.WithHosts("api.example.com"), targets("HTTPRoute/shop", "HTTPRoute/shop", "Service/x"))
	_, _, err := compile.Compile(p)
	msg := compile.Message(err)
	for _, want := range []string{"mutually exclusive", "spec.targetRefs[1]", "listed once", "spec.targetRefs[2]", "write group: gateway.networking.k8s.io"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
}

// The last valid spec keeps serving with the current routes; a spec that
// moved from targetRefs to hosts and broke never serves every host.
func TestLastValidTargetRefs(t *testing.T) {
	t.Parallel()
	w := &world{gateways: map[string]*gwapiv1.Gateway{"infra/edge": gateway("https=*.example.com")},
		routes: map[string]*gwapiv1.HTTPRoute{"team/shop": route([]string{"shop.example.com"}, map[string][]string{"checkout": {"/"}})}}
	b := compile.NewBuilder()
	b.Resolve = w.resolve
	good := gen.CorsPolicy("p", gen.WithNamespace("team"), gen.WithOrigins("https://app.example.com"), targets("HTTPRoute/shop"))
	if got, _ := servedBy(b, []v1alpha1.CorsPolicy{*good}, "shop.example.com", "/"); got != "p" {
		t.Fatalf("not served: %q", got)
	}
	broken := gen.CorsPolicy("p", gen.WithNamespace("team"), gen.WithGeneration(2), gen.WithOrigins("https://App.example.com/"), gen.WithHosts("api.example.com"))
	got, results := servedBy(b, []v1alpha1.CorsPolicy{*broken}, "shop.example.com", "/")
	if got != "p" || results[0].Serving != compile.ServedLastValid {
		t.Fatalf("broken edit: served by %q, %v; want the last valid targetRefs spec", got, results[0].Serving)
	}
	if got, _ := servedBy(b, []v1alpha1.CorsPolicy{*broken}, fmt.Sprintf("other-%d.example.org", 1), "/"); got != "" {
		t.Errorf("the last valid spec widened to every host: served by %q", got)
	}
}

// Host ownership (Builder.Admit) is skipped for a spec with targetRefs, and
// only for one: an invalid edit that adds targetRefs to a refused hosts
// policy must not get its last valid hosts spec served.
func TestAdmitSkippedOnlyForServedTargetRefs(t *testing.T) {
	t.Parallel()
	w := &world{gateways: map[string]*gwapiv1.Gateway{"infra/edge": gateway("https=*.example.com")},
		routes: map[string]*gwapiv1.HTTPRoute{"team/shop": route([]string{"shop.example.com"}, map[string][]string{"checkout": {"/"}})}}
	b := compile.NewBuilder()
	b.Resolve = w.resolve
	asked := 0
	b.Admit = func(*v1alpha1.CorsPolicy, *table.Entry) error { asked++; return errors.New("no grant") }

	attached := gen.CorsPolicy("attached", gen.WithNamespace("team"), gen.WithOrigins("https://app.example.com"), targets("HTTPRoute/shop"))
	if got, _ := servedBy(b, []v1alpha1.CorsPolicy{*attached}, "shop.example.com", "/"); got != "attached" || asked != 0 {
		t.Fatalf("targetRefs policy: served by %q, Admit asked %d times; want served without asking", got, asked)
	}
	claim := gen.CorsPolicy("claim", gen.WithNamespace("team"), gen.WithOrigins("https://app.example.com"), gen.WithHosts("bank.example.com"))
	if got, _ := servedBy(b, []v1alpha1.CorsPolicy{*claim}, "bank.example.com", "/"); got != "" {
		t.Fatalf("refused hosts policy served by %q", got)
	}
	sneaky := gen.CorsPolicy("claim", gen.WithNamespace("team"), gen.WithGeneration(2), gen.WithOrigins("https://App.example.com/"), targets("HTTPRoute/shop"))
	got, results := servedBy(b, []v1alpha1.CorsPolicy{*sneaky}, "bank.example.com", "/")
	if got != "" || results[0].NotGranted == nil {
		t.Errorf("invalid targetRefs edit of a refused hosts policy: served by %q, NotGranted %v; want the last valid hosts spec still refused", got, results[0].NotGranted)
	}
}

// The same with the real Ownership, which Admit's fake above stands in for:
// an invalid targetRefs edit of a hosts policy that no grant covers must not
// make Ownership.Admit pass the last valid hosts spec that keeps serving.
func TestOwnershipAdmitsTheServedSpecNotTheCurrent(t *testing.T) {
	t.Parallel()
	w := &world{gateways: map[string]*gwapiv1.Gateway{"infra/edge": gateway("https=*.example.com")},
		routes: map[string]*gwapiv1.HTTPRoute{"team/shop": route([]string{"shop.example.com"}, map[string][]string{"checkout": {"/"}})}}
	b := compile.NewBuilder()
	own := compile.NewOwnership()
	b.Resolve, b.Admit, b.Grant = w.resolve, own.Admit, own.Grant
	build := func(p *v1alpha1.CorsPolicy) (string, []compile.Result) {
		own.Reset(nil, nil) // no grant at all
		return servedBy(b, []v1alpha1.CorsPolicy{*p}, "bank.example.com", "/")
	}
	claim := gen.CorsPolicy("claim", gen.WithNamespace("team"), gen.WithOrigins("https://app.example.com"), gen.WithHosts("bank.example.com"))
	if got, results := build(claim); got != "" || results[0].NotGranted == nil {
		t.Fatalf("ungranted hosts policy: served by %q, NotGranted %v; want refused", got, results[0].NotGranted)
	}
	sneaky := gen.CorsPolicy("claim", gen.WithNamespace("team"), gen.WithGeneration(2), gen.WithOrigins("https://App.example.com/"), targets("HTTPRoute/shop"))
	got, results := build(sneaky)
	if got != "" || results[0].Serving != compile.NotServed || results[0].NotGranted == nil {
		t.Errorf("invalid targetRefs edit: served by %q (%s), NotGranted %v; want the last valid hosts spec still refused", got, results[0].Serving, results[0].NotGranted)
	}
}

// A listener admits a route by its allowedRoutes: the route's namespace
// (Same by default, All, or a label Selector) and kind (HTTPRoute on HTTP
// and HTTPS listeners by default).
func TestListenerAllowedRoutes(t *testing.T) {
	t.Parallel()
	selector := &gwapiv1.RouteNamespaces{From: new(gwapiv1.NamespacesFromSelector),
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"edge": "public"}}}
	for _, tc := range []struct {
		desc   string
		change func(*gwapiv1.Listener)
		labels labels.Set
		served bool
	}{
		{desc: "All", change: func(*gwapiv1.Listener) {}, served: true},
		{desc: "Same (the default) with the route in another namespace", change: func(l *gwapiv1.Listener) { l.AllowedRoutes = nil }},
		{desc: "Selector matching the route's namespace", change: func(l *gwapiv1.Listener) { l.AllowedRoutes.Namespaces = selector }, labels: labels.Set{"edge": "public"}, served: true},
		{desc: "Selector not matching", change: func(l *gwapiv1.Listener) { l.AllowedRoutes.Namespaces = selector }, labels: labels.Set{"edge": "internal"}},
		{desc: "kinds without HTTPRoute", change: func(l *gwapiv1.Listener) {
			l.AllowedRoutes.Kinds = []gwapiv1.RouteGroupKind{{Kind: "GRPCRoute"}}
		}},
		{desc: "a TLS listener", change: func(l *gwapiv1.Listener) { l.Protocol = gwapiv1.TLSProtocolType }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			gw := gateway("https=*.example.com")
			tc.change(&gw.Spec.Listeners[0])
			w := &world{gateways: map[string]*gwapiv1.Gateway{"infra/edge": gw},
				routes:   map[string]*gwapiv1.HTTPRoute{"team/shop": route([]string{"shop.example.com"}, map[string][]string{"checkout": {"/"}})},
				nsLabels: map[string]labels.Set{"team": tc.labels}}
			b := compile.NewBuilder()
			b.Resolve = w.resolve
			p := gen.CorsPolicy("p", gen.WithNamespace("team"), gen.WithOrigins("https://app.example.com"), targets("HTTPRoute/shop"))
			if got, _ := servedBy(b, []v1alpha1.CorsPolicy{*p}, "shop.example.com", "/"); (got != "") != tc.served {
				t.Errorf("served by %q; want served %v", got, tc.served)
			}
		})
	}
}
