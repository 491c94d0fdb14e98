package grpcmetrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// serverMetrics registers a ServerMetrics with reg and returns its
// interceptors, as the binary does.
func serverMetrics(reg prometheus.Registerer) []grpc.ServerOption {
	m := NewServerMetrics()
	reg.MustRegister(m)
	return m.ServerOptions()
}

// go-grpc-middleware's provider, as the binary used it, is the
// reference: a test-only dependency.
func providerServerMetrics(reg prometheus.Registerer) []grpc.ServerOption {
	m := grpcprom.NewServerMetrics()
	reg.MustRegister(m)
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.StreamServerInterceptor()),
	}
}

var grpcFamilies = []string{"grpc_server_started_total", "grpc_server_handled_total",
	"grpc_server_msg_received_total", "grpc_server_msg_sent_total"}

// serveGRPC runs a grpc.Server with opts, the health service and the
// echo service on loopback, and returns a client of it.
func serveGRPC(t *testing.T, opts []grpc.ServerOption) (*grpc.ClientConn, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	srv.RegisterService(&echoDesc, struct{}{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc, hs
}

// healthTraffic is a Check that succeeds, one that fails (NotFound) and a
// Watch that gets two statuses and is cancelled.
func healthTraffic(t *testing.T, cc *grpc.ClientConn, hs *health.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := healthpb.NewHealthClient(cc)
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check of an unknown service: %v, want NotFound", err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	watch, err := client.Watch(wctx, &healthpb.HealthCheckRequest{Service: "watched"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		t.Fatalf("first Watch status: %v, %v", r, err)
	}
	hs.SetServingStatus("watched", healthpb.HealthCheckResponse_SERVING)
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("second Watch status: %v, %v", r, err)
	}
	wcancel()
}

// echoDesc is a service of each other kind of call: Collect (client
// stream), Chat (bidi), Fail (server stream) and Deny (unary), the last
// two failing as their request's service says (see echoError).
var echoDesc = grpc.ServiceDesc{
	ServiceName: "corsgate.test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Deny", Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(healthpb.HealthCheckRequest)
		if err := dec(in); err != nil {
			return nil, err
		}
		handler := func(_ context.Context, req any) (any, error) {
			return &healthpb.HealthCheckResponse{}, echoError(req.(*healthpb.HealthCheckRequest).Service)
		}
		if interceptor == nil {
			return handler(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/corsgate.test.Echo/Deny"}, handler)
	}}},
	Streams: []grpc.StreamDesc{
		{StreamName: "Collect", ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			n := 0
			for ; ; n++ {
				if err := ss.RecvMsg(new(healthpb.HealthCheckRequest)); err == io.EOF {
					break
				} else if err != nil {
					return err
				}
			}
			return ss.SendMsg(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_ServingStatus(n)})
		}},
		{StreamName: "Chat", ClientStreams: true, ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			for {
				if err := ss.RecvMsg(new(healthpb.HealthCheckRequest)); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				if err := ss.SendMsg(&healthpb.HealthCheckResponse{}); err != nil {
					return err
				}
			}
		}},
		{StreamName: "Fail", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			in := new(healthpb.HealthCheckRequest)
			if err := ss.RecvMsg(in); err != nil {
				return err
			}
			return echoError(in.Service)
		}},
	},
}

// nilStatusError has a GRPCStatus, and it is nil.
type nilStatusError struct{}

func (nilStatusError) Error() string              { return "nil status" }
func (nilStatusError) GRPCStatus() *status.Status { return nil }

// echoError is the error named: each way the provider derives grpc_code.
func echoError(name string) error {
	switch name {
	case "":
		return nil
	case "plain":
		return errors.New("plain")
	case "canceled":
		return fmt.Errorf("wrapped: %w", context.Canceled)
	case "deadline":
		return context.DeadlineExceeded
	case "permission":
		return status.Error(codes.PermissionDenied, "no")
	case "wrapped-status":
		return fmt.Errorf("wrapped: %w", status.Error(codes.ResourceExhausted, "full"))
	case "code20":
		return status.Error(codes.Code(20), "beyond the defined codes")
	case "nil-status":
		return nilStatusError{}
	}
	panic(name)
}

var echoErrors = []string{"", "plain", "canceled", "deadline", "permission", "wrapped-status", "code20", "nil-status"}

// echoTraffic is every call of the echo service: it returns how many.
func echoTraffic(t *testing.T, cc *grpc.ClientConn) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls := 0
	open := func(method string, client, server bool) grpc.ClientStream {
		calls++
		s, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: client, ServerStreams: server}, "/corsgate.test.Echo/"+method)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	collect := open("Collect", true, false)
	for range 3 {
		if err := collect.SendMsg(&healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	collect.CloseSend()
	var resp healthpb.HealthCheckResponse
	if err := collect.RecvMsg(&resp); err != nil || resp.Status != 3 {
		t.Fatalf("Collect: %v, %v", &resp, err)
	}

	chat := open("Chat", true, true)
	for range 2 {
		if err := chat.SendMsg(&healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		if err := chat.RecvMsg(&resp); err != nil {
			t.Fatal(err)
		}
	}
	chat.CloseSend()
	if err := chat.RecvMsg(&resp); err != io.EOF {
		t.Fatalf("Chat's end: %v", err)
	}

	for _, name := range echoErrors {
		fail := open("Fail", false, true)
		if err := fail.SendMsg(&healthpb.HealthCheckRequest{Service: name}); err != nil {
			t.Fatal(err)
		}
		fail.CloseSend()
		if err := fail.RecvMsg(&resp); err == nil {
			t.Fatalf("Fail %q: no error", name)
		}

		calls++
		cc.Invoke(ctx, "/corsgate.test.Echo/Deny", &healthpb.HealthCheckRequest{Service: name}, &resp)
	}
	return calls
}

// waitGathered waits for reg's grpc families to be want, and fails with
// the difference if they are not in time.
func waitGathered(t *testing.T, reg prometheus.Gatherer, want string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err = testutil.GatherAndCompare(reg, strings.NewReader(want), grpcFamilies...); err == nil {
			return
		}
	}
	t.Fatal(err)
}

// waitHandled waits for reg to count n handled calls.
func waitHandled(t *testing.T, reg prometheus.Gatherer, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got := handledCount(t, reg); got == n {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%d calls handled, want %d", got, n)
		}
	}
}

func handledCount(t *testing.T, reg prometheus.Gatherer) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "grpc_server_handled_total" {
			for _, m := range mf.Metric {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return int(sum)
}

// exposition is the text exposition of reg's grpc families.
func exposition(t *testing.T, reg prometheus.Gatherer) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "grpc_server_") {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b.String()
}

func TestGRPCMetricsSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	cc, hs := serveGRPC(t, serverMetrics(reg))
	healthTraffic(t, cc, hs)
	// No other series: not even zero ones for codes that did not occur.
	waitGathered(t, reg, `
# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.
# TYPE grpc_server_handled_total counter
grpc_server_handled_total{grpc_code="Canceled",grpc_method="Watch",grpc_service="grpc.health.v1.Health",grpc_type="server_stream"} 1
grpc_server_handled_total{grpc_code="NotFound",grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"} 1
grpc_server_handled_total{grpc_code="OK",grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"} 1
# HELP grpc_server_msg_received_total Total number of RPC stream messages received on the server.
# TYPE grpc_server_msg_received_total counter
grpc_server_msg_received_total{grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"} 2
grpc_server_msg_received_total{grpc_method="Watch",grpc_service="grpc.health.v1.Health",grpc_type="server_stream"} 1
# HELP grpc_server_msg_sent_total Total number of gRPC stream messages sent by the server.
# TYPE grpc_server_msg_sent_total counter
grpc_server_msg_sent_total{grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"} 1
grpc_server_msg_sent_total{grpc_method="Watch",grpc_service="grpc.health.v1.Health",grpc_type="server_stream"} 2
# HELP grpc_server_started_total Total number of RPCs started on the server.
# TYPE grpc_server_started_total counter
grpc_server_started_total{grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"} 2
grpc_server_started_total{grpc_method="Watch",grpc_service="grpc.health.v1.Health",grpc_type="server_stream"} 1
`)
	if n := testutil.CollectAndCount(reg, grpcFamilies...); n != 9 {
		t.Errorf("%d series, want 9", n)
	}
}

// TestGRPCMetricsMatchGoGRPCMiddleware serves the same calls, of every
// kind and with every way of deriving grpc_code, with both and compares
// the expositions.
func TestGRPCMetricsMatchGoGRPCMiddleware(t *testing.T) {
	ours, theirs := prometheus.NewRegistry(), prometheus.NewRegistry()
	for _, s := range []struct {
		reg  *prometheus.Registry
		opts []grpc.ServerOption
	}{{ours, serverMetrics(ours)}, {theirs, providerServerMetrics(theirs)}} {
		cc, hs := serveGRPC(t, s.opts)
		healthTraffic(t, cc, hs)
		calls := 3 + echoTraffic(t, cc)
		waitHandled(t, s.reg, calls)
	}
	want := exposition(t, theirs)
	for _, series := range []string{`grpc_type="client_stream"`, `grpc_type="bidi_stream"`, `grpc_code="Code(20)"`, `grpc_code="DeadlineExceeded"`} {
		if !strings.Contains(want, series) {
			t.Errorf("the traffic makes no %s series:\n%s", series, want)
		}
	}
	if got := exposition(t, ours); got != want {
		t.Errorf("exposition:\n%s\ngo-grpc-middleware's:\n%s", got, want)
	}
	if err := testutil.GatherAndCompare(ours, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// fakeServerStream is an in-memory stream: RecvMsg gets n messages, then
// recvErr (io.EOF if nil) once, and starts over; SendMsg returns sendErr.
type fakeServerStream struct {
	ctx     context.Context
	n, recv int
	recvErr error
	sendErr error
}

func (s *fakeServerStream) SetHeader(metadata.MD) error  { return nil }
func (s *fakeServerStream) SendHeader(metadata.MD) error { return nil }
func (s *fakeServerStream) SetTrailer(metadata.MD)       {}
func (s *fakeServerStream) Context() context.Context     { return s.ctx }
func (s *fakeServerStream) SendMsg(any) error            { return s.sendErr }
func (s *fakeServerStream) RecvMsg(any) error {
	if s.recv == s.n {
		s.recv = 0
		if s.recvErr != nil {
			return s.recvErr
		}
		return io.EOF
	}
	s.recv++
	return nil
}

// exchange is ext_proc's handler: it answers each message until the
// stream ends.
func exchange(_ any, ss grpc.ServerStream) error {
	for {
		if err := ss.RecvMsg(nil); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := ss.SendMsg(nil); err != nil {
			return err
		}
	}
}

// TestGRPCMetricsMatchGoGRPCMiddlewareDirectly calls the interceptors
// with what a network cannot easily make: failing RecvMsg and SendMsg, odd
// method names, one name of several kinds.
func TestGRPCMetricsMatchGoGRPCMiddlewareDirectly(t *testing.T) {
	ours, theirs := prometheus.NewRegistry(), prometheus.NewRegistry()
	m := NewServerMetrics()
	ours.MustRegister(m)
	p := grpcprom.NewServerMetrics()
	theirs.MustRegister(p)
	impls := []struct {
		unary  grpc.UnaryServerInterceptor
		stream grpc.StreamServerInterceptor
	}{{m.unaryInterceptor, m.streamInterceptor}, {p.UnaryServerInterceptor(), p.StreamServerInterceptor()}}

	ctx := context.Background()
	streams := []struct {
		method         string
		client, server bool
		ss             fakeServerStream
	}{
		{method: "/envoy.service.ext_proc.v3.ExternalProcessor/Process", client: true, server: true, ss: fakeServerStream{n: 2}},
		{method: "/envoy.service.ext_proc.v3.ExternalProcessor/Process", client: true, server: true, ss: fakeServerStream{recvErr: status.Error(codes.Canceled, "reset")}},
		{method: "/a.B/RecvFails", client: true, ss: fakeServerStream{recvErr: errors.New("broken")}},
		{method: "/a.B/SendFails", server: true, ss: fakeServerStream{n: 1, sendErr: io.ErrClosedPipe}},
		{method: "/a.B/Same", client: true, ss: fakeServerStream{n: 1}},
		{method: "/a.B/Same", server: true, ss: fakeServerStream{n: 1}},
		{method: "/a.B/Same", ss: fakeServerStream{n: 1}},
		{method: "noslash", client: true, server: true, ss: fakeServerStream{n: 3}},
		{method: "/a.B/C/D", client: true, server: true, ss: fakeServerStream{n: 1}},
	}
	for _, impl := range impls {
		for _, s := range streams {
			ss := s.ss
			ss.ctx = ctx
			info := &grpc.StreamServerInfo{FullMethod: s.method, IsClientStream: s.client, IsServerStream: s.server}
			impl.stream(nil, &ss, info, exchange)
		}
		for _, name := range echoErrors {
			impl.unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/a.B/Same"}, func(context.Context, any) (any, error) {
				return nil, echoError(name)
			})
			impl.stream(nil, &fakeServerStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: "/a.B/Fail", IsServerStream: true}, func(any, grpc.ServerStream) error {
				return echoError(name)
			})
		}
	}
	want := exposition(t, theirs)
	if got := exposition(t, ours); got != want {
		t.Errorf("exposition:\n%s\ngo-grpc-middleware's:\n%s", got, want)
	}
	if strings.Contains(want, `grpc_server_msg_received_total{grpc_method="RecvFails"`) {
		t.Errorf("a failed RecvMsg counted:\n%s", want)
	}
}

// TestGRPCMetricsConcurrently resolves methods and children from many
// goroutines at once (run it with -race): no count is lost.
func TestGRPCMetricsConcurrently(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewServerMetrics()
	reg.MustRegister(m)
	const goroutines, streams = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range streams {
				info := &grpc.StreamServerInfo{FullMethod: fmt.Sprintf("/a.B/M%d", (g+i)%3), IsClientStream: true, IsServerStream: true}
				m.streamInterceptor(nil, &fakeServerStream{ctx: context.Background(), n: 2}, info, exchange)
			}
		})
	}
	wg.Wait()
	for _, c := range []struct {
		name string
		vec  *prometheus.CounterVec
		want float64
	}{{"started", m.started, goroutines * streams}, {"received", m.received, 2 * goroutines * streams}, {"sent", m.sent, 2 * goroutines * streams}} {
		sum := 0.0
		for i := range 3 {
			sum += testutil.ToFloat64(c.vec.WithLabelValues("bidi_stream", "a.B", fmt.Sprintf("M%d", i)))
		}
		if sum != c.want {
			t.Errorf("%s = %v, want %v", c.name, sum, c.want)
		}
	}
	if n := handledCount(t, reg); n != goroutines*streams {
		t.Errorf("%d handled, want %d", n, goroutines*streams)
	}
}

// BenchmarkGRPCMetrics is the stream interceptor's cost on an ext_proc
// stream of two messages each way.
func BenchmarkGRPCMetrics(b *testing.B) {
	info := &grpc.StreamServerInfo{FullMethod: "/envoy.service.ext_proc.v3.ExternalProcessor/Process", IsClientStream: true, IsServerStream: true}
	m := NewServerMetrics()
	p := grpcprom.NewServerMetrics()
	for _, impl := range []struct {
		name      string
		collector prometheus.Collector
		stream    grpc.StreamServerInterceptor
	}{
		{"corsgate", m, m.streamInterceptor},
		{"go-grpc-middleware", p, p.StreamServerInterceptor()},
	} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			prometheus.NewRegistry().MustRegister(impl.collector)
			ss := &fakeServerStream{ctx: context.Background(), n: 2}
			b.ReportAllocs()
			for b.Loop() {
				if err := impl.stream(nil, ss, info, exchange); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
