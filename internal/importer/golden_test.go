package importer_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/importer"
	"github.com/corsgate/corsgate/internal/lint"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// render is what `corsgate import` prints for the objects: the policies on
// standard output, then the warnings and errors it prints on standard error.
func render(t *testing.T, res *importer.Result) (policies []byte, all []byte) {
	t.Helper()
	var out bytes.Buffer
	for i, p := range res.Policies {
		y, err := p.YAML()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(y)
	}
	policies = bytes.Clone(out.Bytes())
	out.WriteString("# --- standard error ---\n")
	for _, w := range res.Warnings {
		out.WriteString("# warning: " + w.String() + "\n")
	}
	for _, e := range res.Errors {
		out.WriteString("# error: not imported: " + e.Error() + "\n")
	}
	return policies, out.Bytes()
}

// TestGolden imports each testdata/*.yaml (inputs taken from the systems'
// own documentation, credited in each file) and compares the output with
// testdata/*.golden; go test -update rewrites them. Every imported policy
// must pass lint, with the server's compile path.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			f, err := os.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			objs, err := importer.Read(f, filepath.Base(in))
			if err != nil {
				t.Fatal(err)
			}
			res := importer.Import(objs)
			if len(res.Policies) == 0 {
				t.Fatalf("%s imported nothing", in)
			}
			policies, got := render(t, res)

			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/importer -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (run go test ./internal/importer -update and review the diff):\n%s", in, golden, got)
			}

			// The output passes lint: no error, with the server's compile path.
			file := filepath.Join(t.TempDir(), "imported.yaml")
			if err := os.WriteFile(file, policies, 0o644); err != nil {
				t.Fatal(err)
			}
			rep, err := lint.Paths([]string{file})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Errors > 0 || rep.Policies != len(res.Policies) {
				t.Errorf("imported policies fail lint (%d of %d read): %+v", rep.Policies, len(res.Policies), rep.Problems)
			}
			lintStrictExplained(t, res, rep)
		})
	}
}

// lintStrictExplained: import's own output passes lint --strict, unless an
// import warning says why not: each lint warning must be a risk the import
// kept and reported, with the class that names it, for the same source.
func lintStrictExplained(t *testing.T, res *importer.Result, rep *lint.Report) {
	t.Helper()
	source := map[string]string{}
	for _, p := range res.Policies {
		source[p.Policy.Namespace+"/"+p.Policy.Name] = p.Source
	}
	for _, p := range rep.Problems {
		if p.Severity != lint.Warning {
			continue
		}
		if p.Field == "spec.targetRefs" {
			// Policies imported from Gateway API and Envoy Gateway
			// attach where their source did; lint says, rightly, that it
			// cannot check an attachment offline (the cluster's routes and
			// grants decide it), which is no risk the import kept.
			// docs/operator-tools.md says so.
			continue
		}
		var class importer.Class
		switch {
		case strings.Contains(p.Message, "plain http with allowCredentials"):
			class = importer.HTTPOriginWithCredentials
		case strings.Contains(p.Message, `"null" is sent by sandboxed`):
			class = importer.NullOrigin
		}
		if class == "" || !slices.ContainsFunc(res.Warnings, func(w importer.Warning) bool { return w.Class == class && w.Source == source[p.Object] }) {
			t.Errorf("lint --strict fails the imported %s (%s: %s) and no import warning says why", p.Object, p.Field, p.Message)
		}
	}
}
