package cli_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/cli"
)

// TestNoClusterSaysHowToReadFiles: a tool that finds no cluster names its
// own flag for reading files instead.
func TestNoClusterSaysHowToReadFiles(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "no-kubeconfig")
	for _, tc := range []struct {
		run  func([]string, *bytes.Buffer) int
		args []string
		code int
		want string
	}{
		{func(a []string, e *bytes.Buffer) int { return cli.RunAudit(a, nil, &bytes.Buffer{}, e) }, nil, 3, "or -f FILE|DIR|- to read files"},
		{func(a []string, e *bytes.Buffer) int { return cli.RunImport(a, nil, &bytes.Buffer{}, e) }, []string{"--from-cluster"}, 1, "or -f FILE|DIR|- (without --from-cluster) to read files"},
		{func(a []string, e *bytes.Buffer) int { return cli.RunExplain(a, nil, &bytes.Buffer{}, e) }, []string{"https://api.example.com/"}, 1, "or --policies PATH to read files"},
	} {
		var stderr bytes.Buffer
		args := append([]string{"--kubeconfig", missing}, tc.args...)
		if code := tc.run(args, &stderr); code != tc.code || !strings.Contains(stderr.String(), "no Kubernetes configuration") || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", args, code, tc.code, tc.want, stderr.String())
		}
	}
}
