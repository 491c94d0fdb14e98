package envoystandin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// docs/envoy.md#what-the-stand-in-reproduces item 11: the counters of a plain two-phase request.
func TestCounters(t *testing.T) {
	t.Parallel()
	conn, proc := startProcessor(t, answer(passThrough))
	sim := newSim(conn, envoystandin.Config{})
	for range 3 {
		if _, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{}); err != nil {
			t.Fatalf("Do: %v", err)
		}
	}
	for range 3 {
		proc.next()
	}
	want := envoystandin.Stats{StreamsStarted: 3, StreamMsgsSent: 6, StreamMsgsReceived: 6, StreamsClosed: 3}
	if got := sim.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

// docs/envoy.md#how-a-stream-ends, docs/envoy.md#what-the-stand-in-reproduces item 5: how the server sees the stream end.
func TestStreamEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		graceful bool
		check    func(error) bool
		want     string
	}{
		{desc: "default: half-close plus reset", check: isNormalEnd, want: "io.EOF or codes.Canceled"},
		{desc: "graceful: half-close, then wait for the server", graceful: true,
			check: func(err error) bool { return errors.Is(err, io.EOF) }, want: "io.EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, proc := startProcessor(t, answer(passThrough))
			sim := newSim(conn, envoystandin.Config{GracefulClose: tc.graceful})
			if _, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{}); err != nil {
				t.Fatalf("Do: %v", err)
			}
			if end := proc.next().end; !tc.check(end) {
				t.Errorf("server saw the stream end with %v, want %s", end, tc.want)
			}
		})
	}
}

// docs/envoy.md#how-a-stream-ends: Envoy does not stop at a half-close, it resets the stream,
// so a server that never reads again still sees its context cancelled.
func TestStreamEndResetsStream(t *testing.T) {
	t.Parallel()
	cancelled := make(chan error, 1)
	conn, _ := startProcessor(t, func(s *procStream) error {
		s.recv()
		s.send(requestHeadersReply(nil, nil))
		s.recv()
		s.send(responseHeadersReply(nil))
		select { // no more Recv: only a reset can end this
		case <-s.srv.Context().Done():
			cancelled <- s.srv.Context().Err()
		case <-time.After(liveness):
			cancelled <- errors.New("the stream was never reset")
		}
		return nil
	})
	sim := newSim(conn, envoystandin.Config{})
	if _, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{}); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("server stream context: %v, want context.Canceled", err)
	}
}

// docs/envoy.md#how-a-stream-ends: from 1.37 the stream closes as soon as no more messages can
// be needed (here: right after a mode_override that skips the response
// phase, before the upstream is called); before, only when the HTTP request
// ends.
func TestStreamCloseOptimisation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		version envoystandin.Version
		want    []string
	}{
		{desc: "1.37 closes before the upstream call", version: envoystandin.Envoy137, want: []string{"stream ended", "upstream called"}},
		{desc: "1.36 keeps it open for the whole request", version: envoystandin.Envoy136, want: []string{"upstream called", "stream ended"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var (
				mu     sync.Mutex
				events []string
				ended  = make(chan struct{})
			)
			record := func(e string) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, e)
			}
			conn, _ := startProcessor(t, func(s *procStream) error {
				s.recv()
				s.send(requestHeadersReply(nil, skipResponse()))
				s.drain()
				record("stream ended")
				close(ended)
				return nil
			})
			sim := newSim(conn, envoystandin.Config{Version: tc.version,
				Filter: &extprocfilterv3.ExternalProcessor{AllowModeOverride: true}})
			_, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{
				Handler: func(ctx context.Context, _ *envoystandin.UpstreamRequest) (*envoystandin.UpstreamResponse, error) {
					if tc.version >= envoystandin.Envoy137 {
						// Only an early close lets this return.
						select {
						case <-ended:
						case <-time.After(liveness):
							t.Errorf("the stream was not closed before the upstream call")
						}
					}
					record("upstream called")
					return &envoystandin.UpstreamResponse{Status: 200}, nil
				},
			})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			select {
			case <-ended:
			case <-time.After(liveness):
				t.Fatalf("the stream never ended")
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(events, tc.want) {
				t.Errorf("order = %q, want %q", events, tc.want)
			}
		})
	}
}

// docs/envoy.md#connections-latency-and-health-checks, docs/envoy.md#what-the-stand-in-reproduces item 1: many requests at once, one stream each, all on
// one HTTP/2 connection, no cross-talk.
func TestConcurrentRequestsShareOneConnection(t *testing.T) {
	t.Parallel()
	const n = 64
	conn, proc := startProcessor(t, func(s *procStream) error {
		// Per-stream state, as a CORS server keeps the request's Origin.
		m := s.recv()
		var id string
		for _, h := range m.GetRequestHeaders().GetHeaders().GetHeaders() {
			if h.GetKey() == "x-id" {
				id = string(h.GetRawValue())
			}
		}
		s.send(requestHeadersReply(nil, nil))
		if s.recv() == nil {
			return nil
		}
		s.send(responseHeadersReply(sets(set("x-echo", id, false))))
		s.drain()
		return nil
	})
	sim := newSim(conn, envoystandin.Config{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprint(i)
			res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example", Headers: envoystandin.NewHeaders("x-id", id)}, envoystandin.Upstream{})
			switch {
			case err != nil:
				errs <- err
			case res.Headers.Get("x-echo") != id:
				errs <- fmt.Errorf("request %s got x-echo %q", id, res.Headers.Get("x-echo"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	peers := map[string]bool{}
	for range n {
		peers[proc.next().peer] = true
	}
	if len(peers) != 1 {
		t.Errorf("streams came from %d client addresses, want 1 shared connection: %v", len(peers), peers)
	}
	if got := sim.Stats().StreamsStarted; got != n {
		t.Errorf("streams_started = %d, want %d", got, n)
	}
}

// docs/envoy.md#what-a-request-message-carries: grpc_service.initial_metadata and per-route
// grpc_initial_metadata travel as gRPC metadata.
func TestInitialMetadata(t *testing.T) {
	t.Parallel()
	conn, proc := startProcessor(t, answer(passThrough))
	sim := newSim(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{
		GrpcService: grpcService("x-tenant", "base", "x-zone", "eu"),
	}})
	route := &extprocfilterv3.ExtProcPerRoute{Override: &extprocfilterv3.ExtProcPerRoute_Overrides{Overrides: &extprocfilterv3.ExtProcOverrides{
		GrpcInitialMetadata: grpcService("x-tenant", "acme").GetInitialMetadata(),
	}}}
	if _, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example", Route: route}, envoystandin.Upstream{}); err != nil {
		t.Fatalf("Do: %v", err)
	}
	md := proc.next().md
	if got := md.Get("x-tenant"); !slices.Equal(got, []string{"acme"}) {
		t.Errorf("x-tenant = %q, want the route's [acme]", got)
	}
	if got := md.Get("x-zone"); !slices.Equal(got, []string{"eu"}) {
		t.Errorf("x-zone = %q, want [eu]", got)
	}
}
