package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestExplainFixConsequences runs `corsgate explain` as an operator would on
// requests whose smallest fix changes more than the request itself, and
// checks that both outputs say so (issue 21).
func TestExplainFixConsequences(t *testing.T) {
	t.Parallel()
	const policies = "testdata/explain-fix.yaml"
	for _, tc := range []struct {
		desc string
		args []string
		text []string // lines (or parts) the text output must have
		not  []string // what it must not say
		json string   // a fix.effects kind, or "-" for fix.none
	}{
		{desc: `credentials against "*": the fix says every other origin loses access`,
			args: []string{"--credentials", "https://public.example.com/x", "-H", "Origin: https://app.example.com"},
			text: []string{`  breaks:  every origin other than "https://app.example.com" loses access to host public.example.com`},
			json: "access-removed"},
		{desc: "DryRun to Enforce: the fix says every request the policy covers changes",
			args: []string{"https://trial.example.com/x", "-H", "Origin: https://app.example.com"},
			text: []string{"  - set spec.mode: Enforce", "  also:    every request to host trial.example.com (every path) changes enforcement"},
			json: "enforcement"},
		// Fetch §2.2.1 "normalize a method": a page's "put" is sent as "PUT".
		{desc: "lower-case put: the fix is for the PUT a browser sends",
			args: []string{"-X", "OPTIONS", "https://api.example.com/x", "-H", "Origin: https://app.example.com", "-H", "Access-Control-Request-Method: put"},
			text: []string{`  note:    no browser asks for "put"`, `  - add "PUT" to spec.allowMethods`},
			not:  []string{`add "put"`, "- put"},
			json: "access-added"},
		{desc: "an invalid deciding policy is repaired, not shadowed by a new one",
			args: []string{"--credentials", "https://broken.example.com/x", "-H", "Origin: https://app.example.com"},
			text: []string{"Fix:       smallest change to shop/broken:", `  - remove "*" from spec.allowOrigins`, "  also:    the policy decides nothing today (it does not compile)"},
			not:  []string{"(new)", "create CorsPolicy"},
			json: "starts-serving"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"explain", "--policies", policies}, tc.args...)
			out, stderr, code := runTool(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, want := range tc.text {
				if !strings.Contains(out, want) {
					t.Errorf("text output lacks %q:\n%s", want, out)
				}
			}
			for _, bad := range tc.not {
				if strings.Contains(out, bad) {
					t.Errorf("text output has %q:\n%s", bad, out)
				}
			}
			out, stderr, code = runTool(t, "", append(args, "-o", "json")...)
			if code != 0 {
				t.Fatalf("-o json: exit %d: %s", code, stderr)
			}
			var res struct {
				Fix struct {
					Effects []struct {
						Kind    string `json:"kind"`
						Message string `json:"message"`
					} `json:"effects"`
				} `json:"fix"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("not one JSON object: %v\n%s", err, out)
			}
			found := false
			for _, e := range res.Fix.Effects {
				found = found || e.Kind == tc.json && e.Message != ""
			}
			if !found {
				t.Errorf("JSON fix.effects %+v, want one of kind %s", res.Fix.Effects, tc.json)
			}
		})
	}
}
