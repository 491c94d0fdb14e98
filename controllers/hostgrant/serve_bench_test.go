package hostgrant_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/test/servebench"
)

// BenchmarkReconcileToServeOwned is the controllers package's
// BenchmarkReconcileToServe with host ownership on: from a CorsPolicy Create
// or Update call returning to the ext_proc answer changing, through the
// Envoy stand-in, for 200 changes one at a time; with no other objects, and
// with 10,000 other policies in 10 namespaces admitted by 1,000
// CorsHostGrants (ten policies each). Run with
//
//	go test -run '^$' -bench ReconcileToServeOwned -benchtime 1x ./controllers/hostgrant/
func BenchmarkReconcileToServeOwned(b *testing.B) {
	sim := servebench.ServeExtProc(b, store)
	for _, bg := range []struct{ objects, grants int }{{0, 0}, {10000, 1000}} {
		b.Run(fmt.Sprintf("objects=%d/grants=%d", bg.objects, bg.grants), func(b *testing.B) {
			ctx := context.Background()
			ns := namespace(b, nil)
			createGrant(b, ns+"-serve", v1alpha1.CorsHostGrantSpec{Namespaces: []string{ns}, Hosts: []string{"*." + ns + ".serve.example.com"}})
			setup := time.Now()
			if bg.objects > 0 {
				createOwnedBackground(b, bg.objects, bg.grants)
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
// table serves them all (every one admitted).
func createOwnedBackground(b *testing.B, n, grants int) {
	namespaces := make([]string, 10)
	for i := range namespaces {
		namespaces[i] = namespace(b, nil)
	}
	before := store.Load().Len()
	objs := make([]client.Object, 0, grants+n)
	for j := range grants {
		objs = append(objs, &v1alpha1.CorsHostGrant{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%s-%d", namespaces[0], j)},
			Spec: v1alpha1.CorsHostGrantSpec{Namespaces: []string{namespaces[j%10]}, Hosts: []string{fmt.Sprintf("*.g%d.bg.example.com", j)}}})
	}
	for i := range n {
		objs = append(objs, &v1alpha1.CorsPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: namespaces[i%10], Name: fmt.Sprintf("bg-%d", i)},
			Spec: v1alpha1.CorsPolicySpec{Hosts: []string{fmt.Sprintf("p%d.g%d.bg.example.com", i, i%grants)}, PathPrefixes: []string{"/v1", "/v2"},
				AllowOrigins: []string{fmt.Sprintf("https://bg%d.example.com", i)}}})
	}
	servebench.CreateAll(b, restConfig, k8s.Scheme(), objs)
	servebench.WaitServed(b, store, before+n)
}
