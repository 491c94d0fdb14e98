package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/test/servebench"
)

// restConfig is the envtest API server's config, set by run (suite_test.go).
// The benchmark's background objects are created through a client of their
// own without client-side rate limiting: the suite's client, like every
// controller-runtime client, is limited to 20 requests per second, which
// would make creating 10,000 objects take eight minutes.
var restConfig *rest.Config

// BenchmarkReconcileToServe measures reconcile-to-serve latency end to end:
// from a CorsPolicy Create or Update call returning to the answer of the
// ext_proc server (real gRPC on loopback, asked through the Envoy stand-in)
// changing: API server, watch, informer, coalesced table rebuild, atomic swap,
// next stream. Each run makes 200 changes, Creates and Updates in turn, one
// at a time, and reports their p50 and p99 (ms), with objects=0 and with
// 10,000 other CorsPolicy objects present (their creation, with 16 calls in
// flight, and the table catching up, is reported as setup-s). Run with
//
//	go test -run '^$' -bench ReconcileToServe -benchtime 1x ./controllers/
//
// (needs KUBEBUILDER_ASSETS, as `make test` sets it).
func BenchmarkReconcileToServe(b *testing.B) {
	sim := servebench.ServeExtProc(b, store)
	for _, background := range []int{0, 10000} {
		b.Run(fmt.Sprintf("objects=%d", background), func(b *testing.B) {
			ctx := context.Background()
			ns := namespace(b)
			setup := time.Now()
			if background > 0 {
				createBackground(b, ns, background)
			}
			setupTook := time.Since(setup)

			var lat []time.Duration
			run := 0
			for b.Loop() {
				lat = append(lat, servebench.Changes(b, ctx, k8s, sim, ns, run)...)
				run++
			}
			slowest := slices.Index(lat, slices.Max(lat))
			b.Logf("slowest change: #%d of run %d (a %s), %v", slowest%servebench.ChangesPerRun, slowest/servebench.ChangesPerRun,
				[]string{"Create", "Update"}[slowest%2], lat[slowest])
			servebench.Report(b, lat, setupTook)

			b.StopTimer()
			// Best effort: leave the table as small as it was for whatever
			// runs next. Deleting 10,000 objects in one call can outlast the
			// API server's request timeout; the deletion goes on regardless.
			if err := k8s.DeleteAllOf(ctx, &v1alpha1.CorsPolicy{}, client.InNamespace(ns)); err != nil {
				b.Logf("cleaning up %s: %v", ns, err)
			}
		})
	}
}

// createBackground creates n policies in ns, 16 calls in flight, each with a
// host and origin of its own, and waits until the served table has them all.
func createBackground(b *testing.B, ns string, n int) {
	before := store.Load().Len()
	objs := make([]client.Object, n)
	for i := range objs {
		name := fmt.Sprintf("bg-%d", i)
		p := newPolicy(ns, name, fmt.Sprintf("%s.%s.bg.example.com", name, ns), fmt.Sprintf("https://bg%d.example.com", i))
		p.Spec.PathPrefixes = []string{"/v1", "/v2"}
		p.ObjectMeta.Labels = map[string]string{"corsgate.io/bench": "background"}
		objs[i] = p
	}
	servebench.CreateAll(b, restConfig, k8s.Scheme(), objs)
	servebench.WaitServed(b, store, before+n)
}
