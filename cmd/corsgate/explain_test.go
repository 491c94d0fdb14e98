package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runTool runs the built binary with args (and stdin), as a user would.
func runTool(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runAs(t, binary, stdin, args...)
}

func runAs(t *testing.T, bin, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, strings.NewReader(stdin)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestToolsHelp: each tool documents every flag, with an example, and exits 0.
func TestToolsHelp(t *testing.T) {
	t.Parallel()
	for tool, flags := range map[string][]string{
		"explain": {"-X", "-request", "-H", "-header", "-credentials", "-upstream-header", "-policies", "-o", "-kubeconfig", "-context", "-host-ownership"},
		"lint":    {"-o", "-strict", "-R", "-recursive"},
		"version": {"-o"},
		"import":  {"-f", "-filename", "-from-cluster", "-namespace", "-output-dir", "-kubeconfig", "-context"},
	} {
		out, _, code := runTool(t, "", tool, "--help")
		if code != 0 {
			t.Errorf("%s --help exited %d", tool, code)
		}
		if !strings.Contains(out, "Examples:") || !strings.Contains(out, "Exit status:") {
			t.Errorf("%s --help has no examples or exit status:\n%s", tool, out)
		}
		for _, f := range flags {
			if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, "  "+f+"\n") && !strings.Contains(out, "  "+f+"\t") {
				t.Errorf("%s --help does not document %s:\n%s", tool, f, out)
			}
		}
	}
}

func TestExplainJSON(t *testing.T) {
	t.Parallel()
	out, stderr, code := runTool(t, "", "explain", "--policies", "testdata/design.yaml", "-o", "json",
		"-X", "OPTIONS", "https://api.example.com/v2/orders",
		"-H", "Origin: https://app.example.com", "-H", "Access-Control-Request-Method: PUT", "-H", "Access-Control-Request-Headers: content-type")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct {
		Policy  *string           `json:"policy"`
		Kind    string            `json:"kind"`
		Outcome string            `json:"outcome"`
		Reason  string            `json:"reason"`
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	if res.Policy == nil || *res.Policy != "shop/api" || res.Kind != "preflight" || res.Outcome != "preflight-allowed" || res.Reason != "allowed" || res.Status != 204 {
		t.Errorf("got %+v", res)
	}
	if res.Headers["access-control-allow-origin"] != "https://app.example.com" || res.Headers["access-control-allow-credentials"] != "true" ||
		res.Headers["access-control-max-age"] != "600" {
		t.Errorf("headers %v", res.Headers)
	}
}

func TestExplainText(t *testing.T) {
	t.Parallel()
	out, _, code := runTool(t, "", "explain", "--policies", "testdata/design.yaml", "-X", "OPTIONS", "https://api.example.com/v2/orders",
		"-H", "Origin: https://app.example.com", "-H", "Access-Control-Request-Method: PATCH")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"Outcome:   preflight-rejected", "answers 403", "lost:    shop/subdomains", "Chrome:", "Firefox:", `add "PATCH" to spec.allowMethods`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		args []string
		code int
	}{
		{"no URL", []string{"explain", "--policies", "testdata/design.yaml"}, 2},
		{"two URLs", []string{"explain", "--policies", "testdata/design.yaml", "https://a.example/", "https://b.example/"}, 2},
		{"bad -o", []string{"explain", "--policies", "testdata/design.yaml", "-o", "yaml", "https://a.example/"}, 2},
		{"unknown flag", []string{"explain", "--nope", "https://a.example/"}, 2},
		{"a header without a colon", []string{"explain", "--policies", "testdata/design.yaml", "-H", "Origin https://a", "https://a.example/"}, 2},
		{"policies that cannot be read", []string{"explain", "--policies", "testdata/missing.yaml", "https://a.example/"}, 1},
		{"a denial is still an explanation", []string{"explain", "--policies", "testdata/design.yaml", "-H", "Origin: https://evil.example", "https://api.example.com/v2/"}, 0},
	} {
		if _, stderr, code := runTool(t, "", tc.args...); code != tc.code {
			t.Errorf("%s: exit %d, want %d (%s)", tc.desc, code, tc.code, stderr)
		}
	}
}

// TestKubectlPlugin: under the name kubectl-corsgate the binary is the
// tools (kubectl runs `kubectl-corsgate explain ...` for `kubectl corsgate
// explain ...`), and never the server.
func TestKubectlPlugin(t *testing.T) {
	t.Parallel()
	plugin := filepath.Join(t.TempDir(), "kubectl-corsgate")
	if err := os.Symlink(binary, plugin); err != nil {
		t.Fatal(err)
	}
	if out, _, code := runAs(t, plugin, "", "lint", "testdata/design.yaml"); code != 0 || !strings.Contains(out, "5 polic(ies)") {
		t.Errorf("kubectl-corsgate lint: exit %d\n%s", code, out)
	}
	if _, stderr, code := runAs(t, plugin, ""); code != 2 || !strings.Contains(stderr, "kubectl corsgate explain") {
		t.Errorf("kubectl-corsgate without a tool: exit %d, want 2 with the list of tools:\n%s", code, stderr)
	}
}
