package compile_test

import (
	"fmt"
	"testing"

	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/test/gen"
)

// BenchmarkBuild measures what the table builder does on every change: a
// full rebuild from all objects. cold compiles every policy (start-up);
// one-changed is the steady state, where unchanged objects reuse their
// compile (same UID and generation).
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{100, 10000} {
		objs := gen.Many(n)
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
