package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const importTestdata = "../../internal/importer/testdata/"

func TestImportCLI(t *testing.T) {
	t.Parallel()
	out, stderr, code := runTool(t, "", "import", "-f", importTestdata+"nginx-defaults.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "# Imported by corsgate import from Ingress shop/web") || !strings.Contains(out, "kind: CorsPolicy") {
		t.Errorf("stdout:\n%s", out)
	}
	if !strings.Contains(stderr, "warning: Ingress shop/web: ") || strings.Contains(out, "warning:") {
		t.Errorf("warnings belong on stderr, naming the source:\nstdout %s\nstderr %s", out, stderr)
	}
	// The output passes lint.
	if lout, _, code := runTool(t, out, "lint", "-"); code != 0 {
		t.Errorf("imported policies fail lint:\n%s", lout)
	}

	// An object that cannot be imported: exit 1 with the reason; the others are written.
	out, stderr, code = runTool(t, "", "import", "-f", importTestdata+"envoygateway-securitypolicy.yaml")
	if code != 1 || !strings.Contains(stderr, "error: not imported: SecurityPolicy default/cors-grpc") || !strings.Contains(out, "name: cors-example") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}

	// Standard input, and --output-dir.
	dir := filepath.Join(t.TempDir(), "policies")
	in, _ := os.ReadFile(importTestdata + "istio-virtualservice.yaml")
	_, stderr, code = runTool(t, string(in), "import", "-f", "-", "--output-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{"prod-ratings-route.yaml", "prod-frontend.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("--output-dir: %v", err)
		}
	}
	if lout, _, code := runTool(t, "", "lint", dir); code != 0 {
		t.Errorf("imported folder fails lint:\n%s", lout)
	}

	for _, args := range [][]string{{"import"}, {"import", "-f", "x.yaml", "--from-cluster"}, {"import", "stray"}} {
		if _, _, code := runTool(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if _, _, code := runTool(t, "", "import", "-f", "testdata/missing.yaml"); code != 1 {
		t.Errorf("a missing input: exit %d, want 1", code)
	}
}

// TestImportOutputDirLosesNothing: two policies whose <namespace>-<name>
// would be the same file get distinct files, and files that exist are not
// overwritten without --force (nothing is written then).
func TestImportOutputDirLosesNothing(t *testing.T) {
	t.Parallel()
	ing := func(ns, name string) string {
		return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ` + name + `
  namespace: ` + ns + `
  annotations:
    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/cors-allow-origin: "https://` + ns + `.example.com"
    nginx.ingress.kubernetes.io/cors-allow-credentials: "false"
spec:
  rules:
  - host: api.example.com
`
	}
	in := ing("a-b", "c") + "---\n" + ing("a", "b-c")
	dir := t.TempDir()
	_, stderr, code := runTool(t, in, "import", "-f", "-", "--output-dir", dir)
	if code != 0 || !strings.Contains(stderr, "2 polic(ies) written") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for file, origin := range map[string]string{"a-b.c.yaml": "https://a-b.example.com", "a.b-c.yaml": "https://a.example.com"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || !strings.Contains(string(b), origin) {
			t.Errorf("%s: %v\n%s", file, err, b)
		}
	}

	// Again: the files exist, so nothing is written without --force.
	if err := os.WriteFile(filepath.Join(dir, "a-b.c.yaml"), []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runTool(t, in, "import", "-f", "-", "--output-dir", dir)
	if b, _ := os.ReadFile(filepath.Join(dir, "a-b.c.yaml")); code != 1 || string(b) != "# mine\n" || !strings.Contains(stderr, "--force") {
		t.Errorf("without --force: exit %d, file %q\n%s", code, b, stderr)
	}
	_, stderr, code = runTool(t, in, "import", "-f", "-", "--output-dir", dir, "--force")
	if b, _ := os.ReadFile(filepath.Join(dir, "a-b.c.yaml")); code != 0 || !strings.Contains(string(b), "kind: CorsPolicy") {
		t.Errorf("with --force: exit %d, file %q\n%s", code, b, stderr)
	}
}

// TestImportPassesLintStrict: through the binaries, import's output passes
// lint --strict (nginx's default max-age and Istio's 24h used to fail it),
// and a route named "Ratings_V1 route" becomes a valid object name.
func TestImportPassesLintStrict(t *testing.T) {
	t.Parallel()
	vs := `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: prod}
spec:
  hosts: [ratings.prod.svc.cluster.local]
  gateways: [public]
  http:
  - name: Ratings_V1 route
    match: [{uri: {prefix: /v1/}}]
    corsPolicy: {allowOrigins: [{exact: "https://a.example.com"}], maxAge: 24h, unmatchedPreflights: IGNORE}
  - name: other
    match: [{uri: {prefix: /v2/}}]
    corsPolicy: {allowOrigins: [{exact: "https://b.example.com"}], unmatchedPreflights: IGNORE}
`
	for name, in := range map[string]string{"nginx defaults": "", "istio reference": "", "route names": vs} {
		args := []string{"import", "-f", "-"}
		switch name {
		case "nginx defaults":
			args[2] = importTestdata + "nginx-defaults.yaml"
		case "istio reference":
			args[2] = importTestdata + "istio-virtualservice.yaml"
		}
		out, stderr, code := runTool(t, in, args...)
		if code != 0 {
			t.Fatalf("%s: import exit %d\n%s", name, code, stderr)
		}
		if lout, _, code := runTool(t, out, "lint", "--strict", "-"); code != 0 {
			t.Errorf("%s: the imported policies fail lint --strict:\n%s\n%s", name, lout, out)
		}
		if name == "route names" && !strings.Contains(out, "name: vs-ratings-v1-route\n") {
			t.Errorf("route names: %s", out)
		}
	}
}
