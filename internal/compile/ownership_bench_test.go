package compile_test

import (
	"fmt"
	"testing"

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
