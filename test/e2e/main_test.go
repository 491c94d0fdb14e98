//go:build e2e

package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var (
	// The browsers, Debian's unless the environment names others.
	chromiumPath     = envOr("CHROMIUM", "/usr/bin/chromium")
	firefoxPath      = envOr("FIREFOX", "/usr/bin/firefox-esr")
	certutilPath     = envOr("CERTUTIL", "/usr/bin/certutil") // trusts the suite's CA in Firefox's profile
	webkitDriverPath = envOr("WEBKIT_DRIVER", "/usr/bin/WebKitWebDriver")
	miniBrowserPath  = envOr("MINIBROWSER", "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser")
	xvfbPath         = envOr("XVFB", "/usr/bin/Xvfb") // MiniBrowser has no headless mode
	// engines are the browser engines every scenario runs in, in order:
	// E2E_ENGINES, a comma-separated subset of chromium,firefox,webkit.
	engines = strings.Split(envOr("E2E_ENGINES", "chromium,firefox,webkit"), ",")
	// corsgateBin is built once per run by TestMain unless CORSGATE_BIN names
	// a binary already built.
	corsgateBin = os.Getenv("CORSGATE_BIN")
	// repoRoot is the module root, two levels above this package.
	repoRoot, _ = filepath.Abs(filepath.Join("..", ".."))
	// envtestAssets holds kube-apiserver, etcd and kubectl (make envtest-assets).
	envtestAssets = envOr("KUBEBUILDER_ASSETS", filepath.Join(repoRoot, "bin", "k8s"))
	// artifactsRoot keeps screenshots, console logs and process logs after
	// the run (unlike t.TempDir, which is removed): E2E_ARTIFACTS_DIR, or a
	// fresh directory under the system's temp dir.
	artifactsRoot = os.Getenv("E2E_ARTIFACTS_DIR")
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// A missing browser is a failure, not a skip: a suite that quietly does
	// not run would pass CI while proving nothing.
	need := map[string][][2]string{
		chromium: {{chromiumPath, "CHROMIUM"}},
		firefox:  {{firefoxPath, "FIREFOX"}, {certutilPath, "CERTUTIL"}},
		webkit:   {{webkitDriverPath, "WEBKIT_DRIVER"}, {miniBrowserPath, "MINIBROWSER"}, {xvfbPath, "XVFB"}},
	}
	for _, e := range engines {
		tools, ok := need[e]
		if !ok {
			fmt.Fprintf(os.Stderr, "FAIL: E2E_ENGINES names %q; the engines are chromium, firefox and webkit\n", e)
			return 1
		}
		for _, tool := range tools {
			if st, err := os.Stat(tool[0]); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				fmt.Fprintf(os.Stderr, "FAIL: %s needs %s (%v): run hack/install-browsers.sh, or set %s\n", e, tool[0], err, tool[1])
				return 1
			}
		}
	}
	for _, tool := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(envtestAssets, tool)); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: no %s in %s: run `make envtest-assets` (or set KUBEBUILDER_ASSETS)\n", tool, envtestAssets)
			return 1
		}
	}
	if abs, err := filepath.Abs(envtestAssets); err == nil {
		envtestAssets = abs
	}
	if artifactsRoot == "" {
		dir, err := os.MkdirTemp("", "corsgate-e2e-artifacts-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		artifactsRoot = dir
	} else if err := os.MkdirAll(artifactsRoot, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if corsgateBin == "" {
		dir, err := os.MkdirTemp("", "corsgate-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		corsgateBin = filepath.Join(dir, "corsgate")
		build := exec.Command("go", "build", "-o", corsgateBin, "./cmd/corsgate")
		build.Dir = repoRoot
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: building corsgate: %v\n", err)
			return 1
		}
	}
	code := m.Run()
	fmt.Fprintf(os.Stderr, "explain's wording beside the browsers' (also in words.tsv):\n%s", writeWords(artifactsRoot))
	fmt.Fprintf(os.Stderr, "e2e artifacts (screenshots, console and process logs): %s\n", artifactsRoot)
	return code
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
