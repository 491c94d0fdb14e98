package extproc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
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
)

// runLimited serves appPolicy through a Runner with limits and returns a
// connection and the function that starts the shutdown and waits for Start
// to return (how long it took).
func runLimited(t *testing.T, limits extproc.Limits, shutdownTimeout time.Duration) (*grpc.ClientConn, func() time.Duration) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &extproc.Runner{Server: extproc.NewServer(newStore(t, appPolicy)), Listener: lis, Limits: limits, ShutdownTimeout: shutdownTimeout}
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() time.Duration {
		began := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Runner.Start: %v", err)
		}
		stopped = true
		return time.Since(began)
	}
	t.Cleanup(func() {
		conn.Close()
		if !stopped {
			stop()
		}
	})
	return conn, stop
}

// openAnswered sends an allowed preflight on a new stream and waits for its
// answer: the stream's handler is then running.
func openAnswered(t *testing.T, ctx context.Context, conn *grpc.ClientConn) (extprocv3.ExternalProcessor_ProcessClient, error) {
	t.Helper()
	stream, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		return nil, err
	}
	return stream, sendRecv(stream, actualGET)
}

// sendRecv sends msg and reads the answer. A stream the server has already
// ended (refused by MaxStreams before the client's first message) fails Send
// with io.EOF, which says nothing: its status only comes from Recv.
func sendRecv(stream extprocv3.ExternalProcessor_ProcessClient, msg *extprocv3.ProcessingRequest) error {
	if err := stream.Send(msg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_, err := stream.Recv()
	return err
}

// The idle timeout ends a stream that sends nothing, and one that stops
// between request and response headers, with DEADLINE_EXCEEDED; a stream
// whose messages come closer together than the timeout is never cut, however
// long it lives. The margins are wide, and the test does not run in parallel
// with the package's others: it measures time, on a machine that may be
// loaded.
func TestStreamIdleTimeout(t *testing.T) {
	const idle = 3 * time.Second
	conn, _ := runLimited(t, extproc.Limits{StreamIdleTimeout: idle}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cut := func(desc string, open func() (extprocv3.ExternalProcessor_ProcessClient, error)) chan string {
		done := make(chan string, 1)
		go func() {
			began := time.Now()
			stream, err := open()
			if err == nil {
				_, err = stream.Recv()
			}
			switch took := time.Since(began); {
			case status.Code(err) != codes.DeadlineExceeded:
				done <- fmt.Sprintf("%s: %v, want DEADLINE_EXCEEDED", desc, err)
			case took < idle:
				done <- fmt.Sprintf("%s: cut after %v, before the idle timeout %v", desc, took, idle)
			default:
				done <- ""
			}
		}()
		return done
	}
	silent := cut("a stream that sends nothing", func() (extprocv3.ExternalProcessor_ProcessClient, error) {
		return extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	})
	stalled := cut("a stream idle after request_headers", func() (extprocv3.ExternalProcessor_ProcessClient, error) {
		return openAnswered(t, ctx, conn)
	})

	busy, err := openAnswered(t, ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for _, msg := range []*extprocv3.ProcessingRequest{requestBody, upstreamOK} {
		time.Sleep(idle * 11 / 20)
		if err := busy.Send(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := busy.Recv(); err != nil {
			t.Fatalf("a message %v after the last one, %v into the stream: %v, want an answer", idle*11/20, time.Since(began), err)
		}
	}
	for _, c := range []chan string{silent, stalled} {
		if msg := <-c; msg != "" {
			t.Error(msg)
		}
	}
}

var requestBody = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
	RequestBody: &extprocv3.HttpBody{Body: []byte("x"), EndOfStream: true},
}}

// MaxStreams refuses a stream beyond the cap at once with
// RESOURCE_EXHAUSTED, and admits one again when a stream ends.
func TestMaxStreams(t *testing.T) {
	t.Parallel()
	conn, _ := runLimited(t, extproc.Limits{MaxStreams: 2}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := openAnswered(t, ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openAnswered(t, ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := openAnswered(t, ctx, conn); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third stream with MaxStreams 2: %v, want RESOURCE_EXHAUSTED", err)
	}
	// The order a loaded machine produces: the refusal reaches the client
	// before its first Send (Header waits for it), so Send fails with io.EOF
	// and only Recv carries RESOURCE_EXHAUSTED.
	late, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = late.Header() // returns once the server has ended the stream
	if err := sendRecv(late, actualGET); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third stream, refused before its first message: %v, want RESOURCE_EXHAUSTED", err)
	}
	// End the first stream as Envoy does, and wait for its handler to end.
	first.Send(upstreamOK)
	first.Recv()
	first.CloseSend()
	first.Recv()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := openAnswered(t, ctx, conn); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no stream admitted after one ended: %v", err)
		}
	}
}

// The zero Limits limits nothing, as a 0 on the command line says: one
// connection holds more streams open at once than the default
// per-connection limit would let it (a stream beyond that limit would wait,
// and the deadline would fail it).
func TestZeroLimitsLimitNothing(t *testing.T) {
	t.Parallel()
	conn, _ := runLimited(t, extproc.Limits{}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range extproc.DefaultMaxStreamsPerConnection + 1 {
		if _, err := openAnswered(t, ctx, conn); err != nil {
			t.Fatalf("stream %d, all open on one connection, with zero Limits: %v, want an answer", i+1, err)
		}
	}
}

// A negative limit is a mistake, not a way to turn it off: Runner refuses
// it, naming the flag and what to write.
func TestNegativeLimitRefused(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	r := &extproc.Runner{Server: extproc.NewServer(newStore(t, appPolicy)), Listener: lis, Limits: extproc.Limits{MaxStreams: -1}}
	err = r.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "--grpc-max-streams is negative: write 0 for no limit") {
		t.Fatalf("Start with MaxStreams -1: %v, want a refusal naming --grpc-max-streams", err)
	}
	if err := extproc.DefaultLimits().Validate(); err != nil {
		t.Errorf("DefaultLimits: %v", err)
	}
}

// MaxStreamsPerConnection is the HTTP/2 stream limit: the client waits for
// a free stream instead of being refused.
func TestMaxStreamsPerConnection(t *testing.T) {
	t.Parallel()
	conn, _ := runLimited(t, extproc.Limits{MaxStreamsPerConnection: 1}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := openAnswered(t, ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		_, err := openAnswered(t, ctx, conn)
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a second stream on a connection limited to one was served (%v) while the first was open", err)
	case <-time.After(300 * time.Millisecond):
	}
	first.CloseSend()
	first.Recv()
	if err := <-answered; err != nil {
		t.Errorf("the waiting stream, once the first ended: %v, want an answer", err)
	}
}

// A health Watch ends, after NOT_SERVING, as soon as the shutdown starts: it
// does not hold the graceful stop for its timeout.
func TestShutdownEndsHealthWatch(t *testing.T) {
	t.Parallel()
	conn, stop := runLimited(t, extproc.Limits{}, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: extproc.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	for {
		r, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}
	ended := make(chan []any, 1)
	go func() {
		var seen []any
		for {
			r, err := watch.Recv()
			if err != nil {
				ended <- append(seen, status.Code(err))
				return
			}
			seen = append(seen, r.Status)
		}
	}()
	if took := stop(); took > 10*time.Second {
		t.Errorf("the graceful stop took %v with a Watch open, want it not to wait for the Watch", took)
	}
	seen := <-ended
	if n := len(seen); n < 2 || seen[n-2] != healthpb.HealthCheckResponse_NOT_SERVING || seen[n-1] != codes.Unavailable {
		t.Errorf("the Watch saw %v, want NOT_SERVING and then UNAVAILABLE", seen)
	}
}
