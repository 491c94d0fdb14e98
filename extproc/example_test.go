package extproc_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

// reasonLogger is an Observer that logs denials with their reason and
// origin, and ignores the timings.
type reasonLogger struct{ log logr.Logger }

func (r reasonLogger) ObserveDecision(e *table.Entry, d cors.Decision, req extproc.RequestInfo) {
	if !d.Allowed && d.Kind != cors.KindNotCORS {
		r.log.Info("CORS denied", "policy", e.Key(), "kind", d.Kind.String(), "reason", d.Reason.String(),
			"origin", strconv.Quote(req.Origin), "value", strconv.Quote(d.Detail))
	}
}

func (reasonLogger) ObservePhase(extproc.Phase, time.Duration) {}
func (reasonLogger) ObserveStream(time.Duration)               {}

// The binary's wiring: one store fed by the controller, a Server over it, and
// a Runner added to the manager (mgr.Add(runner)) on every replica. Health
// says SERVING only once the first table is in place.
func ExampleRunner() {
	var store table.Store // the controller Swaps tables in
	server := extproc.NewServer(&store,
		extproc.WithObserver(reasonLogger{log: logr.Discard()}),
		extproc.WithLogger(logr.Discard()))

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	runner := &extproc.Runner{Server: server, Listener: lis}
	done := make(chan error, 1)
	go func() { done <- runner.Start(ctx) }() // with controller-runtime: mgr.Add(runner)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	watchCtx, endWatch := context.WithCancel(context.Background())
	watch, err := healthpb.NewHealthClient(conn).Watch(watchCtx, &healthpb.HealthCheckRequest{Service: extproc.ServiceName})
	if err != nil {
		panic(err)
	}
	next := func() healthpb.HealthCheckResponse_ServingStatus {
		resp, err := watch.Recv()
		if err != nil {
			panic(err)
		}
		return resp.GetStatus()
	}
	fmt.Println("before the first table:", next())

	tbl, _ := table.New(nil) // the controller's first (here empty) table
	store.Swap(tbl)
	fmt.Println("after the first table:", next())

	stop() // the manager stops: health turns NOT_SERVING, streams drain
	fmt.Println("stopping:", next())
	endWatch() // the graceful stop waits for open streams, this one included
	fmt.Println("Start returned:", <-done)
	// Output:
	// before the first table: NOT_SERVING
	// after the first table: SERVING
	// stopping: NOT_SERVING
	// Start returned: <nil>
}
