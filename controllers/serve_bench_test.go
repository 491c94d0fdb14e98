package controllers_test

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
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/test/envoystandin"
)

// restConfig is the envtest API server's config, set by run (suite_test.go).
// The benchmark's background objects are created through a client of their
// own without client-side rate limiting: the suite's client, like every
// controller-runtime client, is limited to 20 requests per second, which
// would make creating 10,000 objects take eight minutes.
var restConfig *rest.Config

// changesPerRun is how many Create/Update calls one run of
// BenchmarkReconcileToServe times.
const changesPerRun = 200

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
	sim := serveExtProc(b)
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
				lat = append(lat, changes(b, ctx, sim, ns, run)...)
				run++
			}
			slowest := slices.Index(lat, slices.Max(lat))
			b.Logf("slowest change: #%d of run %d (a %s), %v", slowest%changesPerRun, slowest/changesPerRun,
				[]string{"Create", "Update"}[slowest%2], lat[slowest])
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[(len(lat)*99+99)/100-1]), "p99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
			b.ReportMetric(setupTook.Seconds(), "setup-s")

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

// changes makes changesPerRun changes in ns and returns how long each took
// to change the ext_proc answer. Even changes create a policy for a new host
// and origin; odd ones point the policy just created at another origin.
func changes(b *testing.B, ctx context.Context, sim *envoystandin.Sim, ns string, run int) []time.Duration {
	lat := make([]time.Duration, 0, changesPerRun)
	var host, name string
	for i := range changesPerRun {
		origin := fmt.Sprintf("https://r%d-c%d.example.com", run, i)
		start := time.Now()
		if i%2 == 0 {
			name = fmt.Sprintf("r%d-p%d", run, i)
			host = fmt.Sprintf("%s.%s.serve.example.com", name, ns)
			if err := k8s.Create(ctx, newPolicy(ns, name, host, origin)); err != nil {
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

// waitAllowed asks the ext_proc server, through the stand-in, for a
// preflight from origin to host until it is allowed (a 204 with
// Access-Control-Allow-Origin: origin). A minute without is a failure.
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
			b.Fatalf("preflight from %s to %s still answered %d %v a minute after the change", origin, host, res.Status, res.Headers)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// serveExtProc serves the suite's table store over real gRPC on loopback and
// returns a stand-in Envoy connected to it.
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

// createBackground creates n policies in ns, 16 calls in flight, each with a
// host and origin of its own, and waits until the served table has them all.
func createBackground(b *testing.B, ns string, n int) {
	ctx := context.Background()
	cfg := rest.CopyConfig(restConfig)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limiting
	fast, err := client.New(cfg, client.Options{Scheme: k8s.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	before := store.Load().Len()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() != nil {
					return
				}
				name := fmt.Sprintf("bg-%d", i)
				p := newPolicy(ns, name, fmt.Sprintf("%s.%s.bg.example.com", name, ns), fmt.Sprintf("https://bg%d.example.com", i))
				p.Spec.PathPrefixes = []string{"/v1", "/v2"}
				p.ObjectMeta.Labels = map[string]string{"corsgate.io/bench": "background"}
				err := retry.OnError(retry.DefaultBackoff, func(error) bool { return true }, func() error {
					err := fast.Create(ctx, p)
					if apierrors.IsAlreadyExists(err) {
						return nil
					}
					return err
				})
				if err != nil {
					failed.Store(fmt.Errorf("creating %s: %w", name, err))
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
