package extproc_test

import (
	"context"
	"errors"
	"io"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/extprocwire"
)

// benchExchanges are the HTTP exchanges a CORS edge sees most, as the
// messages Envoy sends for each: a preflight (one round trip, answered at the
// edge), an actual CORS request (two), a request without Origin under a
// policy (two), and a request no policy applies to (one, response phase
// skipped).
var benchExchanges = []struct {
	name string
	msgs []*extprocv3.ProcessingRequest
}{
	{"req=preflight", []*extprocv3.ProcessingRequest{allowedPreflight}},
	{"req=actual", []*extprocv3.ProcessingRequest{actualGET, responseHeaders(":status", "200",
		"content-type", "application/json", "access-control-allow-origin", "*", "vary", "Accept-Encoding",
		"x-request-id", "r-1")}},
	{"req=no-origin", []*extprocv3.ProcessingRequest{
		requestHeaders(":authority", "api.example.com", ":path", "/api/items", ":method", "GET", ":scheme", "https"),
		responseHeaders(":status", "200", "content-type", "application/json", "vary", "Accept-Encoding")}},
	{"req=no-policy", []*extprocv3.ProcessingRequest{unmatchedGET}},
}

// runExchange plays one HTTP exchange on a fresh stream, as Envoy does, and
// ends the stream with a half-close, waiting for the server's OK.
func runExchange(b *testing.B, stream extprocv3.ExternalProcessor_ProcessClient, msgs []*extprocv3.ProcessingRequest) {
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			b.Fatalf("Send: %v", err)
		}
		if _, err := stream.Recv(); err != nil {
			b.Fatalf("Recv: %v", err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		b.Fatalf("CloseSend: %v", err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		b.Fatalf("end of stream: %v", err)
	}
}

// BenchmarkProcess measures whole exchanges over loopback gRPC: time per HTTP
// request (ns/op) and allocations, the client's included (client and server
// share the process). conc=1 is one exchange at a time; conc=parallel runs
// GOMAXPROCS clients over one connection, as an Envoy worker does.
//
//	go test -run '^$' -bench BenchmarkProcess -benchmem -count 6 ./extproc/ | benchstat -
func BenchmarkProcess(b *testing.B) {
	conn := serve(b, newStore(b, appPolicy, forwardPolicy, dryRunPolicy, exposeAllPolicy))
	client := extprocv3.NewExternalProcessorClient(conn)
	ctx := context.Background()
	for _, ex := range benchExchanges {
		b.Run(ex.name+"/conc=1", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				stream, err := client.Process(ctx)
				if err != nil {
					b.Fatal(err)
				}
				runExchange(b, stream, ex.msgs)
			}
		})
		b.Run(ex.name+"/conc=parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					stream, err := client.Process(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					runExchange(b, stream, ex.msgs)
				}
			})
		})
	}
}

// BenchmarkProcessServerOnly runs Server.Process on an in-memory stream, to
// count the server's own allocations apart from gRPC's transport and the
// client's. The stream is not gRPC: it hands the same message values to
// Process that grpc-go would, and discards the replies without marshalling.
// The real thing is BenchmarkProcess; this one isolates the part corsgate
// controls.
func BenchmarkProcessServerOnly(b *testing.B) {
	srv := extproc.NewServer(newStore(b, appPolicy, forwardPolicy, dryRunPolicy, exposeAllPolicy))
	for _, ex := range benchExchanges {
		b.Run(ex.name, func(b *testing.B) {
			b.ReportAllocs()
			stream := &memStream{ctx: context.Background()}
			for b.Loop() {
				stream.msgs, stream.next, stream.done = ex.msgs, 0, false
				if err := srv.Process(stream); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// memStream feeds msgs to Process, then io.EOF (Envoy's half-close); like
// Envoy, it sends nothing more after an immediate response. It keeps the
// replies when keep is set (off in benchmarks, not to count its own
// allocations).
type memStream struct {
	grpc.ServerStream
	ctx     context.Context
	msgs    []*extprocv3.ProcessingRequest
	next    int
	keep    bool
	replies []*extprocv3.ProcessingResponse
	done    bool // an immediate response was sent
}

func (s *memStream) Recv() (*extprocv3.ProcessingRequest, error) {
	if s.next == len(s.msgs) || s.done {
		return nil, io.EOF
	}
	s.next++
	return s.msgs[s.next-1], nil
}

func (s *memStream) Send(r *extprocv3.ProcessingResponse) error {
	s.done = r.GetImmediateResponse() != nil
	if s.keep {
		s.replies = append(s.replies, r)
	}
	return nil
}
func (s *memStream) Context() context.Context     { return s.ctx }
func (s *memStream) SetHeader(metadata.MD) error  { return nil }
func (s *memStream) SendHeader(metadata.MD) error { return nil }
func (s *memStream) SetTrailer(metadata.MD)       {}

// BenchmarkProcessWireServerOnly is BenchmarkProcessServerOnly for the wire
// path Runner serves: each message is decoded from its wire bytes by
// extprocwire.Codec, and each reply encoded by it, as grpc-go would call
// the codec, without the transport. mode=noop is the same exchange through
// a server that does no CORS work (decode, answer a fixed reply): the
// difference is what corsgate's own code costs.
//
//	go test -run '^$' -bench ProcessWireServerOnly -benchmem ./extproc/
func BenchmarkProcessWireServerOnly(b *testing.B) {
	srv := extproc.NewServer(newStore(b, appPolicy, forwardPolicy, dryRunPolicy, exposeAllPolicy))
	codec := extprocwire.NewCodec()
	for _, ex := range benchExchanges {
		// Built once: what grpc-go's transport hands the codec, so that the
		// stream itself allocates nothing and every allocation counted is
		// the server's.
		wire := make([]mem.BufferSlice, len(ex.msgs))
		for i, m := range ex.msgs {
			bs, err := proto.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			wire[i] = mem.BufferSlice{mem.SliceBuffer(bs)}
		}
		b.Run(ex.name+"/mode=corsgate", func(b *testing.B) {
			b.ReportAllocs()
			stream := &wireMemStream{ctx: context.Background(), codec: codec}
			for b.Loop() {
				stream.msgs, stream.next, stream.done = wire, 0, false
				if err := srv.ProcessWire(stream); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ex.name+"/mode=noop", func(b *testing.B) {
			b.ReportAllocs()
			stream := &wireMemStream{ctx: context.Background(), codec: codec}
			reply := extprocwire.Encode(&extprocv3.ProcessingResponse{})
			for b.Loop() {
				stream.msgs, stream.next, stream.done = wire, 0, false
				req := &extprocwire.Request{Headers: make([]extprocwire.Header, 0, 16)}
				for stream.RecvMsg(req) == nil {
					_ = stream.SendMsg(reply)
				}
			}
		})
	}
}

// wireMemStream feeds wire-format messages through the codec, as grpc-go's
// recv does, and marshals each reply, as its send does.
type wireMemStream struct {
	grpc.ServerStream
	ctx   context.Context
	codec *extprocwire.Codec
	msgs  []mem.BufferSlice
	next  int
	done  bool
}

func (s *wireMemStream) RecvMsg(m any) error {
	if s.next == len(s.msgs) || s.done {
		return io.EOF
	}
	s.next++
	return s.codec.Unmarshal(s.msgs[s.next-1], m)
}

func (s *wireMemStream) SendMsg(m any) error {
	if r, ok := m.(*extprocv3.ProcessingResponse); ok {
		s.done = r.GetImmediateResponse() != nil
	}
	data, err := s.codec.Marshal(m)
	data.Free()
	return err
}
func (s *wireMemStream) Context() context.Context { return s.ctx }
