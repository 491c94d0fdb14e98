package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const corsPolicyHeader = "apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\n"

// lintJSON runs corsgate lint -o json and decodes its report.
type lintReport struct {
	Files, Policies, Errors, Warnings int
	Problems                          []struct {
		File, Object, Field, Severity, Message, Fix string
	}
}

func lintJSON(t *testing.T, stdin string, args ...string) (lintReport, int, string) {
	t.Helper()
	out, stderr, code := runTool(t, stdin, append([]string{"lint", "-o", "json"}, args...)...)
	var rep lintReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("lint -o json %q: exit %d, %v:\n%.2000s%.2000s", args, code, err, out, stderr)
	}
	return rep, code, out
}

func (r lintReport) has(field, severity, message, fix string) bool {
	for _, p := range r.Problems {
		if p.Field == field && p.Severity == severity && strings.Contains(p.Message, message) && strings.Contains(p.Fix, fix) {
			return true
		}
	}
	return false
}

// Issue 21, "lint says green for things it never checked", through the
// binary as it was seen: each input was reported green (exit 0) or with
// Go's decoder text and no field or fix.
func TestLintFindingsThroughTheBinary(t *testing.T) {
	t.Parallel()
	// kubectl get corspolicies -o yaml | corsgate lint --strict -
	list := "apiVersion: v1\nkind: List\nitems:\n" +
		"- apiVersion: policy.corsgate.io/v1alpha1\n  kind: CorsPolicy\n  metadata: {name: ok, namespace: shop, resourceVersion: \"12\", creationTimestamp: \"2026-12-01T10:00:00Z\"}\n  spec: {allowOrigins: [https://a.example]}\n" +
		"- apiVersion: policy.corsgate.io/v1alpha1\n  kind: CorsPolicy\n  metadata: {name: broken, namespace: shop}\n  spec: {allowOrigins: [\"*\"], allowCredentials: true}\n" +
		"metadata: {resourceVersion: \"\"}\n"
	out, stderr, code := runTool(t, list, "lint", "--strict", "-")
	if code != 1 || !strings.Contains(out, "2 polic(ies)") || !strings.Contains(out, "CorsPolicy shop/broken: spec.allowOrigins[0]: error") {
		t.Errorf("a List on standard input: exit %d; want 1, both policies read and the broken one reported:\n%s%s", code, out, stderr)
	}

	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		desc, content                 string
		field, severity, message, fix string
	}{
		{"a misspelt kind", "apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicies\nmetadata: {name: p}\nspec: {allowOrigins: [https://a.example]}\n",
			"kind", "error", "is not a kind of policy.corsgate.io", "write kind: CorsPolicy"},
		{"an invalid name", corsPolicyHeader + "metadata: {name: Bad_Name x}\nspec: {allowOrigins: [https://a.example]}\n",
			"metadata.name", "error", "not a valid object name", `write "bad-name-x"`},
		{"a 300-character name", corsPolicyHeader + "metadata: {name: " + strings.Repeat("n", 300) + "}\nspec: {allowOrigins: [https://a.example]}\n",
			"metadata.name", "error", "253", "write"},
		{"an unknown field", corsPolicyHeader + "metadata: {name: p}\nspec: {allowOrigins: [https://a.example], allowCredentails: true}\n",
			"spec.allowCredentails", "error", `unknown field "allowCredentails"`, "write allowCredentials"},
		{"a wrong type", corsPolicyHeader + "metadata: {name: p}\nspec: {allowOrigins: [https://a.example], maxAge: \"600\"}\n",
			"spec.maxAge", "error", "not an integer", "maxAge: 600"},
		{"a URL in hosts", corsPolicyHeader + "metadata: {name: p}\nspec: {hosts: [\"https://f.example.com\"], allowOrigins: [https://a.example]}\n",
			"spec.hosts[0]", "error", "is a URL", `write "f.example.com"`},
		{"the null origin with credentials", corsPolicyHeader + "metadata: {name: p}\nspec: {allowOrigins: [\"null\"], allowCredentials: true}\n",
			"spec.allowOrigins[0]", "error", `sends the origin "null")`, `remove "null"`},
		{"a bad method (a backtick in the token list)", corsPolicyHeader + "metadata: {name: p}\nspec: {allowOrigins: [https://a.example], allowMethods: [\"P UT\"]}\n",
			"spec.allowMethods[0]", "error", "`|~)", `write e.g. "PUT"`},
	} {
		p := file(strings.ReplaceAll(tc.desc, " ", "-")+".yaml", tc.content)
		rep, code, _ := lintJSON(t, "", p)
		if code != 1 || !rep.has(tc.field, tc.severity, tc.message, tc.fix) {
			t.Errorf("%s: exit %d; want 1 and an %s at %s holding %q, fix %q: %+v", tc.desc, code, tc.severity, tc.field, tc.message, tc.fix, rep.Problems)
		}
	}

	// Policies in a sub-folder: said (failing --strict), or read with -R.
	sub := t.TempDir()
	os.MkdirAll(filepath.Join(sub, "team"), 0o755)
	os.WriteFile(filepath.Join(sub, "top.yaml"), []byte(corsPolicyHeader+"metadata: {name: top}\nspec: {allowOrigins: [https://a.example]}\n"), 0o644)
	os.WriteFile(filepath.Join(sub, "team", "p.yaml"), []byte(corsPolicyHeader+"metadata: {name: team}\nspec: {allowOrigins: [\"*\"], allowCredentials: true}\n"), 0o644)
	if out, stderr, code := runTool(t, "", "lint", "--strict", sub); code != 1 || !strings.Contains(out, "not checked") || !strings.Contains(out, "-R") {
		t.Errorf("a sub-folder under --strict: exit %d; want 1 and a warning that it was not checked:\n%s%s", code, out, stderr)
	}
	if out, stderr, code := runTool(t, "", "lint", "-R", sub); code != 1 || !strings.Contains(out, "CorsPolicy default/team") {
		t.Errorf("lint -R: exit %d; want 1 with the sub-folder's broken policy:\n%s%s", code, out, stderr)
	}
}

// A huge value is quoted cut, with "…" (a 50 MB value once became a 52 MB
// log line and a 157 MB lint -o json), and a file over 8 MiB is refused
// with a message, by lint and by the server.
func TestHugeValuesThroughTheBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge-value.yaml")
	value := "https://" + strings.Repeat("a", 2<<20) + ".example"
	os.WriteFile(huge, []byte(fmt.Sprintf(corsPolicyHeader+"metadata: {name: p}\nspec: {allowOrigins: [%q, %q]}\n", value, value)), 0o644)
	rep, code, out := lintJSON(t, "", huge)
	if code != 1 || len(out) > 64<<10 || !strings.Contains(out, "…") {
		t.Errorf("lint -o json of a 2 MiB value: exit %d, %d bytes of output; want 1, under 64 KiB, values cut with …", code, len(out))
	}
	if rep.Errors == 0 {
		t.Error("no error reported for the 2 MiB value")
	}
	_, stderr, code := runBounded(t, binary, "--policies", huge, "--grpc-bind-address", freePort(t), "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	if code == 0 || len(stderr) > 64<<10 || !strings.Contains(stderr, "…") {
		t.Errorf("the server on a 2 MiB value: exit %d, %d bytes on stderr; want a refusal under 64 KiB with values cut", code, len(stderr))
	}

	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, []byte(corsPolicyHeader+"metadata: {name: p}\nspec: {allowOrigins: [https://a.example]}\n# "+strings.Repeat("x", 9<<20)+"\n"), 0o644)
	if out, stderr, code := runTool(t, "", "lint", big); code != 1 || !strings.Contains(out, "more than the 8 MiB a policy file may hold") {
		t.Errorf("lint of a 9 MiB file: exit %d; want 1 and the size cap:\n%.1000s%.1000s", code, out, stderr)
	}
	_, stderr, code = runBounded(t, binary, "--policies", big, "--grpc-bind-address", freePort(t), "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	if code == 0 || !strings.Contains(stderr, "more than the 8 MiB a policy file may hold") {
		t.Errorf("the server on a 9 MiB file: exit %d; want a refusal naming the cap:\n%.1000s", code, stderr)
	}
}
