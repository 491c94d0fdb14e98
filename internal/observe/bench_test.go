package observe_test

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/observe"
	"github.com/corsgate/corsgate/internal/table"
	"github.com/corsgate/corsgate/test/extproctest"
)

func headers(kind string, kv ...string) *extprocv3.ProcessingRequest {
	hs := make([]*corev3.HeaderValue, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	h := &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: true}
	if kind == "response" {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: h}}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: h}}
}

// BenchmarkProcessServerOnly is extproc's benchmark of the same name with
// the binary's observer on: decision counters by policy, latency
// histograms, decision logs (denials, to a logger that drops them after the
// rate limit) and the origins inventory, over test/extproctest's in-memory
// stream (the codec's decoding and encoding counted, no transport). allocs/op
// with the observer on must stay what it is without one.
//
//	go test -run '^$' -bench BenchmarkProcessServerOnly -benchmem ./internal/observe/
func BenchmarkProcessServerOnly(b *testing.B) {
	tbl, _ := compile.NewBuilder().Build(testPolicies())
	store := &table.Store{}
	store.Swap(tbl)
	exchanges := []struct {
		name string
		msgs []*extprocv3.ProcessingRequest
	}{
		{"req=preflight-allowed", []*extprocv3.ProcessingRequest{headers("request", ":authority", "api.example.com", ":path", "/v1", ":method", "OPTIONS",
			"origin", "https://app.example.com", "access-control-request-method", "PUT")}},
		{"req=preflight-denied", []*extprocv3.ProcessingRequest{headers("request", ":authority", "api.example.com", ":path", "/v1", ":method", "OPTIONS",
			"origin", "https://evil.example", "access-control-request-method", "PUT")}},
		{"req=actual", []*extprocv3.ProcessingRequest{
			headers("request", ":authority", "api.example.com", ":path", "/v1", ":method", "GET", "origin", "https://app.example.com"),
			headers("response", ":status", "200", "content-type", "application/json", "vary", "Accept-Encoding")}},
		{"req=no-origin", []*extprocv3.ProcessingRequest{
			headers("request", ":authority", "api.example.com", ":path", "/v1", ":method", "GET"),
			headers("response", ":status", "200", "content-type", "application/json")}},
	}
	for _, obs := range []struct {
		name string
		opts []extproc.Option
	}{
		{"observer=none", nil},
		{"observer=on", []extproc.Option{extproc.WithObserver(observe.New(prometheus.NewRegistry(), logr.Discard(), observe.Options{}))}},
	} {
		srv := extproc.NewServer(store, obs.opts...)
		for _, ex := range exchanges {
			b.Run(obs.name+"/"+ex.name, func(b *testing.B) {
				b.ReportAllocs()
				stream := extproctest.New(ex.msgs...)
				for b.Loop() {
					stream.Replay()
					if err := srv.Process(stream); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
