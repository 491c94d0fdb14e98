package compile_test

import (
	"fmt"
	"testing"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/test/gen"
)

// BenchmarkBuildOwned is BenchmarkBuild's steady state (10,000 policies of
// gen.Many, one changed) with host ownership on: 1,000 grants, each giving
// one of the 50 namespaces ten policies' hosts, loaded (Reset) and checked on
// every build, as the Kubernetes table builder does.
func BenchmarkBuildOwned(b *testing.B) {
	const n, grants = 10000, 1000
	objs := gen.Many(n)
	gs := make([]v1alpha1.CorsHostGrant, grants)
	for j := range gs {
		gs[j] = hostGrant(fmt.Sprintf("g%d", j), v1alpha1.CorsHostGrantSpec{Namespaces: []string{fmt.Sprintf("team-%d", j%50)}})
	}
	for i := range objs {
		g := &gs[i%grants]
		if g.Spec.Namespaces[0] != objs[i].Namespace {
			b.Fatalf("fixture: policy %d in %s, grant in %s", i, objs[i].Namespace, g.Spec.Namespaces[0])
		}
		g.Spec.Hosts = append(g.Spec.Hosts, objs[i].Spec.Hosts...)
	}
	nsLabels := map[string]map[string]string{}
	for i := range 50 {
		nsLabels[fmt.Sprintf("team-%d", i)] = map[string]string{"team": fmt.Sprint(i)}
	}
	builder := compile.NewBuilder()
	own := compile.NewOwnership()
	builder.Admit = own.Admit
	own.Reset(gs, nsLabels)
	if _, results := builder.Build(objs); results[n-1].NotGranted != nil {
		b.Fatalf("fixture: %v", results[n-1].NotGranted)
	}
	b.ReportAllocs()
	for b.Loop() {
		objs[0].Generation++
		own.Reset(gs, nsLabels)
		builder.Build(objs)
		own.Admitted()
	}
}

// BenchmarkBuildOwnedAttached is BenchmarkBuildOwned with 1,000 of the
// 10,000 policies attached to HTTPRoutes (one each, resolved from memory as
// the cache would serve them), side by side: attachments unchecked (before
// grants bound them) and narrowed by the grants (Builder.Grant).
func BenchmarkBuildOwnedAttached(b *testing.B) {
	const n, grants, routes = 10000, 1000, 1000
	objs := gen.Many(n)
	gs := make([]v1alpha1.CorsHostGrant, grants)
	for j := range gs {
		gs[j] = hostGrant(fmt.Sprintf("g%d", j), v1alpha1.CorsHostGrantSpec{Namespaces: []string{fmt.Sprintf("team-%d", j%50)}})
	}
	w := &world{gateways: map[string]*gwapiv1.Gateway{"infra/edge": gateway("https=")}, routes: map[string]*gwapiv1.HTTPRoute{}}
	for i := range objs {
		g := &gs[i%grants]
		g.Spec.Hosts = append(g.Spec.Hosts, objs[i].Spec.Hosts...)
		if i < routes {
			r := teamRoute(objs[i].Namespace, objs[i].Name, 0, objs[i].Spec.Hosts, objs[i].Spec.PathPrefixes)
			w.routes[r.Namespace+"/"+r.Name] = r
			objs[i].Spec.Hosts, objs[i].Spec.PathPrefixes = nil, nil
			targets("HTTPRoute/" + objs[i].Name)(&objs[i])
		}
	}
	for _, granted := range []bool{false, true} {
		b.Run(fmt.Sprintf("grants-bind-attachments=%v", granted), func(b *testing.B) {
			builder := compile.NewBuilder()
			builder.Resolve = w.resolve
			own := compile.NewOwnership()
			builder.Admit = own.Admit
			if granted {
				builder.Grant = own.Grant
			}
			own.Reset(gs, nil)
			tbl, results := builder.Build(objs)
			for _, r := range results {
				if r.NotGranted != nil || r.PartlyGranted != nil || r.Serving != compile.Served {
					b.Fatalf("fixture: %s %s %v %v", r.Key(), r.Serving, r.NotGranted, r.PartlyGranted)
				}
			}
			if tbl.Len() < n {
				b.Fatalf("fixture: %d entries", tbl.Len())
			}
			b.ReportAllocs()
			for b.Loop() {
				objs[n-1].Generation++
				own.Reset(gs, nil)
				builder.Build(objs)
				own.Admitted()
			}
		})
	}
}
