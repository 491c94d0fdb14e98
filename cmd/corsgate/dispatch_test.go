package main_test

// The binary does what was typed, or nothing: issue 21's "The binary does
// what was typed" findings, each through the built binary.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// runBounded runs the binary with a deadline: a command that starts the
// server instead of refusing would run until killed.
func runBounded(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	// No cluster to reach, whatever the machine's kubeconfig says.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(t.TempDir(), "none"))
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("corsgate %q was still running after 30 s (it started the server); output:\n%s%s", args, out.String(), errb.String())
	}
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// A misspelt subcommand or a stray argument exits 2 with one line naming it
// (and the nearest subcommand), touching nothing: before, the arguments were
// ignored and the server started.
func TestUnknownCommandStartsNothing(t *testing.T) {
	t.Parallel()
	grpc := freePort(t)
	serve := []string{"--policies", "testdata/design.yaml", "--grpc-bind-address", grpc,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0"}
	for _, tc := range []struct {
		desc string
		args []string
		want string
	}{
		{"lint misspelt", append([]string{"lnit", "policies/"}, serve...), `corsgate: unknown command "lnit": did you mean "lint"?`},
		{"explain misspelt", append([]string{"explian"}, serve...), `corsgate: unknown command "explian": did you mean "explain"?`},
		{"a word that is no command", append([]string{"serve"}, serve...), `corsgate: unknown command "serve"`},
		{"a stray argument after the flags", append(serve, "lnit"), `corsgate: unexpected argument "lnit" after the flags`},
		{"an unknown server flag", append(serve, "--polices", "x"), "corsgate: flag provided but not defined: -polices"},
	} {
		_, stderr, code := runBounded(t, binary, tc.args...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2; stderr:\n%s", tc.desc, code, stderr)
		}
		if first, _, _ := strings.Cut(stderr, "\n"); !strings.HasPrefix(first, tc.want) {
			t.Errorf("%s: first line %q, want it to start with %q", tc.desc, first, tc.want)
		}
		if strings.Contains(stderr, "listening") || strings.Contains(stderr, "policies loaded") {
			t.Errorf("%s: the server started:\n%s", tc.desc, stderr)
		}
	}
}

// --help is printed once, to stdout, exit 0; a usage error is one line and
// a hint, not the whole usage.
func TestHelpOnceAndShortUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tool := range [][]string{{}, {"lint"}, {"explain"}, {"import"}, {"version"}} {
		name := strings.Join(append([]string{"corsgate"}, tool...), " ")
		out, stderr, code := runBounded(t, binary, append(tool, "--help")...)
		if code != 0 || stderr != "" || strings.Count(out, "Usage:") != 1 {
			t.Errorf("%s --help: exit %d, %d usage(s) on stdout, stderr %q; want exit 0, one usage on stdout, nothing on stderr",
				name, code, strings.Count(out, "Usage:"), stderr)
		}
		out, stderr, code = runBounded(t, binary, append(tool, "--no-such-flag")...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || out != "" || len(lines) != 2 ||
			lines[0] != name+": flag provided but not defined: -no-such-flag" || !strings.Contains(lines[1], "run '"+name+" --help'") {
			t.Errorf("%s --no-such-flag: exit %d, stdout %q, stderr:\n%s\nwant exit 2, the error and a hint to run %s --help", name, code, out, stderr, name)
		}
	}
	out, _, _ := runBounded(t, binary, "--help")
	if !strings.Contains(out, `(default denials)`) {
		t.Errorf("corsgate --help does not show --decision-log's default:\n%s", out)
	}
}

// A negative --grpc-* limit is refused before anything starts, with what to
// write instead: 0 is how a limit is turned off.
func TestNegativeLimitFlagRefused(t *testing.T) {
	t.Parallel()
	out, stderr, code := runBounded(t, binary, "--policies", "testdata/design.yaml", "--grpc-max-message-bytes=-1")
	if code != 2 || out != "" || !strings.Contains(stderr, "--grpc-max-message-bytes is negative: write 0 for no limit") {
		t.Errorf("--grpc-max-message-bytes=-1: exit %d, stdout %q, stderr %q; want exit 2 and what to write", code, out, stderr)
	}
}

// corsgate version and --version say the version, the commit and the Go
// version; -ldflags -X sets the first two.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, stderr, code := runBounded(t, binary, args...)
		if code != 0 || !strings.HasPrefix(out, "corsgate ") || !strings.Contains(out, "commit: ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("corsgate %s: exit %d, stdout %q, stderr %q; want the version, commit and %s", args[0], code, out, stderr, runtime.Version())
		}
	}
	stamped := filepath.Join(t.TempDir(), "corsgate")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7 -X main.commit=0123abcd", "-o", stamped, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build with -ldflags: %v\n%s", err, out)
	}
	out, _, code := runBounded(t, stamped, "version", "-o", "json")
	var v struct{ Version, Commit, GoVersion string }
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 {
		t.Fatalf("corsgate version -o json: exit %d, %v:\n%s", code, err, out)
	}
	if v.Version != "v9.8.7" || v.Commit != "0123abcd" || v.GoVersion != runtime.Version() {
		t.Errorf("corsgate version -o json = %+v, want v9.8.7, 0123abcd, %s", v, runtime.Version())
	}
}
