package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/test/envtesting"
)

// TestToolsAgainstCluster runs explain and import against a real
// kube-apiserver and etcd (envtest): the policies as the controller lists
// them, with host ownership as the server applies it, and the Ingresses
// import --from-cluster reads.
func TestToolsAgainstCluster(t *testing.T) {
	t.Parallel()
	cluster := envtesting.New(t, envtesting.Options{})
	tools := cluster.User(t, "corsgate-tools", "system:masters")
	kc := tools.Kubeconfig
	tools.Kubectl(t, `apiVersion: policy.corsgate.io/v1alpha1
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
`, "apply", "-f", "-")

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
