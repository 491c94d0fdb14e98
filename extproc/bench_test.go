package extproc_test

import (
	"context"
	"errors"
	"io"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/extprocwire"
	"github.com/corsgate/corsgate/internal/header"
	"github.com/corsgate/corsgate/test/extproctest"
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
// count the server's own work apart from gRPC's transport and the client's:
// each message is decoded from its wire bytes by extprocwire.Codec, and each
// reply encoded by it, as grpc-go would call the codec (test/extproctest).
// mode=noop is the same exchange through a server that does no CORS work
// (decode, answer a fixed reply): the difference is what corsgate's own code
// costs. The real thing is BenchmarkProcess.
//
//	go test -run '^$' -bench ProcessServerOnly -benchmem ./extproc/
func BenchmarkProcessServerOnly(b *testing.B) {
	srv := extproc.NewServer(newStore(b, appPolicy, forwardPolicy, dryRunPolicy, exposeAllPolicy))
	for _, ex := range benchExchanges {
		b.Run(ex.name+"/mode=corsgate", func(b *testing.B) {
			b.ReportAllocs()
			stream := extproctest.New(ex.msgs...)
			for b.Loop() {
				stream.Replay()
				if err := srv.Process(stream); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ex.name+"/mode=noop", func(b *testing.B) {
			b.ReportAllocs()
			stream := extproctest.New(ex.msgs...)
			reply := extprocwire.Encode(&extprocv3.ProcessingResponse{})
			for b.Loop() {
				stream.Replay()
				req := &extprocwire.Request{Headers: make([]header.Field, 0, 16)}
				for stream.RecvMsg(req) == nil {
					_ = stream.SendMsg(reply)
				}
			}
		})
	}
}
