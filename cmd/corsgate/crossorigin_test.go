package main_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// TestCrossOriginProtectionThroughTheBinary sends state-changing requests
// through the Envoy stand-in to the built binary and counts what reached the
// upstream: a refused request never does.
func TestCrossOriginProtectionThroughTheBinary(t *testing.T) {
	t.Parallel()
	s := start(t, "testdata/crossorigin.yaml")
	sim := envoy(t, s.addr)
	var reached atomic.Int32
	up := envoystandin.Upstream{Handler: func(_ context.Context, _ *envoystandin.UpstreamRequest) (*envoystandin.UpstreamResponse, error) {
		reached.Add(1)
		return &envoystandin.UpstreamResponse{Status: 200}, nil
	}}
	cases := []struct {
		desc      string
		method    string
		authority string
		headers   []string
		status    int
		reaches   bool
		acao      string
	}{
		{desc: "cross-site form POST from an untrusted origin: 403 at the edge", method: "POST", authority: "pay.example.com",
			headers: []string{"origin", "https://evil.example", "sec-fetch-site", "cross-site", "cookie", "session=1"}, status: 403},
		{desc: "the same POST from the allowed origin reaches the upstream, with CORS headers", method: "POST", authority: "pay.example.com",
			headers: []string{"origin", "https://app.example.com", "sec-fetch-site", "cross-site", "cookie", "session=1"}, status: 200, reaches: true,
			acao: "https://app.example.com"},
		{desc: "same-origin POST passes", method: "POST", authority: "pay.example.com",
			headers: []string{"origin", "https://pay.example.com", "sec-fetch-site", "same-origin"}, status: 200, reaches: true},
		{desc: "old browser (no Sec-Fetch-Site), other host: 403", method: "PUT", authority: "pay.example.com",
			headers: []string{"origin", "https://evil.example"}, status: 403},
		{desc: "not from a browser (neither header): passes", method: "POST", authority: "pay.example.com", status: 200, reaches: true},
		{desc: "a cross-site GET is safe: passes (CORS still withholds the response)", method: "GET", authority: "pay.example.com",
			headers: []string{"origin", "https://evil.example", "sec-fetch-site", "cross-site"}, status: 200, reaches: true},
		{desc: "DryRun protection: the POST reaches the upstream", method: "POST", authority: "canary.pay.example.com",
			headers: []string{"origin", "https://evil.example", "sec-fetch-site", "cross-site"}, status: 200, reaches: true},
	}
	for _, tc := range cases {
		before := reached.Load()
		res, err := sim.Do(context.Background(), envoystandin.Request{Method: tc.method, Authority: tc.authority, Path: "/transfer",
			Headers: envoystandin.NewHeaders(tc.headers...)}, up)
		if err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		if res.Status != tc.status {
			t.Errorf("%s: status %d, want %d (details %q)", tc.desc, res.Status, tc.status, res.Details)
		}
		if got := reached.Load() > before; got != tc.reaches {
			t.Errorf("%s: reached the upstream = %v, want %v", tc.desc, got, tc.reaches)
		}
		if got := res.Headers.Get("access-control-allow-origin"); got != tc.acao {
			t.Errorf("%s: access-control-allow-origin %q, want %q", tc.desc, got, tc.acao)
		}
		if tc.status == 403 && res.Details != "cors_actual_rejected_cross_origin_refused" {
			t.Errorf("%s: details %q, want cors_actual_rejected_cross_origin_refused", tc.desc, res.Details)
		}
	}
}
