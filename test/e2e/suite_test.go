//go:build e2e

package e2e_test

import (
	"google.golang.org/grpc"

	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The origins of the suite. api.example.test is the edge; every other name is
// a page on the page server.
const (
	api     = "https://api.example.test"
	app     = "https://app.example.test"
	evil    = "https://evil.example.test"
	partner = "https://partner.example.test"
)

// certNames are the names the suite's certificate serves.
var certNames = []string{
	"api.example.test", "app.example.test", "evil.example.test", "partner.example.test",
	"tenants.example.test", "x.tenants.example.test", "a.b.tenants.example.test", "eviltenants.example.test",
}

// TestFileMode runs every scenario against corsgate serving policy files
// (--policies), edited in place for the policy-change scenario.
func TestFileMode(t *testing.T) {
	artifacts := artifactsDir(t, "file-mode")
	dir := policyDir(t)
	conn := startCorsgate(t, []string{"--policies", dir}, nil, artifacts)
	newSuite(t, conn, policyFiles{dir: dir}, artifacts).run(t)
}

// TestKubernetesMode runs every scenario against corsgate reading CorsPolicy
// objects from a real kube-apiserver (envtest), applied with kubectl.
func TestKubernetesMode(t *testing.T) {
	artifacts := artifactsDir(t, "kubernetes-mode")
	c := startCluster(t)
	c.kubectl(t, "apply", "-f", filepath.Join("testdata", "grants"))
	c.kubectl(t, "apply", "-f", policyDir(t))
	conn := startCorsgate(t, nil, []string{"KUBECONFIG=" + c.kubeconfig}, artifacts)
	// Every policy accepted and served, as its status says.
	c.kubectl(t, "wait", "--for=condition=Ready", "corspolicies", "--all", "--timeout=120s")
	t.Logf("kubectl get corspolicies:\n%s", c.kubectl(t, "get", "corspolicies"))
	newSuite(t, conn, policyObjects{c: c, dir: t.TempDir()}, artifacts).run(t)
}

// suite is one complete stack: corsgate, the edge in front of the upstream
// app, the page server, the CONNECT proxy, and (while one engine's scenarios
// run) a browser.
type suite struct {
	browser   browser
	env       browserEnv
	upstream  *recorder // what reached the application
	edge      *recorder // what reached the edge, with the edge's status
	policies  policySource
	client    *http.Client
	artifacts string
}

func newSuite(t *testing.T, conn *grpc.ClientConn, policies policySource, artifacts string) *suite {
	t.Helper()
	pki, err := newTestPKI(certNames...)
	if err != nil {
		t.Fatal(err)
	}
	upstream, upstreamRec := upstreamApp(t)
	edgeAddr, edgeRec := startEdge(t, pki, conn, upstream.URL, artifacts)
	pagesAddr := startPages(t, pki)
	return &suite{
		env:       browserEnv{pki: pki, proxy: startConnectProxy(t, edgeAddr, pagesAddr), artifacts: artifacts, edge: edgeRec},
		upstream:  upstreamRec,
		edge:      edgeRec,
		policies:  policies,
		client:    edgeClient(pki, edgeAddr),
		artifacts: artifacts,
	}
}

// startEngine starts one engine's browser for the suite.
var startEngine = map[string]func(t *testing.T, env browserEnv) browser{
	chromium: startChromium,
	firefox:  startFirefox,
	webkit:   startWebKit,
}

// run runs every scenario in every engine (E2E_ENGINES), one engine after
// the other: the recorders are emptied between engines, so each engine's
// scenarios count only their own requests. Within an engine, every scenario
// runs in its own tab, in parallel, with its own URLs, so that neither the
// recorders nor the browser's preflight cache (keyed by origin, URL and
// credentials mode) mix them up.
func (s *suite) run(t *testing.T) {
	for _, engine := range engines {
		start := time.Now()
		t.Run(engine, func(t *testing.T) {
			s.upstream.reset()
			s.edge.reset()
			es := *s
			es.browser = startEngine[engine](t, s.env)
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, &es)
				})
			}
		})
		// t.Run returns once the engine's parallel scenarios, and its
		// browser's cleanup, have ended.
		t.Logf("%s: %d scenarios, browser start and stop included, in %s", engine, len(scenarios), time.Since(start).Round(10*time.Millisecond))
	}
}

// waitServed polls the edge with a Go client until corsgate serves the
// policy change: origin allowed (or not) on path. Only the wait uses a Go
// client; what the page sees next is asserted in the browser.
func (s *suite) waitServed(t *testing.T, path, origin string, allowed bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		req, err := http.NewRequest(http.MethodGet, api+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		resp, err := s.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if (resp.Header.Get("Access-Control-Allow-Origin") == origin) == allowed {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("corsgate never served the change (%s allowed on %s: %v); last error %v", origin, path, allowed, err)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not an assertion
	}
}

// policySource creates or replaces one CorsPolicy while corsgate runs.
type policySource interface {
	apply(t *testing.T, name, doc string)
}

// policyFiles edits the folder corsgate watches, the way an editor or a
// ConfigMap update does: write a new file, then rename it over the old one.
type policyFiles struct{ dir string }

func (p policyFiles) apply(t *testing.T, name, doc string) {
	t.Helper()
	tmp := filepath.Join(p.dir, "."+name+".yaml.tmp") // dot files are not read
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(p.dir, name+".yaml")); err != nil {
		t.Fatal(err)
	}
	t.Logf("edited %s.yaml in %s", name, p.dir)
}

// policyObjects applies with kubectl.
type policyObjects struct {
	c   *cluster
	dir string
}

func (p policyObjects) apply(t *testing.T, name, doc string) {
	t.Helper()
	f := filepath.Join(p.dir, fmt.Sprintf("%s-%d.yaml", name, time.Now().UnixNano()))
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl apply: %s", strings.TrimSpace(p.c.kubectl(t, "apply", "-f", f)))
}

// livePolicy is the policy the policy-change scenario edits.
func livePolicy(origins ...string) string {
	return fmt.Sprintf(`apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata:
  name: live
spec:
  hosts: ["api.example.test"]
  pathPrefixes: ["/live"]
  allowOrigins: ["%s"]
`, strings.Join(origins, `", "`))
}

// policyDir is a fresh copy of testdata/policies plus the first version of
// the live policy.
func policyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "policies")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "policies"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "live.yaml"), []byte(livePolicy(app)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func artifactsDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(artifactsRoot, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifacts: %s", dir)
	return dir
}
