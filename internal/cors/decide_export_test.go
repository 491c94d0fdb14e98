package cors_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
)

var update = flag.Bool("update", false, "rewrite testdata/decide_cases.json from decideCases")

// ExportedCase is one decideCases entry as testdata/decide_cases.json holds
// it, for tests outside this package that must play the same table (the
// explain-versus-server agreement test in internal/explain).
type ExportedCase struct {
	Desc    string            `json:"desc"`
	Config  cors.Config       `json:"config"`
	Request cors.Request      `json:"request"`
	Kind    string            `json:"kind"`
	Action  string            `json:"action"`
	Allowed bool              `json:"allowed"`
	Reason  string            `json:"reason"`
	Status  int               `json:"status,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	ExposeU bool              `json:"exposeResponseHeaders,omitempty"`
}

// TestDecideCasesExported keeps testdata/decide_cases.json equal to
// decideCases: a case added here and not exported fails until
// `go test ./internal/cors -run TestDecideCasesExported -update` is run.
func TestDecideCasesExported(t *testing.T) {
	out := make([]ExportedCase, len(decideCases))
	for i, tc := range decideCases {
		out[i] = ExportedCase{Desc: tc.desc, Config: tc.cfg, Request: tc.req, Kind: tc.kind.String(), Action: tc.action.String(),
			Allowed: tc.allowed, Reason: tc.reason.Label(), Status: tc.status, Headers: tc.headers, ExposeU: tc.exposeU}
	}
	want, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	const file = "testdata/decide_cases.json"
	if *update {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v: run go test ./internal/cors -run TestDecideCasesExported -update", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not decideCases: run go test ./internal/cors -run TestDecideCasesExported -update", file)
	}
}
