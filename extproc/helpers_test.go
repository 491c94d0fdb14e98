package extproc_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

// policy is one CorsPolicy as the tests write it: where it applies and its CORS
// fields, compiled by the real engine.
type policy struct {
	name     string
	hosts    []string
	prefixes []string
	cfg      cors.Config
}

// newStore compiles the policies with cors.Compile, builds a table with
// table.New and swaps it into a fresh store.
func newStore(t testing.TB, policies ...policy) *table.Store {
	t.Helper()
	entries := make([]table.Entry, 0, len(policies))
	for i, p := range policies {
		compiled, _, err := cors.Compile(p.cfg)
		if err != nil {
			t.Fatalf("policy %q does not compile: %v", p.name, err)
		}
		entries = append(entries, table.Entry{
			Namespace:    "default",
			Name:         p.name,
			Hosts:        p.hosts,
			PathPrefixes: p.prefixes,
			Created:      time.Unix(int64(i), 0),
			Policy:       compiled,
		})
	}
	tbl, conflicts := table.New(entries)
	if len(conflicts) > 0 {
		t.Fatalf("test policies conflict: %+v", conflicts)
	}
	var store table.Store
	store.Swap(tbl)
	return &store
}

// serve runs the ext_proc server (through extproc.Runner, as the binary does)
// on a loopback port and returns a client connection to it, stopped at
// cleanup.
func serve(t testing.TB, store *table.Store, opts ...extproc.Option) *grpc.ClientConn {
	t.Helper()
	conn, stop := serveUntil(t, store, opts...)
	t.Cleanup(stop)
	return conn
}

// serveUntil is serve with an explicit stop. stop closes the connection and
// stops the server gracefully, which waits for every stream handler to return;
// it may be called more than once.
func serveUntil(t testing.TB, store *table.Store, opts ...extproc.Option) (conn *grpc.ClientConn, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runner := &extproc.Runner{Server: extproc.NewServer(store, opts...), Listener: lis}
	done := make(chan error, 1)
	go func() { done <- runner.Start(ctx) }()
	conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatalf("dial: %v", err)
	}
	var once sync.Once
	return conn, func() {
		once.Do(func() {
			conn.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Runner.Start returned %v after its context ended; want nil", err)
			}
		})
	}
}

// recorder is an Observer that keeps what it saw.
type recorder struct {
	mu        sync.Mutex
	decisions []observed
}

type observed struct {
	policy string
	kind   cors.Kind
	action cors.Action
	reason cors.Reason
	detail string
	dryRun bool
}

func (r *recorder) ObservePhase(extproc.Phase, time.Duration) {}
func (r *recorder) ObserveStream(time.Duration)               {}

func (r *recorder) ObserveDecision(e *table.Entry, d cors.Decision, _ extproc.RequestInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decisions = append(r.decisions, observed{
		policy: e.Name, kind: d.Kind, action: d.Action, reason: d.Reason, detail: d.Detail, dryRun: d.DryRun,
	})
}

func (r *recorder) all() []observed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observed(nil), r.decisions...)
}

// Policies shared by the tests.
var (
	// appPolicy: credentialed CORS for app.example on api.example.com/api.
	appPolicy = policy{
		name:     "app",
		hosts:    []string{"api.example.com"},
		prefixes: []string{"/api"},
		cfg: cors.Config{
			AllowOrigins:     []string{"https://app.example"},
			AllowMethods:     []string{"PUT", "DELETE"},
			AllowHeaders:     []string{"X-Trace-Id", "Content-Type"},
			ExposeHeaders:    []string{"X-Request-Id"},
			MaxAge:           new(int32(600)),
			AllowCredentials: true,
		},
	}
	// forwardPolicy: denied preflights go upstream.
	forwardPolicy = policy{
		name:  "forward",
		hosts: []string{"forward.example.com"},
		cfg: cors.Config{
			AllowOrigins:       []string{"https://app.example"},
			UnmatchedPreflight: cors.PreflightForward,
		},
	}
	// dryRunPolicy decides but never acts.
	dryRunPolicy = policy{
		name:  "dryrun",
		hosts: []string{"dryrun.example.com"},
		cfg: cors.Config{
			AllowOrigins: []string{"https://app.example"},
			AllowMethods: []string{"PUT"},
			Mode:         cors.ModeDryRun,
		},
	}
	// exposeAllPolicy exposes "*" with credentials: expanded at the edge.
	exposeAllPolicy = policy{
		name:  "expose-all",
		hosts: []string{"expose.example.com"},
		cfg: cors.Config{
			AllowOrigins:     []string{"https://app.example"},
			ExposeHeaders:    []string{"*"},
			AllowCredentials: true,
		},
	}
)
