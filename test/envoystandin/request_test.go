package envoystandin_test

import (
	"errors"
	"regexp"
	"slices"
	"testing"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// docs/envoy.md#how-request-headers-arrive, docs/envoy.md#what-the-stand-in-reproduces item 2: what request_headers looks like on the wire.
func TestRequestHeadersMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		cfg     envoystandin.Config
		req     envoystandin.Request
		want    []string // name, value pairs in order
		wantEOS bool
	}{
		{
			desc: "pseudo-headers first in Envoy's order, keys lower-cased",
			req: envoystandin.Request{Method: "OPTIONS", Authority: "api.example.com", Path: "/v1/items?x=1",
				Headers: envoystandin.NewHeaders("Origin", "https://app.example", "Access-Control-Request-Method", "PUT")},
			want: []string{":authority", "api.example.com", ":path", "/v1/items?x=1", ":method", "OPTIONS", ":scheme", "http",
				"origin", "https://app.example", "access-control-request-method", "PUT"},
			wantEOS: true,
		},
		{
			desc: "HTTP/1 host becomes :authority, no host entry; defaults GET / http",
			req:  envoystandin.Request{Headers: envoystandin.NewHeaders("Host", "api.example.com:8443", "accept", "*/*")},
			want: []string{":authority", "api.example.com:8443", ":path", "/", ":method", "GET", ":scheme", "http",
				"accept", "*/*"},
			wantEOS: true,
		},
		{
			desc: "repeated inline headers are joined with a comma, others stay separate entries",
			req: envoystandin.Request{Method: "OPTIONS", Scheme: "https", Authority: "a.example",
				Headers: envoystandin.NewHeaders(
					"origin", "https://a.example", "accept", "text/html", "Origin", "https://b.example",
					"access-control-request-headers", "x-a", "accept", "*/*", "access-control-request-headers", "x-b, x-c",
					"x-forwarded-for", "10.0.0.1", "X-Forwarded-For", "10.0.0.2", "user-agent", "a", "user-agent", "b")},
			want: []string{":authority", "a.example", ":path", "/", ":method", "OPTIONS", ":scheme", "https",
				"origin", "https://a.example,https://b.example", "accept", "text/html",
				"access-control-request-headers", "x-a,x-b, x-c", "accept", "*/*",
				"x-forwarded-for", "10.0.0.1,10.0.0.2", "user-agent", "a,b"},
			wantEOS: true,
		},
		{
			desc: "connection-specific headers never reach the filter; te: trailers does",
			req: envoystandin.Request{Authority: "a.example", Headers: envoystandin.NewHeaders(
				"connection", "keep-alive", "keep-alive", "timeout=5", "te", "trailers", "transfer-encoding", "chunked", "upgrade", "h2c", "x-a", "1")},
			want: []string{":authority", "a.example", ":path", "/", ":method", "GET", ":scheme", "http",
				"te", "trailers", "x-a", "1"},
			wantEOS: true,
		},
		{
			desc: "a body clears end_of_stream",
			req:  envoystandin.Request{Method: "POST", Authority: "a.example", Body: []byte(`{}`), Headers: envoystandin.NewHeaders("content-type", "application/json")},
			want: []string{":authority", "a.example", ":path", "/", ":method", "POST", ":scheme", "http",
				"content-type", "application/json"},
		},
		{
			desc: "values are bytes: obs-text travels untouched in raw_value",
			req:  envoystandin.Request{Authority: "a.example", Headers: envoystandin.NewHeaders("x-latin1", "caf\xe9")},
			want: []string{":authority", "a.example", ":path", "/", ":method", "GET", ":scheme", "http",
				"x-latin1", "caf\xe9"},
			wantEOS: true,
		},
		{
			desc: "forward_rules decide which names are sent at all",
			cfg: envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{ForwardRules: &extprocfilterv3.HeaderForwardingRules{
				AllowedHeaders: &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{
					{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: ":"}},
					{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "origin"}},
				}},
			}}},
			req: envoystandin.Request{Authority: "a.example", Headers: envoystandin.NewHeaders("origin", "https://a.example", "cookie", "s=1")},
			want: []string{":authority", "a.example", ":path", "/", ":method", "GET", ":scheme", "http",
				"origin", "https://a.example"},
			wantEOS: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, proc := startProcessor(t, answer(passThrough))
			sim := newSim(conn, tc.cfg)
			if _, err := sim.Do(t.Context(), tc.req, envoystandin.Upstream{}); err != nil {
				t.Fatalf("Do: %v", err)
			}
			first := proc.next().msgs[0]
			rh := first.GetRequestHeaders()
			if rh == nil {
				t.Fatalf("first message is %T, want request_headers", first.GetRequest())
			}
			if got := pairs(t, rh.GetHeaders()); !slices.Equal(got, tc.want) {
				t.Errorf("request_headers:\n got %q\nwant %q", got, tc.want)
			}
			if rh.GetEndOfStream() != tc.wantEOS {
				t.Errorf("end_of_stream = %v, want %v", rh.GetEndOfStream(), tc.wantEOS)
			}
			if first.GetMetadataContext() == nil {
				t.Errorf("metadata_context is nil; Envoy always sends one, empty by default")
			}
		})
	}
}

// docs/envoy.md#what-a-request-message-carries: protocol_config rides on the first message only, from 1.34.
func TestProtocolConfigOnFirstMessageOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		version envoystandin.Version
		want    bool
	}{
		{desc: "latest sends it", version: envoystandin.Latest, want: true},
		{desc: "1.34 sends it", version: envoystandin.Envoy134, want: true},
		{desc: "1.33 does not", version: envoystandin.Envoy133, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, proc := startProcessor(t, answer(passThrough))
			sim := newSim(conn, envoystandin.Config{Version: tc.version})
			if _, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{}); err != nil {
				t.Fatalf("Do: %v", err)
			}
			rec := proc.next()
			if len(rec.msgs) != 2 {
				t.Fatalf("server got %d messages, want request_headers and response_headers", len(rec.msgs))
			}
			if got := rec.msgs[0].GetProtocolConfig() != nil; got != tc.want {
				t.Errorf("protocol_config on the first message: %v, want %v", got, tc.want)
			}
			if rec.msgs[1].GetProtocolConfig() != nil {
				t.Errorf("protocol_config on the second message; Envoy sends it once per stream")
			}
		})
	}
}

// docs/envoy.md#how-request-headers-arrive: the headers a default HCM adds before any filter.
func TestEnvoyHeaders(t *testing.T) {
	t.Parallel()
	conn, proc := startProcessor(t, answer(passThrough))
	sim := newSim(conn, envoystandin.Config{EnvoyHeaders: true})
	res, err := sim.Do(t.Context(), envoystandin.Request{Scheme: "https", Authority: "a.example"}, envoystandin.Upstream{})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	rec := proc.next()
	got := pairs(t, rec.msgs[0].GetRequestHeaders().GetHeaders())
	if len(got) != 12 || got[8] != "x-forwarded-proto" || got[9] != "https" || got[10] != "x-request-id" {
		t.Fatalf("request_headers = %q, want the pseudo-headers then x-forwarded-proto: https and x-request-id", got)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(got[11]) {
		t.Errorf("x-request-id %q is not a version 4 UUID", got[11])
	}
	resp := pairs(t, rec.msgs[1].GetResponseHeaders().GetHeaders())
	if len(resp) != 4 || resp[0] != ":status" || resp[2] != "x-envoy-upstream-service-time" {
		t.Errorf("response_headers = %q, want :status then x-envoy-upstream-service-time", resp)
	}
	if res.UpstreamRequest.Headers.Get("x-request-id") != got[11] {
		t.Errorf("upstream saw x-request-id %q, want the one ext_proc saw, %q", res.UpstreamRequest.Headers.Get("x-request-id"), got[11])
	}
}

// docs/envoy.md#streams-that-start-with-response-headers and docs/envoy.md#what-the-stand-in-reproduces item 4: response_headers starts with :status.
func TestResponseHeadersMessage(t *testing.T) {
	t.Parallel()
	conn, proc := startProcessor(t, answer(passThrough))
	sim := newSim(conn, envoystandin.Config{})
	_, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{
		Status:  201,
		Headers: envoystandin.NewHeaders("Vary", "Accept-Encoding", "Set-Cookie", "a=1", "vary", "Accept", "Set-Cookie", "b=2", "Connection", "close"),
		Body:    []byte("created"),
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	rh := proc.next().msgs[1].GetResponseHeaders()
	want := []string{":status", "201", "vary", "Accept-Encoding,Accept", "set-cookie", "a=1", "set-cookie", "b=2"}
	if got := pairs(t, rh.GetHeaders()); !slices.Equal(got, want) {
		t.Errorf("response_headers:\n got %q\nwant %q", got, want)
	}
	if rh.GetEndOfStream() {
		t.Errorf("end_of_stream = true for a response with a body")
	}
}

// A Request Envoy's codec would refuse never reaches the filter.
func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc       string
		req        envoystandin.Request
		wantStatus int
	}{
		{desc: "no authority", req: envoystandin.Request{}, wantStatus: 400},
		{desc: "pseudo-header in Headers", req: envoystandin.Request{Authority: "a", Headers: envoystandin.NewHeaders(":path", "/x")}, wantStatus: 400},
		{desc: "CR LF in a value", req: envoystandin.Request{Authority: "a", Headers: envoystandin.NewHeaders("x", "a\r\nb: c")}, wantStatus: 400},
		{desc: "path not origin-form", req: envoystandin.Request{Authority: "a", Path: "v1"}, wantStatus: 400},
		{desc: "method not a token", req: envoystandin.Request{Authority: "a", Method: "GET /"}, wantStatus: 400},
		{desc: "over max_headers_count", req: envoystandin.Request{Authority: "a", Headers: manyHeaders(97)}, wantStatus: 431},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, proc := startProcessor(t, answer(passThrough))
			sim := newSim(conn, envoystandin.Config{})
			_, err := sim.Do(t.Context(), tc.req, envoystandin.Upstream{})
			re, ok := errors.AsType[*envoystandin.RequestError](err)
			if !ok {
				t.Fatalf("Do error = %v, want a *RequestError", err)
			}
			if re.Status != tc.wantStatus {
				t.Errorf("RequestError.Status = %d, want %d (%v)", re.Status, tc.wantStatus, re)
			}
			if n := proc.streamsOpened(); n != 0 || sim.Stats().StreamsStarted != 0 {
				t.Errorf("a refused request opened a stream")
			}
		})
	}
}

func manyHeaders(n int) envoystandin.Headers {
	var h envoystandin.Headers
	for i := range n {
		h = append(h, envoystandin.Header{Name: "x-h", Value: string(rune('a' + i%26))})
	}
	return h
}

// Config.Validate refuses what the stand-in cannot run, with a way out.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		cfg     envoystandin.Config
		wantErr string
	}{
		{desc: "zero config is Envoy's defaults", cfg: envoystandin.Config{}},
		{desc: "attributes need CEL", cfg: envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{RequestAttributes: []string{"request.path"}}}, wantErr: "request_attributes is not reproduced"},
		{desc: "observability mode", cfg: envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{ObservabilityMode: true}}, wantErr: "observability_mode is not reproduced"},
		{desc: "unknown version", cfg: envoystandin.Config{Version: 120}, wantErr: "Version 120 is not modelled"},
		{desc: "proto validation", cfg: envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{
			ProcessingMode: &extprocfilterv3.ProcessingMode{RequestHeaderMode: 7}}}, wantErr: "Envoy would reject"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !regexp.MustCompile(regexp.QuoteMeta(tc.wantErr)).MatchString(err.Error())):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.wantErr == "" {
				return
			}
			sim := envoystandin.New(nil, tc.cfg)
			if _, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a"}, envoystandin.Upstream{}); err == nil {
				t.Errorf("Do with an invalid config returned no error")
			}
		})
	}
}
