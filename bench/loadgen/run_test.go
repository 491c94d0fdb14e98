package loadgen_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"

	"github.com/corsgate/corsgate/bench/loadgen"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/extprocwire"
	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/table"
)

// patient is the load's filter with a message timeout long enough that a
// loaded test machine does not turn slow replies into 504s.
var patient = loadgen.FilterConfig(30 * time.Second)

// serve runs srv on loopback for the test's lifetime.
func serve(t *testing.T, srv extprocv3.ExternalProcessorServer) string {
	t.Helper()
	gs := grpc.NewServer(extproc.ServerOptions()...)
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	return listen(t, gs)
}

// serveWireNoop runs loadgen.WireNoop on loopback, as `loadgen serve-noop
// -codec wire` does.
func serveWireNoop(t *testing.T) string {
	t.Helper()
	gs := grpc.NewServer(append(extproc.ServerOptions(), extprocwire.ServerOption())...)
	loadgen.RegisterWireNoop(gs)
	return listen(t, gs)
}

// serveRunner runs srv as the binary does, through extproc.Runner (the wire
// path).
func serveRunner(t *testing.T, srv *extproc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&extproc.Runner{Server: srv, Listener: lis}).Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return lis.Addr().String()
}

func listen(t *testing.T, gs *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// corsgate is the ext_proc server over loadgen.Policies, loaded the way
// `corsgate --policies` loads them.
func corsgate(t *testing.T) *extproc.Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policies.yaml")
	if err := os.WriteFile(path, []byte(loadgen.Policies), 0o644); err != nil {
		t.Fatal(err)
	}
	store := &table.Store{}
	if err := filesource.New(path, store, logr.Discard()).Load(); err != nil {
		t.Fatal(err)
	}
	if store.Load().Len() != 2 {
		t.Fatalf("loaded %d policies, want 2", store.Load().Len())
	}
	return extproc.NewServer(store)
}

// TestMixes runs every mix briefly against corsgate (through Runner, as the
// binary serves it) and both no-op servers, and
// checks that each answer is the expected one, and that every server costs
// the same number of round trips per request: the comparison depends on it.
func TestMixes(t *testing.T) {
	t.Parallel()
	cg := func(m loadgen.Mix) loadgen.Expect { return m.Corsgate }
	noop := func(m loadgen.Mix) loadgen.Expect { return m.Noop }
	servers := []struct {
		name   string
		addr   string
		expect func(loadgen.Mix) loadgen.Expect
	}{
		{"corsgate", serveRunner(t, corsgate(t)), cg},
		{"noop", serve(t, loadgen.Noop{}), noop},
		{"noop-wire", serveWireNoop(t), noop},
	}
	for _, s := range servers {
		sims, closeConns, err := loadgen.Dial(s.addr, 2, patient)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(closeConns)
		for _, m := range loadgen.Mixes {
			t.Run(s.name+"/"+m.Name, func(t *testing.T) {
				// Not parallel: a sub-test shares the connections.
				res := loadgen.Run(context.Background(), loadgen.Load{
					Sims: sims, Mixes: []loadgen.Mix{m}, Expect: s.expect, Workers: 4, Duration: 300 * time.Millisecond,
				})
				if res.Errors > 0 || res.Requests == 0 {
					t.Fatalf("%d requests, %d errors; first: %s", res.Requests, res.Errors, res.FirstError)
				}
				// Requests cut off at the deadline sent messages too: allow
				// one per worker.
				if got := res.Messages; got < res.Requests*uint64(m.RoundTrips) || got > (res.Requests+4)*uint64(m.RoundTrips) {
					t.Errorf("%d ext_proc messages for %d requests, want %d per request", got, res.Requests, m.RoundTrips)
				}
				if res.Latency.Count() != res.Requests {
					t.Errorf("histogram holds %d latencies for %d requests", res.Latency.Count(), res.Requests)
				}
			})
		}
	}
}

// TestFixedRate checks that a fixed-rate load never sends more than is due
// in its window (Rate x Duration) and stops by itself. How many it manages
// depends on the machine, so only the bound is checked.
func TestFixedRate(t *testing.T) {
	t.Parallel()
	sims, closeConns, err := loadgen.Dial(serve(t, loadgen.Noop{}), 1, patient)
	if err != nil {
		t.Fatal(err)
	}
	defer closeConns()
	res := loadgen.Run(context.Background(), loadgen.Load{
		Sims: sims, Mixes: loadgen.Mixes, Expect: func(m loadgen.Mix) loadgen.Expect { return m.Noop },
		Workers: 8, Duration: 500 * time.Millisecond, Rate: 200,
	})
	if res.Errors > 0 || res.Requests == 0 || res.Requests > 100 {
		t.Errorf("%d requests (%d errors: %s), want between 1 and the 100 due", res.Requests, res.Errors, res.FirstError)
	}
}
