package extproc

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/corsgate/corsgate/internal/extprocwire"
)

// Limits bound what the clients of one server can hold: streams, their idle
// time, and the bytes of their headers and messages. They only stop a client
// that is not Envoy, or an Envoy gone wrong, from holding memory and
// goroutines without end; DefaultLimits are far above anything Envoy does,
// and are what the binary's --grpc-* flags default to.
//
// A zero field sets no limit of corsgate's own, as a 0 on the command line
// does: no idle timeout, no cap on streams, and grpc-go's own defaults for
// the transport's settings (no per-connection stream limit, 16 MiB of
// header list, 4 MiB messages). The zero Limits is therefore no limits at
// all; negative values are refused by Validate.
type Limits struct {
	// StreamIdleTimeout ends an ext_proc stream that receives no message for
	// this long, with DEADLINE_EXCEEDED. Between request_headers and
	// response_headers Envoy waits for the upstream, so this must exceed the
	// slowest upstream response (or request upload) behind the gateway.
	StreamIdleTimeout time.Duration
	// MaxStreamsPerConnection is advertised as HTTP/2
	// SETTINGS_MAX_CONCURRENT_STREAMS: a client at the limit waits for a
	// stream to end or opens another connection (Envoy's connection pool
	// does the latter); nothing is refused.
	MaxStreamsPerConnection int
	// MaxStreams caps the ext_proc streams open at once over all
	// connections; one beyond it is refused at once with RESOURCE_EXHAUSTED
	// (Envoy then applies failure_mode_allow).
	MaxStreams int
	// MaxHeaderListBytes bounds the HTTP/2 header list (the gRPC metadata) of
	// each stream a client opens.
	MaxHeaderListBytes int
	// MaxMessageBytes bounds one received ext_proc message, which carries the
	// HTTP request's or response's headers; larger messages are refused by
	// gRPC before they are decoded.
	MaxMessageBytes int
}

const (
	// DefaultStreamIdleTimeout is one hour: Envoy's longest message_timeout
	// (3600 s), and twelve times the HTTP connection manager's default
	// stream_idle_timeout (5 minutes), after which Envoy resets an HTTP
	// stream without activity itself. An Envoy sends request_headers as soon
	// as it opens a stream, so only a stream waiting for a slow upstream, or
	// one that is not Envoy's, is ever idle that long.
	DefaultStreamIdleTimeout = time.Hour
	// DefaultMaxStreamsPerConnection: Envoy opens one connection per worker
	// thread and more when a connection is full, so this only spreads load.
	DefaultMaxStreamsPerConnection = 1000
	// DefaultMaxStreams: concurrent HTTP requests in flight through one
	// replica. An idle stream costs about 12 KiB (8 KiB of goroutine stack,
	// the rest transport state, measured), so 50,000 streams hold about
	// 600 MiB: lower it, or raise the memory limit, to have the cap act
	// before the OOM killer does.
	DefaultMaxStreams = 50000
	// DefaultMaxHeaderListBytes: Envoy's gRPC client sends a few hundred
	// bytes of metadata (plus grpc_service.initial_metadata); grpc-go's own
	// default is 16 MiB.
	DefaultMaxHeaderListBytes = 1 << 20
	// DefaultMaxMessageBytes is grpc-go's default, 4 MiB: 68 times Envoy's
	// default max_request_headers_kb (60 KiB). Raise it only for an Envoy
	// whose max_request_headers_kb or max_response_headers_kb is above
	// 4000.
	DefaultMaxMessageBytes = 4 << 20
)

// DefaultLimits are the limits the binary serves with unless its flags say
// otherwise.
func DefaultLimits() Limits {
	return Limits{
		StreamIdleTimeout:       DefaultStreamIdleTimeout,
		MaxStreamsPerConnection: DefaultMaxStreamsPerConnection,
		MaxStreams:              DefaultMaxStreams,
		MaxHeaderListBytes:      DefaultMaxHeaderListBytes,
		MaxMessageBytes:         DefaultMaxMessageBytes,
	}
}

// Validate refuses a negative limit, naming the flag that sets it: zero is
// how a limit is turned off.
func (l Limits) Validate() error {
	for _, f := range []struct {
		flag string
		neg  bool
	}{
		{"--grpc-stream-idle-timeout", l.StreamIdleTimeout < 0},
		{"--grpc-max-streams-per-connection", l.MaxStreamsPerConnection < 0},
		{"--grpc-max-streams", l.MaxStreams < 0},
		{"--grpc-max-header-list-bytes", l.MaxHeaderListBytes < 0},
		{"--grpc-max-message-bytes", l.MaxMessageBytes < 0},
	} {
		if f.neg {
			return fmt.Errorf("%s is negative: write 0 for no limit, or leave the flag out for the default", f.flag)
		}
	}
	return nil
}

// processMethod is the one method the limits on ext_proc streams apply to;
// health Watch streams end at shutdown instead (see healthServer).
var processMethod = "/" + extprocwire.ServiceName + "/Process"

// streamLimiter enforces Limits. It is shared by every connection of one
// grpc.Server.
type streamLimiter struct {
	limits Limits
	active atomic.Int64
	// epoch is the zero of the streams' activity clocks (monotonic).
	epoch time.Time

	// idle is every open ext_proc stream with an idle deadline, for the
	// sweeper. A list under a mutex, not a timer per stream: a timer costs
	// an allocation and a heap operation per stream, a Reset per message,
	// and (through context.AfterFunc) a goroutine when the stream ends; the
	// sweeper costs one pass every idleSweeps-th of the timeout.
	mu   sync.Mutex
	head *idleCtx
}

// idleSweeps is how many times per StreamIdleTimeout the sweeper looks: a
// stream is cut between the timeout and a ninth more after its last message.
const idleSweeps = 8

// options returns the grpc.ServerOptions that enforce l.
func (l *streamLimiter) options() []grpc.ServerOption {
	opts := []grpc.ServerOption{grpc.ChainStreamInterceptor(l.intercept)}
	// Zero leaves grpc-go's own default in place.
	if n := l.limits.MaxStreamsPerConnection; n > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(uint32(min(n, math.MaxUint32))))
	}
	if n := l.limits.MaxHeaderListBytes; n > 0 {
		opts = append(opts, grpc.MaxHeaderListSize(uint32(min(n, math.MaxUint32))))
	}
	if n := l.limits.MaxMessageBytes; n > 0 {
		opts = append(opts, grpc.MaxRecvMsgSize(n))
	}
	if l.limits.StreamIdleTimeout > 0 {
		opts = append(opts, grpc.InTapHandle(l.tap))
	}
	return opts
}

// sweep ends the streams idle for StreamIdleTimeout until ctx ends. Runner
// runs it beside the server.
func (l *streamLimiter) sweep(ctx context.Context) {
	if l.limits.StreamIdleTimeout <= 0 {
		return
	}
	tick := time.NewTicker(max(l.limits.StreamIdleTimeout/idleSweeps, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		deadline := l.now() - int64(l.limits.StreamIdleTimeout)
		l.mu.Lock()
		for c := l.head; c != nil; c = c.next {
			if c.last.Load() <= deadline {
				c.expire()
			}
		}
		l.mu.Unlock()
	}
}

// now is the activity clock: monotonic nanoseconds since epoch.
func (l *streamLimiter) now() int64 { return int64(time.Since(l.epoch)) }

// idleCtx is an ext_proc stream's context with an idle deadline: it ends
// when its parent does, or when the sweeper finds no message arrived for
// the timeout. It must be installed by the tap handle: only the context
// returned there is the one a blocked Recv waits on. Its Err is
// context.DeadlineExceeded when it ends for idleness, which grpc-go reports
// to the client as DEADLINE_EXCEEDED.
type idleCtx struct {
	context.Context // a child of the stream's context, which cancel ends
	cancel          context.CancelFunc
	limiter         *streamLimiter
	last            atomic.Int64 // the activity clock at the last message
	expired         atomic.Bool
	prev, next      *idleCtx // in limiter's list, under its mutex
}

func (c *idleCtx) Err() error {
	err := c.Context.Err()
	if err != nil && c.expired.Load() {
		return context.DeadlineExceeded
	}
	return err
}

func (c *idleCtx) Value(key any) any {
	if key == (idleKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// expire ends the stream for idleness (the sweeper, under the mutex).
func (c *idleCtx) expire() {
	if c.Context.Err() == nil {
		c.expired.Store(true)
		c.cancel()
	}
}

// touch restarts the idle deadline: a message arrived.
func (c *idleCtx) touch() { c.last.Store(c.limiter.now()) }

// release takes the stream out of the sweeper's list when it ends.
func (c *idleCtx) release() {
	l := c.limiter
	l.mu.Lock()
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
	l.mu.Unlock()
	c.cancel()
}

// idleKey finds a stream's *idleCtx.
type idleKey struct{}

// tap gives an ext_proc stream its idle context. grpc-go calls it with its
// transport's lock held, so it only makes the context; the stream joins the
// sweeper's list in intercept, on the stream's own goroutine.
func (l *streamLimiter) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName != processMethod {
		return ctx, nil
	}
	c := &idleCtx{limiter: l}
	c.Context, c.cancel = context.WithCancel(ctx)
	c.last.Store(l.now())
	return c, nil
}

// watch puts the stream in the sweeper's list.
func (c *idleCtx) watch() {
	l := c.limiter
	l.mu.Lock()
	c.next = l.head
	if l.head != nil {
		l.head.prev = c
	}
	l.head = c
	l.mu.Unlock()
}

// intercept counts the ext_proc streams open, refuses one beyond
// MaxStreams, and restarts the idle deadline on every message received.
func (l *streamLimiter) intercept(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod != processMethod {
		return handler(srv, ss)
	}
	n := l.active.Add(1)
	defer l.active.Add(-1)
	c, _ := ss.Context().Value(idleKey{}).(*idleCtx)
	if c != nil {
		c.watch()
		defer c.release()
	}
	if max := l.limits.MaxStreams; max > 0 && n > int64(max) {
		return status.Errorf(codes.ResourceExhausted,
			"extproc: %d ext_proc streams are open, the limit (--grpc-max-streams) is %d; add replicas or raise the limit", n-1, max)
	}
	if c == nil {
		return handler(srv, ss)
	}
	return handler(srv, &idleStream{ServerStream: ss, c: c})
}

// idleStream restarts its stream's idle deadline on every message received.
type idleStream struct {
	grpc.ServerStream
	c *idleCtx
}

func (s *idleStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.c.touch()
	}
	return err
}
