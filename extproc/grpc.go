package extproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/corsgate/corsgate/internal/extprocwire"
)

// ServiceName is the ext_proc service's full name, the one Envoy's
// grpc_health_check and Kubernetes gRPC probes ask about (docs/envoy.md#connections-latency-and-health-checks).
const ServiceName = extprocwire.ServiceName

// MinPingInterval is the shortest HTTP/2 keepalive ping interval the server
// tolerates from a client. grpc-go's default (5 minutes) answers more frequent
// pings with GOAWAY "too_many_pings", which would cut every in-flight request
// on an Envoy configured with connection_keepalive (docs/envoy.md#connections-latency-and-health-checks). Envoy's
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
		grpc.NumStreamWorkers(streamWorkers),
	}
}

// streamWorkers is how many goroutines grpc-go keeps to run stream handlers.
// Without workers it starts a goroutine per stream, that is per HTTP
// request, and each grows its stack on its first Recv (runtime.newstack was
// about a tenth of the server's CPU, docs/performance.md#the-ext_proc-exchange);
// a worker keeps its grown stack. A stream that finds every worker busy
// (Envoy holds a stream open while the upstream answers) gets a goroutine of
// its own, as before.
const streamWorkers = 256

// register adds the ExternalProcessor service, read and written by
// extprocwire.Codec, and the standard gRPC health service
// (grpc.health.v1.Health) to gs. Health says NOT_SERVING for "" and
// ServiceName until the Server's store has its first table, then SERVING, so
// Envoy's active health checks and Kubernetes readiness probes keep traffic
// away from a replica that would answer "no policy" to everything. The wait
// ends with ctx; call Shutdown on the returned health server before stopping
// gs, so that health checkers see NOT_SERVING while streams drain. When ctx
// ends, every health Watch stream is sent NOT_SERVING and ended with
// UNAVAILABLE: a Watch never ends by itself (grpc-go's client-side health
// checking keeps one open per connection), so it would otherwise hold a
// graceful stop for its whole timeout.
func register(ctx context.Context, gs *grpc.Server, s *Server) *health.Server {
	hs := health.NewServer()
	// NewServer starts with "" SERVING: say the truth from the first check.
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	gs.RegisterService(extprocwire.ServiceDesc(s.Process), nil)
	healthpb.RegisterHealthServer(gs, &healthServer{Server: hs, draining: ctx})
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
	// Limits bound streams and their sizes. The zero value limits nothing
	// (see Limits); the binary passes its flags, DefaultLimits unless set.
	Limits Limits
	// Options are appended to ServerOptions() and the limits' options.
	Options []grpc.ServerOption
	// Log, if set, receives the start and end of the graceful stop.
	Log logr.Logger
}

// Start serves until ctx ends (returning nil after a graceful stop) or the
// listener fails (returning the error).
func (r *Runner) Start(ctx context.Context) error {
	if r.Server == nil || r.Listener == nil {
		return errors.New("extproc: Runner needs a Server and a Listener")
	}
	if err := r.Limits.Validate(); err != nil {
		return fmt.Errorf("extproc: %w", err)
	}
	// register's goroutine and the health Watch streams end with ctx; end it
	// on every return, also when Serve fails.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	limiter := &streamLimiter{limits: r.Limits, epoch: time.Now()}
	swept := make(chan struct{})
	go func() { limiter.sweep(ctx); close(swept) }()
	defer func() { cancel(); <-swept }()
	opts := append(ServerOptions(), limiter.options()...)
	// The ExternalProcessor is read and answered on the wire
	// (internal/extprocwire); health keeps grpc-go's codec.
	opts = append(opts, extprocwire.ServerOption())
	gs := grpc.NewServer(append(opts, r.Options...)...)
	hs := register(ctx, gs, r.Server)
	log := r.Log
	if log.GetSink() == nil {
		log = logr.Discard()
	}

	served := make(chan error, 1)
	go func() { served <- gs.Serve(r.Listener) }()

	select {
	case err := <-served:
		hs.Shutdown()
		// Serve failed (its listener broke): stop what it started, the
		// connections and the stream workers, before returning.
		gs.Stop()
		return err
	case <-ctx.Done():
	}
	// Health first: checkers see NOT_SERVING and Watch streams end (see
	// register) before the graceful stop waits for the streams left.
	hs.Shutdown()
	timeout := r.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	began := time.Now()
	log.Info("ext_proc server shutting down: health NOT_SERVING, waiting for open streams", "streams", limiter.active.Load(), "timeout", timeout.String())
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-stopped:
		log.Info("ext_proc server stopped", "duration", time.Since(began).Round(time.Millisecond).String())
	case <-timer.C:
		cut := limiter.active.Load()
		gs.Stop() // cuts the remaining streams; GracefulStop then returns
		<-stopped
		log.Info("ext_proc server stopped; streams still open after the shutdown timeout were cut", "duration", time.Since(began).Round(time.Millisecond).String(), "cut", cut)
	}
	// After GracefulStop or Stop, Serve returns nil; anything else is worth
	// reporting even though shutdown was asked for.
	return <-served
}

// healthServer is grpc-go's health server with Watch streams that end when
// draining ends.
type healthServer struct {
	*health.Server
	draining context.Context
}

func (h *healthServer) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(h.draining, cancel)
	defer stop()
	err := h.Server.Watch(req, &watchStream{Health_WatchServer: stream, ctx: ctx})
	if h.draining.Err() == nil || stream.Context().Err() != nil {
		return err
	}
	// The server is shutting down. The last status the watcher saw may
	// predate Shutdown (the inner Watch can end before it sends the update),
	// so say it again before ending the stream.
	_ = stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING})
	return status.Error(codes.Unavailable, "extproc: the server is shutting down; health Watch streams end so that the graceful stop does not wait for them")
}

// watchStream is a Watch stream whose context also ends when the server
// starts draining.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (w *watchStream) Context() context.Context { return w.ctx }

// NeedLeaderElection is false: every replica serves ext_proc.
func (r *Runner) NeedLeaderElection() bool { return false }
