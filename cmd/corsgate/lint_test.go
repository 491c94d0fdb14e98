package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLintCLI(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\nmetadata: {name: bad, namespace: shop}\nspec:\n  allowOrigins: [\"*\"]\n  allowCredentials: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	design, _ := os.ReadFile("testdata/design.yaml")
	for _, tc := range []struct {
		desc  string
		stdin string
		args  []string
		code  int
		out   string
	}{
		{desc: "valid with warnings", args: []string{"lint", "testdata/design.yaml"}, code: 0, out: "0 error(s), 2 warning(s)"},
		{desc: "--strict fails on the warning", args: []string{"lint", "--strict", "testdata/design.yaml"}, code: 1, out: `warning: "null"`},
		{desc: "an error names file, object and field, and the fix", args: []string{"lint", bad}, code: 1, out: "bad.yaml: CorsPolicy shop/bad: spec.allowOrigins[0]: error:"},
		{desc: "standard input", stdin: string(design), args: []string{"lint", "-"}, code: 0, out: "-: CorsPolicy shop/legacy"},
		{desc: "a path that does not exist", args: []string{"lint", "testdata/missing.yaml"}, code: 2},
		{desc: "no path", args: []string{"lint"}, code: 2},
	} {
		out, stderr, code := runTool(t, tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("%s: exit %d (want %d), output lacks %q:\n%s%s", tc.desc, code, tc.code, tc.out, out, stderr)
		}
	}

	out, _, code := runTool(t, "", "lint", "-o", "json", bad)
	var rep struct {
		Errors   int `json:"errors"`
		Problems []struct {
			File, Object, Field, Severity, Message, Fix string
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("lint -o json: exit %d, %v\n%s", code, err, out)
	}
	if rep.Errors == 0 || rep.Problems[0].Object != "shop/bad" || rep.Problems[0].Field == "" || rep.Problems[0].Fix == "" {
		t.Errorf("json report %+v", rep)
	}
}
