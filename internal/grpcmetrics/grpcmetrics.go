// Package grpcmetrics is the gRPC server's Prometheus metrics
// (grpc_server_started_total, grpc_server_handled_total{grpc_code},
// grpc_server_msg_received_total, grpc_server_msg_sent_total): the series
// of go-grpc-middleware's Prometheus provider, counted at a fraction of its
// cost. The ext_proc server's own metrics (decisions, latencies, stream
// durations) are internal/observe's.
package grpcmetrics

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServerMetrics is the gRPC server's metrics: the families, names, help,
// labels and label values of go-grpc-middleware's Prometheus provider
// (providers/prometheus NewServerMetrics, without the handling-time
// histogram, context labels or exemplars), counted as it counts them, for
// a fraction of its cost. The provider resolves each counter's child by
// its label values (hashing, map lookups) on every message and builds a
// reporter on every call; here the children are resolved once per method
// and a message costs one atomic add.
//
// Like the provider's, a series exists from its first count: a child is
// resolved when it is first counted, so that no zero series appears that
// the provider would not show.
//
// Use it as the provider's ServerMetrics: register it, then chain its
// interceptors (ServerOptions does both chains).
type ServerMetrics struct {
	started, handled, received, sent *prometheus.CounterVec

	// methods is copied on write (under mu), so the lookup on every call
	// takes no lock. It holds one entry per method called: grpc-go calls
	// interceptors only for registered methods, unless the server has an
	// UnknownServiceHandler (corsgate's has none), which would add an
	// entry per name a client calls.
	mu      sync.Mutex
	methods atomic.Pointer[map[methodKey]*methodMetrics]
}

// grpcType is the grpc_type label, as the provider spells it.
type grpcType string

const (
	grpcUnary        grpcType = "unary"
	grpcClientStream grpcType = "client_stream"
	grpcServerStream grpcType = "server_stream"
	grpcBidiStream   grpcType = "bidi_stream"
)

// streamType is the provider's grpc_type of a stream.
func streamType(info *grpc.StreamServerInfo) grpcType {
	switch {
	case info.IsClientStream && !info.IsServerStream:
		return grpcClientStream
	case !info.IsClientStream && info.IsServerStream:
		return grpcServerStream
	}
	return grpcBidiStream
}

type methodKey struct {
	fullMethod string
	typ        grpcType
}

// methodMetrics is one method's counters: started is resolved with
// the method (it is counted at once), the others when first counted.
type methodMetrics struct {
	vecs           *ServerMetrics
	labels         [3]string // grpc_type, grpc_service, grpc_method
	started        prometheus.Counter
	received, sent lazyCounter
	handled        [codes.Unauthenticated + 1]lazyCounter // by code, OK to Unauthenticated (16)
}

// lazyCounter is a counter's child, resolved on its first count.
type lazyCounter struct{ p atomic.Pointer[counterRef] }

type counterRef struct{ prometheus.Counter }

// inc counts one: lvs are the method's labels, code the grpc_code of
// grpc_server_handled_total ("" for the others).
func (c *lazyCounter) inc(vec *prometheus.CounterVec, lvs *[3]string, code string) {
	if r := c.p.Load(); r != nil {
		r.Inc()
		return
	}
	c.resolve(vec, lvs, code).Inc()
}

// resolve is the slow path of inc: racing resolutions get the same child.
func (c *lazyCounter) resolve(vec *prometheus.CounterVec, lvs *[3]string, code string) prometheus.Counter {
	var child prometheus.Counter
	if code == "" {
		child = vec.WithLabelValues(lvs[:]...)
	} else {
		child = vec.WithLabelValues(lvs[0], lvs[1], lvs[2], code)
	}
	c.p.Store(&counterRef{child})
	return child
}

// NewServerMetrics makes the counters, none of them registered.
func NewServerMetrics() *ServerMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	return &ServerMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total",
			Help: "Total number of RPCs started on the server.",
		}, labels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total",
			Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(slices.Clip(labels), "grpc_code")),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total",
			Help: "Total number of RPC stream messages received on the server.",
		}, labels),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total",
			Help: "Total number of gRPC stream messages sent by the server.",
		}, labels),
	}
}

// ServerOptions are the interceptors that count, as grpc.NewServer
// options. Handling time is the ext_proc server's own
// corsgate_extproc_stream_duration_seconds (native buckets too), so the
// provider's handling-time histogram is left off.
func (m *ServerMetrics) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.StreamServerInterceptor()),
	}
}

// UnaryServerInterceptor counts unary calls, as the provider's method of
// the name.
func (m *ServerMetrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return m.unaryInterceptor
}

// StreamServerInterceptor counts streams and their messages, as the
// provider's method of the name.
func (m *ServerMetrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return m.streamInterceptor
}

// Describe and Collect are the provider's, in its order.
func (m *ServerMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.started.Describe(ch)
	m.handled.Describe(ch)
	m.received.Describe(ch)
	m.sent.Describe(ch)
}

func (m *ServerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.started.Collect(ch)
	m.handled.Collect(ch)
	m.received.Collect(ch)
	m.sent.Collect(ch)
}

// lookup is the method's counters, made on its first call.
func (m *ServerMetrics) lookup(fullMethod string, typ grpcType) *methodMetrics {
	key := methodKey{fullMethod, typ}
	if p := m.methods.Load(); p != nil {
		if mm, ok := (*p)[key]; ok {
			return mm
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.methods.Load()
	if old != nil {
		if mm, ok := (*old)[key]; ok {
			return mm
		}
	}
	service, method := splitFullMethod(fullMethod)
	mm := &methodMetrics{vecs: m, labels: [3]string{string(typ), service, method}}
	mm.started = m.started.WithLabelValues(mm.labels[:]...)
	next := make(map[methodKey]*methodMetrics, 1)
	if old != nil {
		maps.Copy(next, *old)
	}
	next[key] = mm
	m.methods.Store(&next)
	return mm
}

// splitFullMethod is the provider's split of "/service/method".
func splitFullMethod(fullMethod string) (service, method string) {
	fullMethod = strings.TrimPrefix(fullMethod, "/")
	if i := strings.Index(fullMethod, "/"); i >= 0 {
		return fullMethod[:i], fullMethod[i+1:]
	}
	return "unknown", "unknown"
}

func (mm *methodMetrics) incReceived() {
	mm.received.inc(mm.vecs.received, &mm.labels, "")
}

func (mm *methodMetrics) incSent() {
	mm.sent.inc(mm.vecs.sent, &mm.labels, "")
}

func (mm *methodMetrics) incHandled(err error) {
	code := grpcCode(err)
	if int(code) >= len(mm.handled) { // not a code grpc-go defines: rare
		mm.vecs.handled.WithLabelValues(mm.labels[0], mm.labels[1], mm.labels[2], code.String()).Inc()
		return
	}
	mm.handled[code].inc(mm.vecs.handled, &mm.labels, code.String())
}

// grpcCode is the provider's grpc_code of a handler's error: its status
// code, that of a context error, or Unknown.
func grpcCode(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	s, ok := status.FromError(err)
	if !ok {
		s = status.FromContextError(err)
	}
	return s.Code()
}

// unaryInterceptor counts like the provider's: started, one message
// received, the handler, one message sent if it returned no error, and
// handled with its code.
func (m *ServerMetrics) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	mm := m.lookup(info.FullMethod, grpcUnary)
	mm.started.Inc()
	mm.incReceived()
	resp, err := handler(ctx, req)
	if err == nil {
		mm.incSent()
	}
	mm.incHandled(err)
	return resp, err
}

// streamInterceptor counts started before the handler, each message
// received or sent without error, and handled when the handler returns.
func (m *ServerMetrics) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	mm := m.lookup(info.FullMethod, streamType(info))
	mm.started.Inc()
	err := handler(srv, &countedServerStream{ServerStream: ss, m: mm})
	mm.incHandled(err)
	return err
}

// countedServerStream is the stream a handler gets: its one allocation.
type countedServerStream struct {
	grpc.ServerStream
	m *methodMetrics
}

func (s *countedServerStream) RecvMsg(msg any) error {
	err := s.ServerStream.RecvMsg(msg)
	if err == nil {
		s.m.incReceived()
	}
	return err
}

func (s *countedServerStream) SendMsg(msg any) error {
	err := s.ServerStream.SendMsg(msg)
	if err == nil {
		s.m.incSent()
	}
	return err
}
