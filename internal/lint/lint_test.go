package lint_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/lint"
)

const header = "apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\n"

func TestPaths(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc     string
		files    map[string]string
		errors   int
		warnings int
		// want are "file|object|field|severity" of problems that must be
		// reported, each with a message (and a fix when fix is set).
		want []string
		fix  bool
	}{
		{desc: "a valid policy: nothing to report",
			files: map[string]string{"ok.yaml": header + "metadata: {name: ok}\nspec: {allowOrigins: [https://app.example.com]}\n"}},
		{desc: "engine errors name the field and say what to write",
			files:  map[string]string{"p.yaml": header + "metadata: {name: bad, namespace: shop}\nspec:\n  allowOrigins: [\"https://App.example.com/\"]\n  allowCredentials: true\n"},
			errors: 1, want: []string{"p.yaml|shop/bad|spec.allowOrigins[0]|error"}, fix: true},
		{desc: "a misspelt field is an error, and the other documents are still checked",
			files: map[string]string{"p.yaml": header + "metadata: {name: typo}\nspec: {allowOrigin: [https://a.example]}\n---\n" +
				header + "metadata: {name: good}\nspec: {allowOrigins: [\"*\"], allowCredentials: true}\n"},
			errors: 2, want: []string{"p.yaml|default/typo|spec.allowOrigin|error", "p.yaml|default/good|spec.allowOrigins[0]|error"}, fix: true},
		{desc: "risky but legal: a warning",
			files:    map[string]string{"p.yaml": header + "metadata: {name: slow}\nspec: {allowOrigins: [https://a.example], maxAge: 9000}\n"},
			warnings: 1, want: []string{"p.yaml|default/slow|spec.maxAge|warning"}},
		{desc: "the same name in two files",
			files: map[string]string{
				"a.yaml": header + "metadata: {name: twice}\nspec: {allowOrigins: [https://a.example]}\n",
				"b.yaml": header + "metadata: {name: twice}\nspec: {allowOrigins: [https://b.example]}\n"},
			errors: 1, want: []string{"b.yaml|default/twice|metadata.name|error"}, fix: true},
		{desc: "two policies claiming the same host and prefix: the younger loses, a warning",
			files: map[string]string{"p.yaml": header + "metadata: {name: one}\nspec: {hosts: [api.example.com], allowOrigins: [https://a.example]}\n---\n" +
				header + "metadata: {name: two}\nspec: {hosts: [api.example.com], allowOrigins: [https://b.example]}\n"},
			warnings: 1, want: []string{"p.yaml|default/two|spec.hosts|warning"}, fix: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := lint.Paths([]string{dir})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Errors != tc.errors || rep.Warnings != tc.warnings {
				t.Errorf("%d errors, %d warnings; want %d, %d: %+v", rep.Errors, rep.Warnings, tc.errors, tc.warnings, rep.Problems)
			}
			if rep.Failed(false) != (tc.errors > 0) || rep.Failed(true) != (tc.errors+tc.warnings > 0) {
				t.Errorf("Failed(false)=%v Failed(true)=%v", rep.Failed(false), rep.Failed(true))
			}
			for _, w := range tc.want {
				found := false
				for _, p := range rep.Problems {
					key := strings.Join([]string{filepath.Base(p.File), p.Object, p.Field, string(p.Severity)}, "|")
					if key == w && p.Message != "" && (!tc.fix || p.Fix != "") {
						found = true
					}
				}
				if !found {
					t.Errorf("no problem %s (with fix: %v) in %+v", w, tc.fix, rep.Problems)
				}
			}
		})
	}
}

func TestMissingPath(t *testing.T) {
	t.Parallel()
	if _, err := lint.Paths([]string{filepath.Join(t.TempDir(), "nope.yaml")}); err == nil {
		t.Error("a missing path must be an error, not an empty report")
	}
}
