package hostgrant_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/test/envoystandin"
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
	sim := serveExtProc(b)
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
				lat = append(lat, changes(b, ctx, sim, ns, run)...)
				run++
			}
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[(len(lat)*99+99)/100-1]), "p99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
			b.ReportMetric(setupTook.Seconds(), "setup-s")
		})
	}
}

const changesPerRun = 200

// changes: even changes create a policy for a new host under the
// namespace's grant, odd ones point it at another origin.
func changes(b *testing.B, ctx context.Context, sim *envoystandin.Sim, ns string, run int) []time.Duration {
	lat := make([]time.Duration, 0, changesPerRun)
	var host, name string
	for i := range changesPerRun {
		origin := fmt.Sprintf("https://r%d-c%d.example.com", run, i)
		start := time.Now()
		if i%2 == 0 {
			name = fmt.Sprintf("r%d-p%d", run, i)
			host = fmt.Sprintf("%s.%s.serve.example.com", name, ns)
			p := &v1alpha1.CorsPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: v1alpha1.CorsPolicySpec{Hosts: []string{host}, AllowOrigins: []string{origin}}}
			if err := k8s.Create(ctx, p); err != nil {
				b.Fatal(err)
			}
		} else {
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				var p v1alpha1.CorsPolicy
				if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
					return err
				}
				p.Spec.AllowOrigins = []string{origin}
				return k8s.Update(ctx, &p)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		waitAllowed(b, ctx, sim, host, origin)
		lat = append(lat, time.Since(start))
	}
	return lat
}

func waitAllowed(b *testing.B, ctx context.Context, sim *envoystandin.Sim, host, origin string) {
	req := envoystandin.Request{Method: "OPTIONS", Authority: host, Path: "/",
		Headers: envoystandin.NewHeaders("origin", origin, "access-control-request-method", "GET")}
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := sim.Do(ctx, req, envoystandin.Upstream{Status: 404})
		if err != nil {
			b.Fatal(err)
		}
		if res.Status == 204 && res.Headers.Get("access-control-allow-origin") == origin {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("preflight from %s to %s still answered %d a minute after the change", origin, host, res.Status)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func serveExtProc(b testing.TB) *envoystandin.Sim {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer(extproc.ServerOptions()...)
	extprocv3.RegisterExternalProcessorServer(gs, extproc.NewServer(store))
	go func() { _ = gs.Serve(lis) }()
	b.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return envoystandin.New(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{
		AllowModeOverride: true, MessageTimeout: durationpb.New(10 * time.Second),
	}})
}

// createOwnedBackground creates grants CorsHostGrants, grant j giving
// namespace j%10 the hosts *.g<j>.bg.example.com, and n policies, policy i
// in namespace i%10 for p<i>.g<i%grants>.bg.example.com under /v1 and /v2,
// 16 calls in flight without client-side rate limiting; and waits until the
// table serves them all (every one admitted).
func createOwnedBackground(b *testing.B, n, grants int) {
	ctx := context.Background()
	cfg := rest.CopyConfig(restConfig)
	cfg.QPS, cfg.Burst = -1, 0
	fast, err := client.New(cfg, client.Options{Scheme: k8s.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
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
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(objs) || failed.Load() != nil {
					return
				}
				err := retry.OnError(retry.DefaultBackoff, func(error) bool { return true }, func() error {
					err := fast.Create(ctx, objs[i])
					if apierrors.IsAlreadyExists(err) {
						return nil
					}
					return err
				})
				if err != nil {
					failed.Store(fmt.Errorf("creating %s: %w", objs[i].GetName(), err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for store.Load().Len() < before+n {
		if time.Now().After(deadline) {
			b.Fatalf("table holds %d policies five minutes after creating %d more than %d", store.Load().Len(), n, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
