package extproc_test

import (
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/test/extproctest"
)

// FuzzProcess drives one HTTP exchange with arbitrary request and upstream
// header values through Server.Process (on test/extproctest's in-memory
// stream, for speed: the server's own decoding and encoding, no transport) and checks properties of every reply:
//   - no panic, no error: CORS input is never a protocol fault;
//   - every header set is in raw_value only, with append explicitly false;
//   - every upstream Access-Control-* header is removed, and only those;
//   - the final Vary keeps every upstream token and names Origin exactly once
//     (unless the upstream said "*").
func FuzzProcess(f *testing.F) {
	f.Add("api.example.com", "/api/x", "GET", "https://app.example", "", "", "Accept-Encoding", "access-control-allow-origin", "*")
	f.Add("api.example.com", "/api", "OPTIONS", "https://app.example", "PUT", "x-trace-id", "", "x-a", "1")
	f.Add("expose.example.com", "/", "GET", "https://app.example", "", "", "origin, Origin", "x-b", "2")
	f.Add("API.example.com:8443", "/api?q", "POST", "null", "", "", "*", "access-control-max-age", "5")
	f.Add("forward.example.com", "/", "OPTIONS", "https://evil.example", "PATCH", "a,,b", " , ,", "set-cookie", "x")
	f.Add("dryrun.example.com", "/", "GET", "https://app.example,https://b.example", "", "", "", "content-type", "text/plain")

	srv := extproc.NewServer(newStore(f, appPolicy, forwardPolicy, dryRunPolicy, exposeAllPolicy))
	f.Fuzz(func(t *testing.T, authority, path, method, origin, acrm, acrh, vary, upName, upValue string) {
		req := requestHeaders(":authority", authority, ":path", path, ":method", method,
			"origin", origin, "access-control-request-method", acrm, "access-control-request-headers", acrh)
		upstream := []string{":status", "200", "vary", vary, strings.ToLower(upName), upValue}
		resp := responseHeaders(upstream...)
		stream := extproctest.New(req, resp)
		stream.Keep = true
		if err := srv.Process(stream); err != nil {
			t.Fatalf("Process: %v", err)
		}
		for _, r := range stream.Replies {
			checkSets(t, r)
		}
		if len(stream.Replies) == 2 {
			checkResponsePhase(t, stream.Replies[1].GetResponseHeaders().GetResponse().GetHeaderMutation(), upstream)
		}
	})
}

func checkSets(t *testing.T, r *extprocv3.ProcessingResponse) {
	t.Helper()
	var sets []*corev3.HeaderValueOption
	sets = append(sets, r.GetImmediateResponse().GetHeaders().GetSetHeaders()...)
	sets = append(sets, r.GetResponseHeaders().GetResponse().GetHeaderMutation().GetSetHeaders()...)
	for _, o := range sets {
		//lint:ignore SA1019 Envoy's ext_proc reads only the deprecated append (docs/envoy.md#append-versus-overwrite).
		appendFlag := o.GetAppend()
		if appendFlag == nil || appendFlag.GetValue() {
			t.Errorf("header %q: append is %v, want explicitly false", o.GetHeader().GetKey(), appendFlag)
		}
		if o.GetHeader().GetValue() != "" {
			t.Errorf("header %q: value %q set; Envoy reads raw_value only", o.GetHeader().GetKey(), o.GetHeader().GetValue())
		}
	}
}

func checkResponsePhase(t *testing.T, m *extprocv3.HeaderMutation, upstream []string) {
	t.Helper()
	var upstreamVary string
	var upstreamAC []string
	for i := 0; i < len(upstream); i += 2 {
		switch k := upstream[i]; {
		case k == "vary":
			// Every vary line counts, as Envoy's map holds them all.
			if upstreamVary != "" {
				upstreamVary += ","
			}
			upstreamVary += upstream[i+1]
		case strings.HasPrefix(k, "access-control-"):
			upstreamAC = append(upstreamAC, k)
		}
	}
	if m == nil {
		// Nothing changed: legitimate only when there was nothing to remove
		// (or the policy does not act on this exchange, which the replies
		// to the request phase decided).
		return
	}
	for _, name := range upstreamAC {
		if !slices.Contains(m.GetRemoveHeaders(), name) {
			t.Errorf("upstream %q not removed: %q", name, m.GetRemoveHeaders())
		}
	}
	for _, name := range m.GetRemoveHeaders() {
		if !strings.HasPrefix(name, "access-control-") {
			t.Errorf("removed %q, which is not an Access-Control-* header", name)
		}
	}
	finalVary, set := upstreamVary, false
	for _, o := range m.GetSetHeaders() {
		if o.GetHeader().GetKey() == "vary" {
			finalVary, set = string(o.GetHeader().GetRawValue()), true
		}
	}
	if !set {
		return
	}
	origins := 0
	for tok := range strings.SplitSeq(finalVary, ",") {
		if strings.EqualFold(strings.Trim(tok, " \t"), "origin") {
			origins++
		}
	}
	if origins != 1 {
		t.Errorf("Vary %q (upstream %q) names Origin %d times, want once", finalVary, upstreamVary, origins)
	}
	for tok := range strings.SplitSeq(upstreamVary, ",") {
		if tok = strings.Trim(tok, " \t"); tok != "" && !strings.Contains(finalVary, tok) {
			t.Errorf("Vary %q lost the upstream's %q", finalVary, tok)
		}
	}
}
