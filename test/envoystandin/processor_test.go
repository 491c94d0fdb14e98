//lint:file-ignore SA1019 Envoy's ext_proc reads only the deprecated append field (docs/envoy.md#append-versus-overwrite): the tests set it as Envoy expects.

package envoystandin_test

// Scripted ext_proc servers for the tests: real gRPC on 127.0.0.1:0, one
// script per test, recording every message and how each stream ended as the
// server saw it.

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// liveness bounds every blocking wait in the tests so that a bug fails the
// test with a message instead of hanging it. It is not an assertion on how
// long anything takes.
const liveness = 20 * time.Second

// streamRecord is one stream as the server saw it.
type streamRecord struct {
	msgs []*extprocv3.ProcessingRequest
	// end is the Recv error that ended the stream (io.EOF, or a status with
	// codes.Canceled), or nil when the script returned first.
	end  error
	peer string
	md   metadata.MD
}

// procStream is what a script works with.
type procStream struct {
	t   *testing.T
	srv extprocv3.ExternalProcessor_ProcessServer
	rec *streamRecord
}

// recv returns the next message, or nil once the client has ended the stream.
func (s *procStream) recv() *extprocv3.ProcessingRequest {
	m, err := s.srv.Recv()
	if err != nil {
		s.rec.end = err
		return nil
	}
	s.rec.msgs = append(s.rec.msgs, m)
	return m
}

func (s *procStream) send(r *extprocv3.ProcessingResponse) {
	if err := s.srv.Send(r); err != nil {
		s.t.Errorf("processor: Send: %v", err)
	}
}

// drain reads until the client ends the stream.
func (s *procStream) drain() {
	for s.recv() != nil {
	}
}

// processor is a scripted ExternalProcessor.
type processor struct {
	extprocv3.UnimplementedExternalProcessorServer
	t       *testing.T
	script  func(*procStream) error
	records chan *streamRecord
	mu      sync.Mutex
	opened  int
}

func (p *processor) Process(srv extprocv3.ExternalProcessor_ProcessServer) error {
	rec := &streamRecord{}
	if pr, ok := peer.FromContext(srv.Context()); ok {
		rec.peer = pr.Addr.String()
	}
	rec.md, _ = metadata.FromIncomingContext(srv.Context())
	p.mu.Lock()
	p.opened++
	p.mu.Unlock()
	err := p.script(&procStream{t: p.t, srv: srv, rec: rec})
	p.records <- rec
	return err
}

// next returns the next finished stream.
func (p *processor) next() *streamRecord {
	p.t.Helper()
	select {
	case r := <-p.records:
		return r
	case <-time.After(liveness):
		p.t.Fatalf("processor: no stream finished within %v", liveness)
		return nil
	}
}

func (p *processor) streamsOpened() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opened
}

// startProcessor serves script on 127.0.0.1:0 and returns a client
// connection to it (plaintext h2c, as an Envoy cluster with
// http2_protocol_options would use).
func startProcessor(t *testing.T, script func(*procStream) error) (*grpc.ClientConn, *processor) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &processor{t: t, script: script, records: make(chan *streamRecord, 1024)}
	srv := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(srv, p)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, p
}

// newSim is envoystandin.New with a patient message_timeout (10 s) unless the
// test sets one: on a shared CPU under the race detector a reply can take
// longer than Envoy's 200 ms default, and a test about something else must not
// turn into a timeout test. Timeout tests set their own.
func newSim(conn grpc.ClientConnInterface, cfg envoystandin.Config) *envoystandin.Sim {
	f := &extprocfilterv3.ExternalProcessor{}
	if cfg.Filter != nil {
		f = proto.Clone(cfg.Filter).(*extprocfilterv3.ExternalProcessor)
	}
	if f.MessageTimeout == nil {
		f.MessageTimeout = durationpb.New(10 * time.Second)
	}
	cfg.Filter = f
	return envoystandin.New(conn, cfg)
}

// Scripts and reply builders.

// answer replies to every message with reply(msg) until the client ends the
// stream; a nil reply sends nothing for that message.
func answer(reply func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse) func(*procStream) error {
	return func(s *procStream) error {
		for m := s.recv(); m != nil; m = s.recv() {
			if r := reply(m); r != nil {
				s.send(r)
			}
		}
		return nil
	}
}

// passThrough answers every headers message with an empty HeadersResponse.
func passThrough(m *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	if m.GetRequestHeaders() != nil {
		return requestHeadersReply(nil, nil)
	}
	return responseHeadersReply(nil)
}

func requestHeadersReply(mut *extprocv3.HeaderMutation, mode *extprocfilterv3.ProcessingMode) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{
			Response: &extprocv3.CommonResponse{HeaderMutation: mut},
		}},
		ModeOverride: mode,
	}
}

func responseHeadersReply(mut *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{
			Response: &extprocv3.CommonResponse{HeaderMutation: mut},
		}},
	}
}

func immediate(ir *extprocv3.ImmediateResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: ir}}
}

// set is a set_headers entry with raw_value and an explicit append, as a
// well-behaved server writes it (docs/envoy.md#what-the-corsgate-server-does).
func set(key, value string, appendValue bool) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header: &corev3.HeaderValue{Key: key, RawValue: []byte(value)},
		Append: wrapperspb.Bool(appendValue),
	}
}

func sets(opts ...*corev3.HeaderValueOption) *extprocv3.HeaderMutation {
	return &extprocv3.HeaderMutation{SetHeaders: opts}
}

// skipResponse is the fully explicit mode_override docs/envoy.md#skipping-the-response-phase recommends.
func skipResponse() *extprocfilterv3.ProcessingMode {
	return &extprocfilterv3.ProcessingMode{
		RequestHeaderMode:   extprocfilterv3.ProcessingMode_SEND,
		ResponseHeaderMode:  extprocfilterv3.ProcessingMode_SKIP,
		RequestBodyMode:     extprocfilterv3.ProcessingMode_NONE,
		ResponseBodyMode:    extprocfilterv3.ProcessingMode_NONE,
		RequestTrailerMode:  extprocfilterv3.ProcessingMode_SKIP,
		ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
	}
}

// pairs flattens a HeaderMap into name, value pairs, failing the test if a
// value travelled in `value` instead of `raw_value` (docs/envoy.md#how-request-headers-arrive).
func pairs(t *testing.T, hm *corev3.HeaderMap) []string {
	t.Helper()
	var out []string
	for _, h := range hm.GetHeaders() {
		if h.GetValue() != "" {
			t.Errorf("header %q carries value %q: Envoy leaves value empty and uses raw_value", h.GetKey(), h.GetValue())
		}
		out = append(out, h.GetKey(), string(h.GetRawValue()))
	}
	return out
}

// isNormalEnd reports whether the server saw the stream end the way Envoy
// ends it: half-close (io.EOF) or reset (codes.Canceled), docs/envoy.md#how-a-stream-ends.
func isNormalEnd(err error) bool {
	if errors.Is(err, io.EOF) {
		return true
	}
	return status.Code(err) == codes.Canceled
}

// grpcService is a GrpcService with initial metadata. The stand-in does not
// read the target (its ClientConn is the cluster), but Envoy requires one.
func grpcService(nameValues ...string) *corev3.GrpcService {
	gs := &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
		EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "cors_extproc"},
	}}
	for i := 0; i+1 < len(nameValues); i += 2 {
		gs.InitialMetadata = append(gs.InitialMetadata, &corev3.HeaderValue{Key: nameValues[i], Value: nameValues[i+1]})
	}
	return gs
}
