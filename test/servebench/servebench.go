// Package servebench is the shared half of the reconcile-to-serve
// benchmarks (controllers and controllers/hostgrant): the changes made
// through a real API server, the wait for the ext_proc answer to change,
// and the ext_proc server the Envoy stand-in asks. Tests only.
package servebench

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
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/table"
	"github.com/corsgate/corsgate/test/envoystandin"
)

// ChangesPerRun is how many changes one benchmark iteration makes.
const ChangesPerRun = 200

// Changes makes ChangesPerRun changes in ns through c and returns how long
// each took to change the ext_proc answer. Even changes create a policy for
// a new host (<name>.<ns>.serve.example.com) and origin; odd ones point the
// policy just created at another origin.
func Changes(b *testing.B, ctx context.Context, c client.Client, sim *envoystandin.Sim, ns string, run int) []time.Duration {
	lat := make([]time.Duration, 0, ChangesPerRun)
	var host, name string
	for i := range ChangesPerRun {
		origin := fmt.Sprintf("https://r%d-c%d.example.com", run, i)
		start := time.Now()
		if i%2 == 0 {
			name = fmt.Sprintf("r%d-p%d", run, i)
			host = fmt.Sprintf("%s.%s.serve.example.com", name, ns)
			p := &v1alpha1.CorsPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: v1alpha1.CorsPolicySpec{Hosts: []string{host}, AllowOrigins: []string{origin}}}
			if err := c.Create(ctx, p); err != nil {
				b.Fatal(err)
			}
		} else {
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				var p v1alpha1.CorsPolicy
				if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
					return err
				}
				p.Spec.AllowOrigins = []string{origin}
				return c.Update(ctx, &p)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		WaitAllowed(b, ctx, sim, host, origin)
		lat = append(lat, time.Since(start))
	}
	return lat
}

// WaitAllowed asks the ext_proc server, through the stand-in, for a
// preflight from origin to host until it is allowed (a 204 with
// Access-Control-Allow-Origin: origin). A minute without is a failure.
func WaitAllowed(tb testing.TB, ctx context.Context, sim *envoystandin.Sim, host, origin string) {
	tb.Helper()
	req := envoystandin.Request{Method: "OPTIONS", Authority: host, Path: "/",
		Headers: envoystandin.NewHeaders("origin", origin, "access-control-request-method", "GET")}
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := sim.Do(ctx, req, envoystandin.Upstream{Status: 404})
		if err != nil {
			tb.Fatal(err)
		}
		if res.Status == 204 && res.Headers.Get("access-control-allow-origin") == origin {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("preflight from %s to %s still answered %d %v a minute after the change", origin, host, res.Status, res.Headers)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// ServeExtProc serves store over real gRPC on loopback, through
// extproc.Runner as the binary does, and returns a stand-in Envoy connected
// to it.
func ServeExtProc(tb testing.TB, store *table.Store) *envoystandin.Sim {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&extproc.Runner{Server: extproc.NewServer(store), Listener: lis}).Start(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("the ext_proc server: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return envoystandin.New(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{
		AllowModeOverride: true, MessageTimeout: durationpb.New(10 * time.Second),
	}})
}

// Report sorts lat and reports its p50, p99 and maximum in milliseconds, and
// the setup time in seconds.
func Report(b *testing.B, lat []time.Duration, setup time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[(len(lat)*99+99)/100-1]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(setup.Seconds(), "setup-s")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// CreateAll creates objs, 16 calls in flight, with a client of its own
// without client-side rate limiting (a controller-runtime client's 20
// requests/s would make creating 10,000 objects take eight minutes). An
// object that already exists counts as created; other errors are retried
// with client-go's default backoff, then fail the benchmark. Each created
// object is updated in place with what the API server returned (its
// generation and resourceVersion, for UpdateStatusAll).
func CreateAll(b *testing.B, cfg *rest.Config, scheme *runtime.Scheme, objs []client.Object) {
	b.Helper()
	each(b, cfg, scheme, objs, "creating", func(ctx context.Context, c client.Client, obj client.Object) error {
		err := c.Create(ctx, obj)
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}

// UpdateStatusAll writes the status of objs, as CreateAll creates them: a
// Gateway controller accepting 1,000 routes, say. Each object carries the
// status to write and the resourceVersion CreateAll left in it.
func UpdateStatusAll(b *testing.B, cfg *rest.Config, scheme *runtime.Scheme, objs []client.Object) {
	b.Helper()
	each(b, cfg, scheme, objs, "writing the status of", func(ctx context.Context, c client.Client, obj client.Object) error {
		return c.Status().Update(ctx, obj)
	})
}

// each calls call for every object, 16 in flight, through a client without
// client-side rate limiting, retrying errors with client-go's default
// backoff.
func each(b *testing.B, cfg *rest.Config, scheme *runtime.Scheme, objs []client.Object, what string,
	call func(context.Context, client.Client, client.Object) error) {
	b.Helper()
	ctx := context.Background()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	fast, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(objs) || failed.Load() != nil {
					return
				}
				err := retry.OnError(retry.DefaultBackoff, func(error) bool { return true }, func() error {
					return call(ctx, fast, objs[i])
				})
				if err != nil {
					failed.Store(fmt.Errorf("%s %s: %w", what, objs[i].GetName(), err))
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// WaitServed waits, up to five minutes, until the table served from store
// holds at least want policies.
func WaitServed(b *testing.B, store *table.Store, want int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for store.Load().Len() < want {
		if time.Now().After(deadline) {
			b.Fatalf("table holds %d policies five minutes into the wait, want %d", store.Load().Len(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
