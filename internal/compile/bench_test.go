package compile_test

import (
	"fmt"
	"testing"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
)

func manyObjects(n int) []v1alpha1.CorsPolicy {
	objs := make([]v1alpha1.CorsPolicy, n)
	for i := range objs {
		hosts := make([]string, 10)
		for j := range hosts {
			if j%2 == 0 {
				hosts[j] = fmt.Sprintf("api%d-%d.example.com", i, j)
			} else {
				hosts[j] = fmt.Sprintf("*.svc%d-%d.example.net", i, j)
			}
		}
		objs[i] = obj(fmt.Sprintf("p%d", i), 1, i, v1alpha1.CorsPolicySpec{
			Hosts: hosts, PathPrefixes: []string{"/v1", "/v2/admin"},
			AllowOrigins: []string{fmt.Sprintf("https://app%d.example.com", i), "https://*.tenants.example.com"},
			AllowMethods: []string{"PUT", "DELETE"}, AllowHeaders: []string{"x-foo"}, AllowCredentials: true,
		})
	}
	return objs
}

// BenchmarkBuild measures what the table builder does on every change: a
// full rebuild from all objects. cold compiles every policy (start-up);
// one-changed is the steady state, where unchanged objects reuse their
// compile (same UID and generation).
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{100, 10000} {
		objs := manyObjects(n)
		b.Run(fmt.Sprintf("policies=%d/cold", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				compile.NewBuilder().Build(objs)
			}
		})
		b.Run(fmt.Sprintf("policies=%d/one-changed", n), func(b *testing.B) {
			b.ReportAllocs()
			builder := compile.NewBuilder()
			builder.Build(objs)
			for b.Loop() {
				objs[0].Generation++
				builder.Build(objs)
			}
		})
	}
}
