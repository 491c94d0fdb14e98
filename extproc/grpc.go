package extproc

import (
	"context"
	"errors"
	"net"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// ServiceName is the ext_proc service's full name, the one Envoy's
// grpc_health_check and Kubernetes gRPC probes ask about (research §6).
const ServiceName = "envoy.service.ext_proc.v3.ExternalProcessor"

// MinPingInterval is the shortest HTTP/2 keepalive ping interval the server
// tolerates from a client. grpc-go's default (5 minutes) answers more frequent
// pings with GOAWAY "too_many_pings", which would cut every in-flight request
// on an Envoy configured with connection_keepalive (research §6). Envoy's
// connection_keepalive.interval must not be below this.
const MinPingInterval = time.Second

// ServerOptions are the grpc.ServerOptions an ext_proc server for Envoy needs:
// a keepalive enforcement policy that permits Envoy's pings, also on idle
// connections. Pass them, plus any of your own, to grpc.NewServer.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             MinPingInterval,
			PermitWithoutStream: true,
		}),
	}
}

// Register adds the ExternalProcessor service and the standard gRPC health
// service (grpc.health.v1.Health) to gs. Health says NOT_SERVING for "" and
// ServiceName until the Server's store has its first table, then SERVING, so
// Envoy's active health checks and Kubernetes readiness probes keep traffic
// away from a replica that would answer "no policy" to everything. The wait
// ends with ctx; call Shutdown on the returned health server before stopping
// gs, so that health checkers see NOT_SERVING while streams drain.
func Register(ctx context.Context, gs *grpc.Server, s *Server) *health.Server {
	hs := health.NewServer()
	// NewServer starts with "" SERVING: say the truth from the first check.
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	extprocv3.RegisterExternalProcessorServer(gs, s)
	healthpb.RegisterHealthServer(gs, hs)
	go func() {
		select {
		case <-s.store.Ready():
			// After Shutdown these calls are ignored, so a table arriving
			// during shutdown cannot flip a draining server back to SERVING.
			hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			hs.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
		case <-ctx.Done():
		}
	}()
	return hs
}

// DefaultShutdownTimeout is how long Runner waits for in-flight streams after
// its context ends. Envoy holds a stream for one upstream round trip, so a few
// seconds cover all but stuck upstreams.
const DefaultShutdownTimeout = 10 * time.Second

// Runner serves the ext_proc and health services on Listener until its
// context ends, then stops gracefully. It is a controller-runtime
// manager.Runnable (Start) that runs on every replica (NeedLeaderElection):
// every replica answers Envoy.
type Runner struct {
	Server   *Server
	Listener net.Listener
	// ShutdownTimeout bounds the graceful stop; after it, remaining streams
	// are cut. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Options are appended to ServerOptions().
	Options []grpc.ServerOption
}

// Start serves until ctx ends (returning nil after a graceful stop) or the
// listener fails (returning the error).
func (r *Runner) Start(ctx context.Context) error {
	if r.Server == nil || r.Listener == nil {
		return errors.New("extproc: Runner needs a Server and a Listener")
	}
	gs := grpc.NewServer(append(ServerOptions(), r.Options...)...)
	hs := Register(ctx, gs, r.Server)

	served := make(chan error, 1)
	go func() { served <- gs.Serve(r.Listener) }()

	select {
	case err := <-served:
		hs.Shutdown()
		return err
	case <-ctx.Done():
	}
	hs.Shutdown()
	timeout := r.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		gs.Stop() // cuts the remaining streams; GracefulStop then returns
		<-stopped
	}
	<-served
	return nil
}

// NeedLeaderElection is false: every replica serves ext_proc.
func (r *Runner) NeedLeaderElection() bool { return false }
