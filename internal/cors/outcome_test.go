package cors_test

import (
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
)

func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc            string
		cfg             cors.Config
		req             cors.Request
		outcome, enforc cors.Outcome
	}{
		{desc: "no Origin", cfg: credentialedAPI, req: cors.Request{Method: "GET"},
			outcome: cors.OutcomeNotCORS, enforc: cors.OutcomeNotCORS},
		{desc: "allowed preflight", cfg: credentialedAPI, req: preflight("https://app.example.com", "PUT", ""),
			outcome: cors.OutcomePreflightAllowed, enforc: cors.OutcomePreflightAllowed},
		{desc: "rejected preflight", cfg: credentialedAPI, req: preflight("https://evil.example", "PUT", ""),
			outcome: cors.OutcomePreflightRejected, enforc: cors.OutcomePreflightRejected},
		{desc: "allowed actual", cfg: credentialedAPI, req: actual("GET", "https://app.example.com"),
			outcome: cors.OutcomeActualAllowed, enforc: cors.OutcomeActualAllowed},
		{desc: "denied actual", cfg: credentialedAPI, req: actual("GET", "https://evil.example"),
			outcome: cors.OutcomeActualDenied, enforc: cors.OutcomeActualDenied},
		{desc: "denied preflight under Forward is forwarded", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}, UnmatchedPreflight: cors.PreflightForward},
			req: preflight("https://evil.example", "GET", ""), outcome: cors.OutcomeForwarded, enforc: cors.OutcomeForwarded},
		{desc: "DryRun is forwarded, and records what Enforce would do", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}, Mode: cors.ModeDryRun},
			req: preflight("https://evil.example", "GET", ""), outcome: cors.OutcomeForwarded, enforc: cors.OutcomePreflightRejected},
		{desc: "cross-origin protection refuses at the edge", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}, CrossOriginProtection: cors.CrossOriginEnforce},
			req: cors.Request{Method: "POST", Origin: "https://evil.example", HasOrigin: true, SecFetchSite: "cross-site"}, outcome: cors.OutcomeRefused, enforc: cors.OutcomeRefused},
		{desc: "DryRun actual", cfg: cors.Config{AllowOrigins: []string{"https://a.example"}, Mode: cors.ModeDryRun},
			req: actual("GET", "https://a.example"), outcome: cors.OutcomeForwarded, enforc: cors.OutcomeActualAllowed},
	} {
		d := mustCompile(t, tc.cfg).Decide(&tc.req)
		if got := cors.OutcomeOf(&d); got != tc.outcome {
			t.Errorf("%s: OutcomeOf = %v, want %v", tc.desc, got, tc.outcome)
		}
		if got := cors.EnforceOutcomeOf(&d); got != tc.enforc {
			t.Errorf("%s: EnforceOutcomeOf = %v, want %v", tc.desc, got, tc.enforc)
		}
	}
}

func TestOutcomeStrings(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for o := cors.Outcome(0); int(o) < cors.NumOutcomes; o++ {
		s := o.String()
		if s == "unknown" || seen[s] {
			t.Errorf("outcome %d has string %q: want a distinct name", o, s)
		}
		seen[s] = true
		if back, ok := cors.ParseOutcome(s); !ok || back != o {
			t.Errorf("ParseOutcome(%q) = %v, %v; want %v", s, back, ok, o)
		}
	}
	if cors.Outcome(cors.NumOutcomes).String() != "unknown" {
		t.Error("an outcome past NumOutcomes must read unknown")
	}
	if _, ok := cors.ParseOutcome("allowed"); ok {
		t.Error(`ParseOutcome("allowed") succeeded; want false`)
	}
}
