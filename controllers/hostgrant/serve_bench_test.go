package hostgrant_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/test/gen"
	"github.com/corsgate/corsgate/test/servebench"
)

// BenchmarkReconcileToServeOwned is the controllers package's
// BenchmarkReconcileToServe with host ownership on: from a CorsPolicy Create
// or Update call returning to the ext_proc answer changing, through the
// Envoy stand-in, for 200 changes one at a time; with no other objects, and
// with 10,000 other policies in 10 namespaces admitted by 1,000
// CorsHostGrants (ten policies each), 1,000 of them attached with targetRefs
// to 1,000 HTTPRoutes that a Gateway accepted (every build resolves them).
// Run with
//
//	go test -run '^$' -bench ReconcileToServeOwned -benchtime 1x ./controllers/hostgrant/
func BenchmarkReconcileToServeOwned(b *testing.B) {
	sim := servebench.ServeExtProc(b, store)
	for _, bg := range []struct{ objects, grants, routes int }{{0, 0, 0}, {10000, 1000, 1000}} {
		b.Run(fmt.Sprintf("objects=%d/grants=%d/routes=%d", bg.objects, bg.grants, bg.routes), func(b *testing.B) {
			ctx := context.Background()
			ns := namespace(b, nil)
			createGrant(b, ns+"-serve", v1alpha1.CorsHostGrantSpec{Namespaces: []string{ns}, Hosts: []string{"*." + ns + ".serve.example.com"}})
			setup := time.Now()
			if bg.objects > 0 {
				createOwnedBackground(b, bg.objects, bg.grants, bg.routes)
			}
			setupTook := time.Since(setup)
			var lat []time.Duration
			run := 0
			for b.Loop() {
				lat = append(lat, servebench.Changes(b, ctx, k8s, sim, ns, run)...)
				run++
			}
			servebench.Report(b, lat, setupTook)
		})
	}
}

// createOwnedBackground creates grants CorsHostGrants, grant j giving
// namespace j%10 the hosts *.g<j>.bg.example.com, and n policies, policy i
// in namespace i%10 for p<i>.g<i%grants>.bg.example.com under /v1 and /v2,
// 16 calls in flight without client-side rate limiting; and waits until the
// table serves them all (every one admitted). The first routes of the n
// policies select the same host and paths through targetRefs instead: each
// attaches to an HTTPRoute of its own in its namespace, for that host with
// /v1 and /v2 PathPrefix matches, under one shared Gateway (class eg,
// listener *.bg.example.com admitting every namespace) that, like the
// routes, is marked Accepted at its generation as its controller would.
func createOwnedBackground(b *testing.B, n, grants, routes int) {
	namespaces := make([]string, 10)
	for i := range namespaces {
		namespaces[i] = namespace(b, nil)
	}
	before := store.Load().Len()
	objs := make([]client.Object, 0, grants+n+routes+1)
	for j := range grants {
		objs = append(objs, &v1alpha1.CorsHostGrant{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%s-%d", namespaces[0], j)},
			Spec: v1alpha1.CorsHostGrantSpec{Namespaces: []string{namespaces[j%10]}, Hosts: []string{fmt.Sprintf("*.g%d.bg.example.com", j)}}})
	}
	var statuses []client.Object
	if routes > 0 {
		gw := benchGateway(namespaces[0])
		servebench.CreateAll(b, restConfig, k8s.Scheme(), []client.Object{gw})
		gw.Status.Conditions = gen.AcceptedAt(gw.Generation)
		servebench.UpdateStatusAll(b, restConfig, k8s.Scheme(), []client.Object{gw})
		for i := range routes {
			r := benchRoute(namespaces[i%10], fmt.Sprintf("bg-%d", i), gw, fmt.Sprintf("p%d.g%d.bg.example.com", i, i%grants))
			objs = append(objs, r)
			statuses = append(statuses, r)
		}
	}
	for i := range n {
		p := gen.CorsPolicy(fmt.Sprintf("bg-%d", i), gen.WithNamespace(namespaces[i%10]),
			gen.WithHosts(fmt.Sprintf("p%d.g%d.bg.example.com", i, i%grants)), gen.WithPathPrefixes("/v1", "/v2"),
			gen.WithOrigins(fmt.Sprintf("https://bg%d.example.com", i)))
		if i < routes {
			p.Spec.Hosts, p.Spec.PathPrefixes = nil, nil
			p.Spec.TargetRefs = []gwapiv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
				Group: v1alpha1.GatewayGroup, Kind: v1alpha1.KindHTTPRoute, Name: gwapiv1.ObjectName(p.Name)}}}
		}
		objs = append(objs, p)
	}
	servebench.CreateAll(b, restConfig, k8s.Scheme(), objs)
	for _, obj := range statuses {
		r := obj.(*gwapiv1.HTTPRoute)
		r.Status.Parents = []gwapiv1.RouteParentStatus{{ParentRef: r.Spec.ParentRefs[0], ControllerName: "example.com/gateway-controller",
			Conditions: gen.AcceptedAt(r.Generation)}}
	}
	servebench.UpdateStatusAll(b, restConfig, k8s.Scheme(), statuses)
	servebench.WaitServed(b, store, before+n)
}

// benchGateway is the Gateway the background routes attach to.
func benchGateway(ns string) *gwapiv1.Gateway {
	return &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench"}, Spec: gwapiv1.GatewaySpec{
		GatewayClassName: "eg",
		Listeners: []gwapiv1.Listener{{Name: "http", Port: 80, Protocol: gwapiv1.HTTPProtocolType, Hostname: new(gwapiv1.Hostname("*.bg.example.com")),
			AllowedRoutes: &gwapiv1.AllowedRoutes{Namespaces: &gwapiv1.RouteNamespaces{From: new(gwapiv1.NamespacesFromAll)}}}},
	}}
}

// benchRoute is an HTTPRoute under gw for host, /v1 and /v2.
func benchRoute(ns, name string, gw *gwapiv1.Gateway, host string) *gwapiv1.HTTPRoute {
	r := &gwapiv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	r.Spec.ParentRefs = []gwapiv1.ParentReference{{Name: gwapiv1.ObjectName(gw.Name), Namespace: new(gwapiv1.Namespace(gw.Namespace))}}
	r.Spec.Hostnames = []gwapiv1.Hostname{gwapiv1.Hostname(host)}
	var matches []gwapiv1.HTTPRouteMatch
	for _, p := range []string{"/v1", "/v2"} {
		matches = append(matches, gwapiv1.HTTPRouteMatch{Path: &gwapiv1.HTTPPathMatch{Type: new(gwapiv1.PathMatchPathPrefix), Value: new(p)}})
	}
	r.Spec.Rules = []gwapiv1.HTTPRouteRule{{Matches: matches,
		BackendRefs: []gwapiv1.HTTPBackendRef{{BackendRef: gwapiv1.BackendRef{BackendObjectReference: gwapiv1.BackendObjectReference{Name: "app", Port: new(gwapiv1.PortNumber(8080))}}}}}}
	return r
}
