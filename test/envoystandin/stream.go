package envoystandin

import (
	"context"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/metadata"
)

// event is what the server did on the stream: sent a message, or ended the
// stream. err is io.EOF when the server's handler returned OK (Envoy:
// onGrpcClose) and the status error otherwise (Envoy: onGrpcError).
type event struct {
	msg *extprocv3.ProcessingResponse
	err error
}

// stream is one ext_proc gRPC stream, Envoy's ExternalProcessorStreamImpl
// (client_impl.cc). Sends happen on the exchange's goroutine; a receive
// goroutine turns Recv results into events, so the exchange can wait on a
// reply, a timer and the upstream at once, as Envoy's event loop does.
type stream struct {
	cs     extprocv3.ExternalProcessor_ProcessClient
	cancel context.CancelFunc
	events chan event
	// remoteClosed is set once the exchange has consumed the server's end of
	// stream; closing it afterwards is not counted in streams_closed, as
	// ExternalProcessorStreamImpl::close() returns false then.
	remoteClosed bool
}

// openStream starts a stream on the shared connection (docs/envoy.md#what-the-stand-in-reproduces item 1).
// The stream's context is detached from the HTTP request's: Envoy decides
// itself when to close the stream, and a graceful close outlives the request.
func openStream(ctx context.Context, client extprocv3.ExternalProcessorClient, md metadata.MD) (*stream, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if len(md) > 0 {
		sctx = metadata.NewOutgoingContext(sctx, md)
	}
	cs, err := client.Process(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &stream{cs: cs, cancel: cancel, events: make(chan event)}
	go s.receive(sctx)
	return s, nil
}

func (s *stream) receive(ctx context.Context) {
	for {
		msg, err := s.cs.Recv()
		select {
		case s.events <- event{msg: msg, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// send writes one message. A failed Send is not reported here: grpc-go
// reports the stream's real fate (the server's status) through Recv, which
// is where Envoy learns it too (onRemoteClose).
func (s *stream) send(req *extprocv3.ProcessingRequest) {
	_ = s.cs.Send(req)
}

// abort is Envoy's default close: half-close (END_STREAM) and then reset the
// stream (RST_STREAM), so a grpc-go server sees codes.Canceled, or io.EOF if
// it reads the half-close first (docs/envoy.md#how-a-stream-ends, docs/envoy.md#what-the-stand-in-reproduces item 5).
func (s *stream) abort() {
	_ = s.cs.CloseSend()
	s.cancel()
}

// closeGracefully is the ext_proc_graceful_grpc_close variant: half-close,
// then wait up to the remote close timeout (1 s) for the server's status
// before resetting. Messages that arrive meanwhile are dropped, as Envoy
// ignores messages once processing is complete. It runs in the background.
func (s *stream) closeGracefully() {
	_ = s.cs.CloseSend()
	go func() {
		defer s.cancel()
		timer := time.NewTimer(remoteCloseTimeout)
		defer timer.Stop()
		for {
			select {
			case ev := <-s.events:
				if ev.err != nil {
					return
				}
			case <-timer.C:
				return
			}
		}
	}()
}
