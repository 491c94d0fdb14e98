package lint_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/lint"
)

// Issue 21, "lint says green for things it never checked": every document
// is read as kubectl prints it, every problem has a field path and a fix,
// and messages are cut in the right place.
func TestFindingsHaveFieldAndFix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, content string
		// field, severity, and substrings of the message and of the fix of
		// one problem that must be reported.
		field, severity, message, fix string
	}{
		{desc: "a List, as kubectl get -o yaml prints it, holding a broken policy",
			content: "apiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(header, "\n", "\n  ") + "metadata: {name: ok}\n  spec: {allowOrigins: [https://a.example]}\n" +
				"- " + strings.ReplaceAll(header, "\n", "\n  ") + "metadata: {name: broken}\n  spec: {allowOrigins: [\"*\"], allowCredentials: true}\n",
			field: "spec.allowOrigins[0]", severity: "error", message: "allowCredentials", fix: "list the origins"},
		{desc: "a misspelt kind in corsgate's group",
			content: "apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicies\nmetadata: {name: p}\nspec: {allowOrigins: [https://a.example]}\n",
			field:   "kind", severity: "error", message: `"CorsPolicies" is not a kind of policy.corsgate.io`, fix: "write kind: CorsPolicy"},
		{desc: "a name the API server refuses",
			content: header + "metadata: {name: Bad_Name x}\nspec: {allowOrigins: [https://a.example]}\n",
			field:   "metadata.name", severity: "error", message: "not a valid object name", fix: `write "bad-name-x"`},
		{desc: "a name too long for the API server",
			content: header + "metadata: {name: " + strings.Repeat("a", 300) + "}\nspec: {allowOrigins: [https://a.example]}\n",
			field:   "metadata.name", severity: "error", message: "253", fix: "write"},
		{desc: "an unknown field gets the closest known one",
			content: header + "metadata: {name: p}\nspec: {allowOrigins: [https://a.example], allowCredentails: true}\n",
			field:   "spec.allowCredentails", severity: "error", message: `unknown field "allowCredentails"`, fix: "write allowCredentials"},
		{desc: "a wrong type gives the field and the type expected",
			content: header + "metadata: {name: p}\nspec: {allowOrigins: [https://a.example], maxAge: \"600\"}\n",
			field:   "spec.maxAge", severity: "error", message: `is the string "600", not an integer`, fix: "maxAge: 600"},
		{desc: "a number out of range",
			content: header + "metadata: {name: p}\nspec: {allowOrigins: [https://a.example], maxAge: 99999999999}\n",
			field:   "spec.maxAge", severity: "error", message: "the number 99999999999 is out of range for a 32-bit integer", fix: "smaller"},
		{desc: "a misspelt metadata field",
			content: header + "metadata: {naem: p}\nspec: {allowOrigins: [https://a.example]}\n",
			field:   "metadata.naem", severity: "error", message: `unknown field "naem"`, fix: "write name"},
		{desc: "a string where a list is expected",
			content: header + "metadata: {name: p}\nspec: {allowOrigins: https://a.example}\n",
			field:   "spec.allowOrigins", severity: "error", message: "not a list", fix: `allowOrigins: ["https://a.example"]`},
		{desc: "a URL pasted into hosts",
			content: header + "metadata: {name: p}\nspec: {hosts: [\"https://f.example.com\"], allowOrigins: [https://a.example]}\n",
			field:   "spec.hosts[0]", severity: "error", message: "is a URL", fix: `write "f.example.com"`},
		{desc: "the null origin with credentials: the message is whole",
			content: header + "metadata: {name: p}\nspec: {allowOrigins: [\"null\"], allowCredentials: true}\n",
			field:   "spec.allowOrigins[0]", severity: "error", message: `sends the origin "null")`, fix: `remove "null"`},
		{desc: "a backtick in the token list does not swallow the fix",
			content: header + "metadata: {name: p}\nspec: {allowOrigins: [https://a.example], allowMethods: [\"P UT\"]}\n",
			field:   "spec.allowMethods[0]", severity: "error", message: "_`|~)", fix: `write e.g. "PUT"`},
		{desc: "targetRefs are not checked offline: said",
			content: header + "metadata: {name: p}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop}]\n  allowOrigins: [https://a.example]\n",
			field:   "spec.targetRefs", severity: "warning", message: "not served by corsgate --policies", fix: "write hosts and pathPrefixes"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			rep, err := lint.Paths([]string{dir})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rep.Problems {
				if p.Field == tc.field && string(p.Severity) == tc.severity && strings.Contains(p.Message, tc.message) && strings.Contains(p.Fix, tc.fix) {
					return
				}
			}
			t.Errorf("no %s at %s with a message holding %q and a fix holding %q in:\n%+v", tc.severity, tc.field, tc.message, tc.fix, rep.Problems)
		})
	}
}

// Sub-folders are read with recursive (kubectl's -R), and without it each
// one holding policy files is reported as not checked.
func TestSubFolders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "team", "deep"), 0o755)
	os.MkdirAll(filepath.Join(dir, "..data"), 0o755) // a ConfigMap mount's, never read
	os.WriteFile(filepath.Join(dir, "top.yaml"), []byte(header+"metadata: {name: top}\nspec: {allowOrigins: [https://a.example]}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "team", "deep", "p.yaml"), []byte(header+"metadata: {name: deep}\nspec: {allowOrigins: [\"*\"], allowCredentials: true}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "..data", "p.yaml"), []byte("not: [valid"), 0o644)
	rep, err := lint.Paths([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Warnings != 1 || rep.Problems[0].File != filepath.Join(dir, "team") || !strings.Contains(rep.Problems[0].Message, "not checked") || !rep.Failed(true) {
		t.Errorf("without recursive: %+v; want one warning naming the sub-folder not checked, failing --strict", rep)
	}
	rep, err = lint.Check([]string{dir}, lint.Options{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files != 2 || rep.Policies != 2 || rep.Errors != 1 || rep.Warnings != 0 {
		t.Errorf("recursive: %d files, %d policies, %d errors, %d warnings; want 2, 2, 1 (the deep policy), 0: %+v", rep.Files, rep.Policies, rep.Errors, rep.Warnings, rep.Problems)
	}
}
