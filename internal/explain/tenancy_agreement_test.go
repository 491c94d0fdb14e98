package explain_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/explain"
	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/test/envoystandin"
	"github.com/corsgate/corsgate/test/gen"
)

// tenancyWorld is a shared Gateway ("infra/edge", *.example.com, routes
// from every namespace) with three teams' routes, each created at a known
// time: the attachments and grants explain must word as the server
// decides them.
func tenancyWorld() (compile.Resolver, []v1alpha1.CorsHostGrant) {
	all := gwapiv1.NamespacesFromAll
	host := gwapiv1.Hostname("*.example.com")
	gw := &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "edge", Generation: 1, CreationTimestamp: metav1.NewTime(gen.Epoch)}}
	gw.Spec.Listeners = []gwapiv1.Listener{{Name: "https", Port: 443, Protocol: gwapiv1.HTTPSProtocolType, Hostname: &host,
		AllowedRoutes: &gwapiv1.AllowedRoutes{Namespaces: &gwapiv1.RouteNamespaces{From: &all}}}}
	accepted := []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: 1}}
	gw.Status.Conditions = accepted
	route := func(ns, name string, age time.Duration, hostname string, prefixes ...string) *gwapiv1.HTTPRoute {
		r := &gwapiv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1, CreationTimestamp: metav1.NewTime(gen.Epoch.Add(age))}}
		infra := gwapiv1.Namespace("infra")
		parent := gwapiv1.ParentReference{Name: "edge", Namespace: &infra}
		r.Spec.ParentRefs = []gwapiv1.ParentReference{parent}
		if hostname != "" {
			r.Spec.Hostnames = []gwapiv1.Hostname{gwapiv1.Hostname(hostname)}
		}
		rule := gwapiv1.HTTPRouteRule{Name: new(gwapiv1.SectionName("main"))}
		for _, p := range prefixes {
			rule.Matches = append(rule.Matches, gwapiv1.HTTPRouteMatch{Path: &gwapiv1.HTTPPathMatch{Type: new(gwapiv1.PathMatchPathPrefix), Value: new(p)}})
		}
		r.Spec.Rules = []gwapiv1.HTTPRouteRule{rule}
		r.Status.Parents = []gwapiv1.RouteParentStatus{{ParentRef: parent, ControllerName: "example.com/gw", Conditions: accepted}}
		return r
	}
	routes := map[string]*gwapiv1.HTTPRoute{}
	for _, r := range []*gwapiv1.HTTPRoute{
		route("payments", "pay", time.Hour, "payments.example.com", "/v1"),
		route("orders", "steal", 2*time.Hour, "payments.example.com", "/v1/transfers", "/v1"),
		route("orders", "wide", 2*time.Hour, "", "/"),
		route("shared-b", "copy", 3*time.Hour, "shared.example.com", "/api"),
		route("shared-a", "orig", 4*time.Hour, "shared.example.com", "/api"),
	} {
		routes[r.Namespace+"/"+r.Name] = r
	}
	resolve := func(ns string, ref gwapiv1.LocalPolicyTargetReferenceWithSectionName) []compile.Attachment {
		r := routes[ns+"/"+string(ref.Name)]
		if r == nil {
			return []compile.Attachment{compile.TargetNotFound(ns, ref)}
		}
		return compile.ResolveRoute(r, ref.SectionName, func(string, string) *gwapiv1.Gateway { return gw }, nil, nil)
	}
	grant := func(name string, ns []string, hosts ...string) v1alpha1.CorsHostGrant {
		return v1alpha1.CorsHostGrant{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.CorsHostGrantSpec{Namespaces: ns, Hosts: hosts}}
	}
	return resolve, []v1alpha1.CorsHostGrant{
		grant("payments", []string{"payments"}, "payments.example.com"),
		grant("orders", []string{"orders"}, "orders.example.com"),
		grant("shared", []string{"shared-a", "shared-b"}, "shared.example.com"),
	}
}

// TestExplainAgreesOnTenancy: for attached policies, grants and precedence
// between teams, explain names the policy the ext_proc server decides by
// (each policy allows only its own origin, so the server's
// Access-Control-Allow-Origin says which decided), and the step it lost by.
func TestExplainAgreesOnTenancy(t *testing.T) {
	resolve, grants := tenancyWorld()
	attached := func(ns, name, route, section string, age time.Duration) filesource.Object {
		p := gen.CorsPolicy(name, gen.WithNamespace(ns), gen.WithOrigins("https://"+name+".test"), gen.WithMethods("PUT"), gen.WithCredentials(), gen.WithAge(age))
		ref := gwapiv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
			Group: v1alpha1.GatewayGroup, Kind: v1alpha1.KindHTTPRoute, Name: gwapiv1.ObjectName(route)}}
		if section != "" {
			ref.SectionName = new(gwapiv1.SectionName(section))
		}
		p.Spec.TargetRefs = []gwapiv1.LocalPolicyTargetReferenceWithSectionName{ref}
		return filesource.Object{Policy: *p}
	}
	hosts := func(ns, name, host, prefix string, age time.Duration) filesource.Object {
		p := gen.CorsPolicy(name, gen.WithNamespace(ns), gen.WithHosts(host), gen.WithPathPrefixes(prefix),
			gen.WithOrigins("https://"+name+".test"), gen.WithMethods("PUT"), gen.WithCredentials(), gen.WithAge(age))
		return filesource.Object{Policy: *p}
	}
	objs := []filesource.Object{
		hosts("payments", "victim", "payments.example.com", "/v1", 0),
		attached("payments", "victim-route", "pay", "", 5*time.Hour),
		attached("orders", "evil-rule", "steal", "main", 6*time.Hour),
		attached("orders", "evil-wide", "wide", "", 6*time.Hour),
		attached("shared-a", "a", "orig", "main", 6*time.Hour),
		attached("shared-b", "b", "copy", "", 7*time.Hour),
	}
	own := compile.NewOwnership()
	own.Reset(grants, nil)
	opts := explain.Options{Resolve: resolve, Admit: own.Admit, Grant: own.Grant}
	b := compile.NewBuilder()
	b.Resolve, b.Admit, b.Grant = opts.Resolve, opts.Admit, opts.Grant
	policies := make([]v1alpha1.CorsPolicy, len(objs))
	for i := range objs {
		policies[i] = objs[i].Policy
	}
	tbl, _ := b.Build(policies)
	sim := envoystandin.New(serve(t, tbl), envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{MessageTimeout: durationpb.New(time.Minute)}})

	for _, tc := range []struct {
		host, path string
		want       string // the deciding policy ("" none)
		lost       map[string]string
	}{
		// The victim's route-attached policy outranks its own hosts policy;
		// the orders team's routes are not granted the host at all.
		{host: "payments.example.com", path: "/v1/transfers", want: "payments/victim-route", lost: map[string]string{"payments/victim": "GEP-713"}},
		{host: "payments.example.com", path: "/v1", want: "payments/victim-route"},
		// A route without hostnames serves only what orders was granted.
		{host: "orders.example.com", path: "/x", want: "orders/evil-wide"},
		{host: "unclaimed.example.com", path: "/x", want: ""},
		// Both granted: the older route's namespace decides, though its
		// policy is younger and attached to the whole route.
		{host: "shared.example.com", path: "/api/x", want: "shared-b/b", lost: map[string]string{"shared-a/a": "another namespace"}},
	} {
		t.Run(tc.host+tc.path, func(t *testing.T) {
			res, err := explain.ExplainWith(objs, explain.Request{Method: "OPTIONS", URL: "https://" + tc.host + tc.path,
				Headers: []string{"Origin: https://probe.test", "Access-Control-Request-Method: PUT"}}, opts)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if res.Policy != nil {
				got = *res.Policy
			}
			if got != tc.want {
				t.Fatalf("explain names %q, want %q", got, tc.want)
			}
			for loser, why := range tc.lost {
				found := false
				for _, l := range res.Losers {
					if l.Policy == loser {
						found = true
						if !strings.Contains(l.Why, why) {
							t.Errorf("%s lost because %q; want it to say %q", loser, l.Why, why)
						}
					}
				}
				if !found {
					t.Errorf("%s is not among the losers %+v", loser, res.Losers)
				}
			}
			// The server: only the deciding policy's own origin is granted.
			for _, o := range objs {
				origin := "https://" + o.Policy.Name + ".test"
				r, err := sim.Do(context.Background(), envoystandin.Request{Method: "OPTIONS", Scheme: "https", Authority: tc.host, Path: tc.path,
					Headers: envoystandin.NewHeaders("origin", origin, "access-control-request-method", "PUT")}, envoystandin.Upstream{Status: 200})
				if err != nil {
					t.Fatal(err)
				}
				granted := corsView(r.Headers)["access-control-allow-origin"] == origin
				if want := o.Policy.Namespace+"/"+o.Policy.Name == tc.want; granted != want {
					t.Errorf("server grants %s: %v; explain says %s decides", origin, granted, fmt.Sprint(tc.want))
				}
			}
		})
	}
}
