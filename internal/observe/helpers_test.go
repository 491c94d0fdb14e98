package observe_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/corsgate/corsgate/internal/cors"
)

// parseText reads the text exposition format, as Prometheus scrapes it.
func parseText(resp *http.Response) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func preflightReq(origin string) *cors.Request {
	return &cors.Request{Method: "OPTIONS", Origin: origin, HasOrigin: true, AccessControlRequestMethod: "PUT"}
}

// memStream feeds msgs to Server.Process, then io.EOF (Envoy's half-close),
// and discards the replies: the server's own allocations, without gRPC's
// (extproc's BenchmarkProcessServerOnly does the same).
type memStream struct {
	grpc.ServerStream
	msgs []*extprocv3.ProcessingRequest
	next int
	done bool
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
	return nil
}
func (s *memStream) Context() context.Context     { return context.Background() }
func (s *memStream) SetHeader(metadata.MD) error  { return nil }
func (s *memStream) SendHeader(metadata.MD) error { return nil }
func (s *memStream) SetTrailer(metadata.MD)       {}

var _ testing.TB = (*testing.B)(nil)
