package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestToolsAgainstCluster runs explain and import against a real
// kube-apiserver and etcd (envtest): the policies as the controller lists
// them, with host ownership as the server applies it, and the Ingresses
// import --from-cluster reads.
func TestToolsAgainstCluster(t *testing.T) {
	t.Parallel()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver, etcd and kubectl into bin/k8s")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	if _, err := env.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Stop() })
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "corsgate-tools", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	apply := func(manifest string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(assets, "kubectl"), "--kubeconfig", kc, "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(manifest)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kubectl apply: %v\n%s", err, out)
		}
	}
	apply(`apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata: {name: orders, namespace: default}
spec:
  hosts: [api.example.com]
  allowOrigins: [https://app.example.com]
  allowMethods: [PUT]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: default
  annotations:
    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/cors-allow-origin: "https://app.example.com"
spec:
  rules:
  - host: web.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
`)

	explainJSON := func(args ...string) (policy *string, outcome string, invalid int) {
		t.Helper()
		args = append([]string{"explain", "--kubeconfig", kc, "-o", "json", "-X", "OPTIONS", "https://api.example.com/x",
			"-H", "Origin: https://app.example.com", "-H", "Access-Control-Request-Method: PUT"}, args...)
		out, stderr, code := runTool(t, "", args...)
		if code != 0 {
			t.Fatalf("explain: exit %d: %s", code, stderr)
		}
		var res struct {
			Policy  *string `json:"policy"`
			Outcome string  `json:"outcome"`
			Invalid []any   `json:"invalid"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return res.Policy, res.Outcome, len(res.Invalid)
	}
	if p, outcome, _ := explainJSON("--host-ownership", "Open"); p == nil || *p != "default/orders" || outcome != "preflight-allowed" {
		t.Errorf("--host-ownership Open: policy %v outcome %s; want default/orders, preflight-allowed", p, outcome)
	}
	// Host ownership on (the server's default) and no CorsHostGrant: the
	// policy serves nothing, and explain says why.
	if p, outcome, invalid := explainJSON(); p != nil || outcome != "no-policy" || invalid != 1 {
		t.Errorf("host ownership without a grant: policy %v outcome %s, %d not served; want none, no-policy, 1", p, outcome, invalid)
	}

	out, stderr, code := runTool(t, "", "import", "--from-cluster", "--kubeconfig", kc)
	if code != 0 || !strings.Contains(out, "Imported by corsgate import from Ingress default/web") || !strings.Contains(out, "https://app.example.com") {
		t.Errorf("import --from-cluster: exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "VirtualService is not served by this cluster: skipped") {
		t.Errorf("a kind without its CRD should be skipped with a note:\n%s", stderr)
	}
}
