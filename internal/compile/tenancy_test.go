package compile_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/test/gen"
)

// Tenancy on every path (docs/tenancy.md): CorsHostGrants bind policies
// attached through targetRefs as they bind hosts policies, and between two
// namespaces granted one host, the older claim decides an identical match,
// as the Gateway API routes it to the oldest route.

// teamRoute is HTTPRoute ns/name on infra/edge, accepted, created at
// epoch+age, with hostnames and one rule per prefix list (named r0, r1...);
// a nil prefix list is a rule without matches.
func teamRoute(ns, name string, age time.Duration, hostnames []string, rules ...[]string) *gwapiv1.HTTPRoute {
	r := route(hostnames, nil)
	r.Namespace, r.Name = ns, name
	r.CreationTimestamp = metav1.NewTime(gen.Epoch.Add(age))
	for i, prefixes := range rules {
		rule := gwapiv1.HTTPRouteRule{Name: new(gwapiv1.SectionName("r" + string(rune('0'+i))))}
		for _, p := range prefixes {
			rule.Matches = append(rule.Matches, gwapiv1.HTTPRouteMatch{Path: &gwapiv1.HTTPPathMatch{Type: new(gwapiv1.PathMatchPathPrefix), Value: new(p)}})
		}
		r.Spec.Rules = append(r.Spec.Rules, rule)
	}
	return r
}

func grant(name string, namespaces, hosts, prefixes []string) v1alpha1.CorsHostGrant {
	g := v1alpha1.CorsHostGrant{ObjectMeta: metav1.ObjectMeta{Name: name}}
	g.Spec.Namespaces, g.Spec.Hosts, g.Spec.PathPrefixes = namespaces, hosts, prefixes
	return g
}

// enforcing is a Builder with host ownership on over grants, resolving in w.
func enforcing(w *world, grants ...v1alpha1.CorsHostGrant) *compile.Builder {
	own := compile.NewOwnership()
	own.Reset(grants, nil)
	b := compile.NewBuilder()
	b.Resolve, b.Admit, b.Grant = w.resolve, own.Admit, own.Grant
	return b
}

func resultOf(t *testing.T, results []compile.Result, name string) compile.Result {
	t.Helper()
	for _, r := range results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no result for %s", name)
	return compile.Result{}
}

func TestGrantsBindAttachments(t *testing.T) {
	t.Parallel()
	payments := grant("payments", []string{"payments"}, []string{"payments.example.com"}, nil)
	victim := gen.CorsPolicy("api", gen.WithNamespace("payments"), gen.WithHosts("payments.example.com"), gen.WithPathPrefixes("/v1"),
		gen.WithOrigins("https://pay.example.com"), gen.WithAge(0))
	for _, tc := range []struct {
		desc   string
		grants []v1alpha1.CorsHostGrant
		route  *gwapiv1.HTTPRoute
		target string
		// served: "host path" → policy name ("" none).
		served map[string]string
		// reason is the attacker's: "HostNotGranted" (serves nothing) or
		// "PartiallyGranted".
		reason string
	}{
		{
			desc:   "a route for another team's host serves nothing (finding 1)",
			grants: []v1alpha1.CorsHostGrant{payments},
			route:  teamRoute("attack", "steal", time.Hour, []string{"payments.example.com"}, []string{"/v1/transfers"}),
			target: "HTTPRoute/steal",
			served: map[string]string{"payments.example.com /v1/transfers": "api"},
			reason: v1alpha1.ReasonHostNotGranted,
		},
		{
			desc:   "a rule (sectionName) of a copied route serves nothing either (finding 5)",
			grants: []v1alpha1.CorsHostGrant{payments},
			route:  teamRoute("attack", "steal", time.Hour, []string{"payments.example.com"}, []string{"/v1"}),
			target: "HTTPRoute/steal#r0",
			served: map[string]string{"payments.example.com /v1": "api"},
			reason: v1alpha1.ReasonHostNotGranted,
		},
		{
			desc: "a route without hostnames under a wildcard listener serves only the granted host (finding 3)",
			grants: []v1alpha1.CorsHostGrant{payments,
				grant("attack", []string{"attack"}, []string{"shop.example.com"}, nil)},
			route:  teamRoute("attack", "steal", time.Hour, nil, []string{"/"}),
			target: "HTTPRoute/steal",
			served: map[string]string{"payments.example.com /anything": "", "payments.example.com /v1": "api", "shop.example.com /": "p", "other.example.com /": ""},
			reason: v1alpha1.ReasonPartiallyGranted,
		},
		{
			desc: "a granted path prefix binds a route's matches (finding 6)",
			grants: []v1alpha1.CorsHostGrant{
				grant("www-blog", []string{"attack"}, []string{"www.example.com"}, []string{"/blog"}),
				grant("www-shop", []string{"shop"}, []string{"www.example.com"}, []string{"/shop"})},
			route:  teamRoute("attack", "steal", time.Hour, []string{"www.example.com"}, []string{"/shop/checkout", "/blog"}),
			target: "HTTPRoute/steal",
			served: map[string]string{"www.example.com /shop/checkout": "", "www.example.com /blog/post": "p"},
			reason: v1alpha1.ReasonPartiallyGranted,
		},
		{
			desc: "a rule without matches is narrowed to the granted prefix",
			grants: []v1alpha1.CorsHostGrant{
				grant("www-blog", []string{"attack"}, []string{"www.example.com"}, []string{"/blog"})},
			route:  teamRoute("attack", "steal", time.Hour, []string{"www.example.com"}, nil),
			target: "HTTPRoute/steal",
			served: map[string]string{"www.example.com /shop": "", "www.example.com /blog": "p", "www.example.com /": ""},
			reason: v1alpha1.ReasonPartiallyGranted,
		},
		{
			desc: "a grant prefix with a trailing slash cannot be served as a prefix, so it narrows to nothing (finding 8)",
			grants: []v1alpha1.CorsHostGrant{
				grant("www-blog", []string{"attack"}, []string{"www.example.com"}, []string{"/blog/"})},
			route:  teamRoute("attack", "steal", time.Hour, []string{"www.example.com"}, []string{"/blog"}),
			target: "HTTPRoute/steal",
			served: map[string]string{"www.example.com /blog": "", "www.example.com /blog/x": ""},
			reason: v1alpha1.ReasonHostNotGranted,
		},
		{
			desc:   "the platform's allHosts grant covers everything",
			grants: []v1alpha1.CorsHostGrant{{ObjectMeta: metav1.ObjectMeta{Name: "platform-all"}, Spec: v1alpha1.CorsHostGrantSpec{Namespaces: []string{"attack"}, AllHosts: true}}},
			route:  teamRoute("attack", "steal", time.Hour, nil, []string{"/x"}),
			target: "HTTPRoute/steal",
			served: map[string]string{"anything.example.com /x": "p"},
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			w := &world{gateways: map[string]*gwapiv1.Gateway{"infra/edge": gateway("https=*.example.com")},
				routes: map[string]*gwapiv1.HTTPRoute{tc.route.Namespace + "/" + tc.route.Name: tc.route}}
			b := enforcing(w, tc.grants...)
			attacker := gen.CorsPolicy("p", gen.WithNamespace("attack"), gen.WithOrigins("https://evil.example"), gen.WithCredentials(),
				targets(tc.target), gen.WithAge(2*time.Hour))
			objs := []v1alpha1.CorsPolicy{*victim, *attacker}
			tbl, results := b.Build(objs)
			for req, want := range tc.served {
				host, path, _ := strings.Cut(req, " ")
				got := ""
				if e := tbl.Lookup(host, path); e != nil {
					got = e.Name
				}
				if got != want {
					t.Errorf("%s: decided by %q, want %q", req, got, want)
				}
			}
			r := resultOf(t, results, "p")
			switch tc.reason {
			case v1alpha1.ReasonHostNotGranted:
				if r.NotGranted == nil || r.Serving != compile.NotServed {
					t.Fatalf("attacker: NotGranted %v, serving %s; want refused", r.NotGranted, r.Serving)
				}
				if msg := r.NotGranted.Error(); !strings.Contains(msg, "kubectl apply") || !strings.Contains(msg, `namespace "attack"`) {
					t.Errorf("the message does not say what to do: %s", msg)
				}
				for _, a := range r.Ancestors {
					if a.Reason != v1alpha1.ReasonHostNotGranted {
						t.Errorf("ancestor %s: reason %s, want %s (%s)", a.Ref.Name, a.Reason, v1alpha1.ReasonHostNotGranted, a.Message)
					}
				}
			case v1alpha1.ReasonPartiallyGranted:
				if r.PartlyGranted == nil || r.NotGranted != nil || r.Serving != compile.Served {
					t.Fatalf("attacker: PartlyGranted %v, NotGranted %v, serving %s; want served in part", r.PartlyGranted, r.NotGranted, r.Serving)
				}
				if msg := r.PartlyGranted.Error(); !strings.Contains(msg, "only for the hosts and path prefixes granted") {
					t.Errorf("partial message: %s", msg)
				}
				if len(r.Ancestors) == 0 || !strings.Contains(r.Ancestors[0].Message, "granted") {
					t.Errorf("the ancestor does not name what was cut: %+v", r.Ancestors)
				}
			default:
				if r.PartlyGranted != nil || r.NotGranted != nil {
					t.Errorf("attacker: PartlyGranted %v, NotGranted %v; want wholly granted", r.PartlyGranted, r.NotGranted)
				}
			}
		})
	}
}

// Between two namespaces granted one host, a route-attached policy decides
// only what its route would be routed (GEP-1016... HTTPRoute precedence: for
// identical matches, the oldest route, then namespace/name); attachment rank
// orders one namespace's policies (findings 2, 5, 7).
func TestPrecedenceBetweenTeams(t *testing.T) {
	t.Parallel()
	both := grant("shared", []string{"a", "b"}, []string{"shared.example.com"}, nil)
	hostsPolicy := func(ns, name string, age time.Duration) *v1alpha1.CorsPolicy {
		return gen.CorsPolicy(name, gen.WithNamespace(ns), gen.WithHosts("shared.example.com"), gen.WithPathPrefixes("/v1"),
			gen.WithOrigins("https://"+ns+".example"), gen.WithAge(age))
	}
	attached := func(ns, name, target string, age time.Duration) *v1alpha1.CorsPolicy {
		return gen.CorsPolicy(name, gen.WithNamespace(ns), gen.WithOrigins("https://"+ns+".example"), targets(target), gen.WithAge(age))
	}
	for _, tc := range []struct {
		desc     string
		routes   []*gwapiv1.HTTPRoute
		policies []*v1alpha1.CorsPolicy
		want     string
		lost     string // the loser's conflict names the winner
	}{
		{
			desc:     "a newer route's rule-level policy of another team loses to an older hosts policy",
			routes:   []*gwapiv1.HTTPRoute{teamRoute("b", "copy", 2*time.Hour, []string{"shared.example.com"}, []string{"/v1"})},
			policies: []*v1alpha1.CorsPolicy{hostsPolicy("a", "victim", 0), attached("b", "attacker", "HTTPRoute/copy#r0", 3*time.Hour)},
			want:     "victim", lost: "attacker",
		},
		{
			desc: "between routes, the older route's policy wins, whatever the rank",
			routes: []*gwapiv1.HTTPRoute{
				teamRoute("a", "orig", time.Hour, []string{"shared.example.com"}, []string{"/v1"}),
				teamRoute("b", "copy", 2*time.Hour, []string{"shared.example.com"}, []string{"/v1"})},
			policies: []*v1alpha1.CorsPolicy{attached("a", "victim", "HTTPRoute/orig", 5*time.Hour), attached("b", "attacker", "HTTPRoute/copy#r0", 3*time.Hour)},
			want:     "victim", lost: "attacker",
		},
		{
			desc:     "an older route of the other team is routed the match, so its policy decides",
			routes:   []*gwapiv1.HTTPRoute{teamRoute("b", "old", -time.Hour, []string{"shared.example.com"}, []string{"/v1"})},
			policies: []*v1alpha1.CorsPolicy{hostsPolicy("a", "hosts", 0), attached("b", "routed", "HTTPRoute/old", 3*time.Hour)},
			want:     "routed", lost: "hosts",
		},
		{
			desc:   "within one namespace, rank decides: a rule beats the namespace's older hosts policy",
			routes: []*gwapiv1.HTTPRoute{teamRoute("a", "mine", 2*time.Hour, []string{"shared.example.com"}, []string{"/v1"})},
			policies: []*v1alpha1.CorsPolicy{hostsPolicy("a", "hosts", 0), attached("a", "rule", "HTTPRoute/mine#r0", 3*time.Hour),
				attached("b", "other", "HTTPRoute/mine", 4*time.Hour)},
			want: "rule", lost: "hosts",
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			w := &world{gateways: map[string]*gwapiv1.Gateway{"infra/edge": gateway("https=*.example.com")}, routes: map[string]*gwapiv1.HTTPRoute{}}
			for _, r := range tc.routes {
				w.routes[r.Namespace+"/"+r.Name] = r
			}
			b := enforcing(w, both)
			var objs []v1alpha1.CorsPolicy
			for _, p := range tc.policies {
				objs = append(objs, *p)
			}
			tbl, results := b.Build(objs)
			e := tbl.Lookup("shared.example.com", "/v1/x")
			if e == nil || e.Name != tc.want {
				t.Fatalf("decided by %v, want %s", e, tc.want)
			}
			if c := tbl.Candidates("shared.example.com", "/v1/x"); len(c) == 0 || c[0].Entry != e {
				t.Errorf("Candidates[0] = %+v, want the entry Lookup returns", c)
			}
			loser := resultOf(t, results, tc.lost)
			if len(loser.Conflicts) == 0 || !strings.Contains(strings.Join(loser.Conflicts, " "), "/"+tc.want) {
				t.Errorf("%s's conflicts do not name %s: %q", tc.lost, tc.want, loser.Conflicts)
			}
		})
	}
}

func TestGatewayClasses(t *testing.T) {
	t.Parallel()
	gw := gateway("https=*.example.com")
	gw.Spec.GatewayClassName = "other"
	w := &world{gateways: map[string]*gwapiv1.Gateway{"infra/edge": gw},
		routes: map[string]*gwapiv1.HTTPRoute{"team/r": teamRoute("team", "r", 0, []string{"a.example.com"}, []string{"/"})}}
	for _, classes := range []compile.GatewayClasses{{"eg": true}, nil} {
		b := compile.NewBuilder()
		b.Resolve = func(ns string, ref gwapiv1.LocalPolicyTargetReferenceWithSectionName) []compile.Attachment {
			if ref.Kind == "Gateway" {
				return []compile.Attachment{compile.ResolveGateway(w.gateways["infra/edge"], nil, classes)}
			}
			return compile.ResolveRoute(w.routes[ns+"/"+string(ref.Name)], nil, func(string, string) *gwapiv1.Gateway { return gw }, nil, classes)
		}
		for _, target := range []string{"HTTPRoute/r", "Gateway/edge"} {
			p := gen.CorsPolicy("p", gen.WithNamespace("team"), gen.WithOrigins("https://app.example"), targets(target))
			tbl, results := b.Build([]v1alpha1.CorsPolicy{*p})
			served := tbl.Lookup("a.example.com", "/") != nil
			if served != (classes == nil) {
				t.Errorf("classes %v, %s: served %v", classes, target, served)
			}
			if classes != nil {
				a := results[0].Ancestors
				if len(a) != 1 || a[0].Reason != string(gwapiv1.PolicyReasonTargetNotFound) || !strings.Contains(a[0].Message, `GatewayClass "other"`) {
					t.Errorf("%s: ancestors %+v, want TargetNotFound naming the class", target, a)
				}
			}
		}
	}
}

func TestParseGatewayClasses(t *testing.T) {
	t.Parallel()
	if c, err := compile.ParseGatewayClasses("*"); c != nil || err != nil {
		t.Errorf(`"*" = %v, %v; want every class`, c, err)
	}
	if c, err := compile.ParseGatewayClasses(" eg, istio "); err != nil || len(c) != 2 || !c["eg"] || !c["istio"] {
		t.Errorf("= %v, %v", c, err)
	}
	if _, err := compile.ParseGatewayClasses(" , "); err == nil {
		t.Error("an empty list was taken")
	}
}

// A grant for "/blog/" covers only what is strictly under it; the table
// reads a policy's "/blog/" as "/blog", so admitting it would let the
// policy decide "/blog" itself (finding 8).
func TestGrantPrefixComparesAsTheTable(t *testing.T) {
	t.Parallel()
	own := compile.NewOwnership()
	own.Reset([]v1alpha1.CorsHostGrant{grant("blog", []string{"blog"}, []string{"www.example.com"}, []string{"/blog/"})}, nil)
	for prefix, admitted := range map[string]bool{"/blog/": false, "/blog": false, "/blog//": false, "/blog/x": true, "/blog/x/": true, "/blogs": false} {
		b := compile.NewBuilder()
		b.Admit = own.Admit
		p := gen.CorsPolicy("p"+strings.ReplaceAll(prefix, "/", "-"), gen.WithNamespace("blog"), gen.WithHosts("www.example.com"),
			gen.WithPathPrefixes(prefix), gen.WithOrigins("https://blog.example"))
		tbl, results := b.Build([]v1alpha1.CorsPolicy{*p})
		if got := results[0].NotGranted == nil; got != admitted {
			t.Errorf("prefix %q: admitted %v, want %v", prefix, got, admitted)
		}
		if !admitted && tbl.Lookup("www.example.com", "/blog") != nil {
			t.Errorf("prefix %q decides /blog", prefix)
		}
	}
}
