package extproc_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/table"
)

// Health follows the store: NOT_SERVING until the first table (Envoy's gRPC
// health check and Kubernetes probes keep traffic away), SERVING after it,
// NOT_SERVING again while the server drains.
func TestHealthFollowsTheStore(t *testing.T) {
	t.Parallel()
	var store table.Store // no table yet
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRunner := context.WithCancel(context.Background())
	defer stopRunner()
	runner := &extproc.Runner{Server: extproc.NewServer(&store), Listener: lis}
	done := make(chan error, 1)
	go func() { done <- runner.Start(runCtx) }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	// A safety net against a hang, not a timed assertion: nothing here waits
	// for time to pass.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	check := func(service string, want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("Check(%q): %v", service, err)
		}
		if resp.GetStatus() != want {
			t.Errorf("Check(%q) = %v, want %v", service, resp.GetStatus(), want)
		}
	}
	if extproc.ServiceName != extprocv3.ExternalProcessor_ServiceDesc.ServiceName {
		t.Fatalf("ServiceName %q is not the registered service %q", extproc.ServiceName, extprocv3.ExternalProcessor_ServiceDesc.ServiceName)
	}
	services := []string{"", extproc.ServiceName}
	for _, svc := range services {
		check(svc, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "grpc.health.v1.Unknown"}); status.Code(err) != codes.NotFound {
		t.Errorf("Check(unknown service): got %v, want NotFound", err)
	}

	watch, err := health.Watch(ctx, &healthpb.HealthCheckRequest{Service: extproc.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	next := func() healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := watch.Recv()
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		return resp.GetStatus()
	}
	if got := next(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch: first status %v, want NOT_SERVING", got)
	}

	store.Swap(mustTable(t)) // the first table
	if got := next(); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch after the first Swap: %v, want SERVING", got)
	}
	for _, svc := range services {
		check(svc, healthpb.HealthCheckResponse_SERVING)
	}

	stopRunner() // the manager's context ends: drain
	if got := next(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch during shutdown: %v, want NOT_SERVING", got)
	}
	cancel() // end the watch, the last stream the graceful stop waits for
	if err := <-done; err != nil {
		t.Errorf("Runner.Start: %v, want nil after a graceful stop", err)
	}
}

func mustTable(t *testing.T) *table.Table {
	t.Helper()
	tbl, conflicts := table.New(nil)
	if len(conflicts) > 0 {
		t.Fatal(conflicts)
	}
	return tbl
}

// A listener that fails is the Runner's error, for the manager to report.
func TestRunnerReportsAListenerFailure(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis.Close()
	runner := &extproc.Runner{Server: extproc.NewServer(&table.Store{}), Listener: lis}
	if err := runner.Start(context.Background()); err == nil {
		t.Error("Start on a closed listener returned nil, want the listener's error")
	}
	if err := (&extproc.Runner{}).Start(context.Background()); err == nil || !strings.Contains(err.Error(), "needs a Server and a Listener") {
		t.Errorf("Start without a Server and Listener: %v, want an error saying what is missing", err)
	}
	if (&extproc.Runner{}).NeedLeaderElection() {
		t.Error("NeedLeaderElection is true; every replica must serve ext_proc")
	}
}
