package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/test/envtesting"
)

type auditJSON struct {
	Objects  int `json:"objects"`
	Findings []struct {
		Class, Severity, Object, File, Rule, Field, Does, Attack, Fix, Policy string
	} `json:"findings"`
	Skipped []string       `json:"skipped"`
	Summary map[string]int `json:"summary"`
}

func (a auditJSON) has(class, object string) bool {
	return slices.ContainsFunc(a.Findings, func(f struct {
		Class, Severity, Object, File, Rule, Field, Does, Attack, Fix, Policy string
	}) bool {
		return f.Class == class && f.Object == object
	})
}

// TestAuditCLI: the audit from files, through the built binary: each output
// format, --fail-on's exit status, and usage errors.
func TestAuditCLI(t *testing.T) {
	t.Parallel()
	out, stderr, code := runTool(t, "", "audit", "-f", importTestdata)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"CRITICAL\n", "  HTTPRoute default/cors-wildcard (", "[any-origin-with-credentials]", "INFO (broken, not open)",
		"      attacker: ", "      fix: ", "corsgate audit: 11 object(s) audited"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	// Critical comes before high, high before medium.
	if i, j := strings.Index(out, "CRITICAL"), strings.Index(out, "HIGH"); i < 0 || j < i {
		t.Errorf("severities out of order:\n%s", out)
	}

	out, _, code = runTool(t, "", "audit", "-f", importTestdata, "-o", "json", "--fail-on", "high")
	if code != 1 {
		t.Errorf("--fail-on high with critical findings: exit %d, want 1", code)
	}
	var rep auditJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if rep.Objects != 11 || !rep.has("any-origin-with-credentials", "SecurityPolicy default/cors-any") || rep.Summary["critical"] != 3 {
		t.Errorf("-o json: %+v", rep)
	}
	for _, f := range rep.Findings {
		if f.Class == "any-origin-with-credentials" && !strings.Contains(f.Policy, "kind: CorsPolicy") {
			t.Errorf("the finding carries no policy to migrate to: %+v", f)
		}
	}

	// A manifest with only a low finding passes --fail-on high.
	low := `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings-route, namespace: prod}
spec:
  hosts: [ratings.prod.svc.cluster.local]
  gateways: [public]
  http:
  - corsPolicy: {allowOrigins: [{exact: "https://example.com"}], allowMethods: [POST, GET]}
`
	if _, stderr, code := runTool(t, low, "audit", "-f", "-", "--fail-on", "high"); code != 0 {
		t.Errorf("--fail-on high with only low findings: exit %d\n%s", code, stderr)
	}
	if _, _, code := runTool(t, low, "audit", "-f", "-", "--fail-on", "low"); code != 1 {
		t.Errorf("--fail-on low with a low finding: exit %d, want 1", code)
	}

	out, _, code = runTool(t, "", "audit", "-f", importTestdata, "-o", "sarif")
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct{ ID string } `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				Level     string `json:"level"`
				Locations []struct {
					Physical struct {
						Artifact struct{ URI string } `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &sarif); err != nil || code != 0 || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 {
		t.Fatalf("-o sarif: exit %d, %v\n%s", code, err, out)
	}
	if len(sarif.Runs[0].Results) != len(rep.Findings) || len(sarif.Runs[0].Tool.Driver.Rules) != 10 {
		t.Errorf("sarif has %d results for %d findings, %d rules", len(sarif.Runs[0].Results), len(rep.Findings), len(sarif.Runs[0].Tool.Driver.Rules))
	}
	for _, r := range sarif.Runs[0].Results {
		if r.RuleID == "any-origin-with-credentials" && (r.Level != "error" || !strings.HasSuffix(r.Locations[0].Physical.Artifact.URI, ".yaml")) {
			t.Errorf("sarif result %+v", r)
		}
	}

	for _, args := range [][]string{{"audit", "stray"}, {"audit", "-o", "yaml"}, {"audit", "--fail-on", "severe"}, {"audit", "-f", "x.yaml", "-A"}, {"audit", "-n", "a", "-A"}} {
		if _, stderr, code := runTool(t, "", args...); code != 2 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, want 2 with a one-line error:\n%s", args, code, stderr)
		}
	}
	if _, _, code := runTool(t, "", "audit", "-f", "testdata/missing.yaml"); code != 3 {
		t.Errorf("a missing input: exit %d, want 3", code)
	}
	// As a kubectl plugin: kubectl runs `kubectl-corsgate audit ...`.
	plugin := filepath.Join(t.TempDir(), "kubectl-corsgate")
	if err := os.Symlink(binary, plugin); err != nil {
		t.Fatal(err)
	}
	if out, _, code := runAs(t, plugin, "", "audit", "-f", importTestdata, "--fail-on", "critical"); code != 1 || !strings.Contains(out, "CRITICAL") {
		t.Errorf("kubectl-corsgate audit: exit %d\n%s", code, out)
	}
	if out, _, code := runTool(t, "", "audit", "--help"); code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "-fail-on") {
		t.Errorf("audit --help: exit %d\n%s", code, out)
	}
}

// auditorRole is the auditor ClusterRole as config/rbac ships it;
// test/deploy's TestKustomizeMatchesChart checks that the chart renders the
// same object, so the test binds exactly what the chart ships.
func auditorRole(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "auditor_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := string(b)
	if !strings.Contains(role, "kind: ClusterRole") || !strings.Contains(role, "name: corsgate-auditor\n") {
		t.Fatalf("no ClusterRole corsgate-auditor in config/rbac/auditor_role.yaml:\n%s", role)
	}
	return role
}

// TestAuditAgainstCluster runs the audit against a real kube-apiserver with
// the Gateway API CRDs and the built-in Ingresses, as a user bound to the
// chart's auditor role only: the Istio and Envoy Gateway CRDs are absent and
// must be skipped and said so. The same user without one of the role's rules
// cannot audit: the role is what the audit needs, and it is enough.
func TestAuditAgainstCluster(t *testing.T) {
	t.Parallel()
	cluster := envtesting.New(t, envtesting.Options{GatewayAPI: []string{"httproutes"}})
	kubeconfigOf := func(name string, groups ...string) string {
		t.Helper()
		return cluster.User(t, name, groups...).Kubeconfig
	}
	cfg := rest.CopyConfig(cluster.User(t, "admin", "system:masters").Config)
	cfg.QPS, cfg.Burst = 500, 1000 // the set-up creates hundreds of objects
	admin, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(manifest string) {
		t.Helper()
		dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
		for {
			var u unstructured.Unstructured
			if err := dec.Decode(&u.Object); err == io.EOF {
				return
			} else if err != nil {
				t.Fatal(err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if err := admin.Create(context.Background(), &u); err != nil {
				t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}
	role := auditorRole(t)
	apply(role + `
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: auditor}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: corsgate-auditor}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: auditor}]
`)
	// The same role without its HTTPRoute rule, for the negative check.
	partial := strings.Replace(strings.Replace(role, "name: corsgate-auditor", "name: corsgate-auditor-partial", 1),
		"resources: [httproutes]", "resources: [gateways]", 1)
	apply(partial + `
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: partial}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: corsgate-auditor-partial}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: partial}]
`)
	// ingress-nginx's defaults (enable-cors alone, from its annotations
	// docs), a Gateway API route with "*" and credentials (the conformance
	// case), a DryRun CorsPolicy (config/samples), and enough plain Ingresses
	// that the listing takes more than one page.
	var b strings.Builder
	b.WriteString(`apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations:
    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/cors-allow-origin: "null, https://origin-site.com"
spec:
  rules:
  - host: api.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cors-wildcard, namespace: default}
spec:
  parentRefs: [{name: same-namespace}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /cors-wildcard}}]
    filters:
    - type: CORS
      cors: {allowOrigins: ["*"], allowCredentials: true}
---
apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata: {name: subdomains-rollout, namespace: shop}
spec:
  hosts: ["*.example.test"]
  allowOrigins: ["https://app.example.test"]
  mode: DryRun
`)
	apply(b.String())
	const plain = 520 // more than one page of 500
	var wg sync.WaitGroup
	errs := make(chan error, plain)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < plain; i += 8 {
				ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("plain-%d", i), Namespace: "default"},
					Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: fmt.Sprintf("p%d.example.com", i)}}}}
				if err := admin.Create(context.Background(), ing); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	auditor := kubeconfigOf("auditor")
	out2, stderr, code := runTool(t, "", "audit", "--kubeconfig", auditor, "-A", "-o", "json")
	if code != 0 {
		t.Fatalf("audit as the auditor: exit %d\n%s", code, stderr)
	}
	var rep auditJSON
	if err := json.Unmarshal([]byte(out2), &rep); err != nil {
		t.Fatal(err, out2)
	}
	if rep.Objects != plain+3 {
		t.Errorf("audited %d objects, want %d (every page)", rep.Objects, plain+3)
	}
	for _, want := range [][2]string{
		{"null-origin", "Ingress shop/web"},
		{"any-origin-with-credentials", "HTTPRoute default/cors-wildcard"},
		{"not-enforced", "CorsPolicy shop/subdomains-rollout"},
	} {
		if !rep.has(want[0], want[1]) {
			t.Errorf("no %s finding for %s: %+v", want[0], want[1], rep.Findings)
		}
	}
	for _, kind := range []string{"VirtualService", "SecurityPolicy"} {
		if !slices.ContainsFunc(rep.Skipped, func(s string) bool { return strings.HasPrefix(s, kind+" ") }) {
			t.Errorf("%s (CRD absent) not reported as skipped: %v", kind, rep.Skipped)
		}
	}
	if !strings.Contains(stderr, "corsgate audit: 523 object(s) audited") {
		t.Errorf("stderr lacks the summary:\n%s", stderr)
	}

	// One namespace, the text output, and --fail-on.
	out2, _, code = runTool(t, "", "audit", "--kubeconfig", auditor, "-n", "shop", "--fail-on", "critical")
	if code != 1 || !strings.Contains(out2, "Ingress shop/web (cluster)") || strings.Contains(out2, "HTTPRoute") ||
		!strings.Contains(out2, "skipped: VirtualService") {
		t.Errorf("-n shop --fail-on critical: exit %d\n%s", code, out2)
	}

	// Without the HTTPRoute rule the audit fails, saying what was refused.
	_, stderr, code = runTool(t, "", "audit", "--kubeconfig", kubeconfigOf("partial"), "-A")
	if code != 3 || !strings.Contains(stderr, "httproutes") || !strings.Contains(stderr, "forbidden") {
		t.Errorf("audit without the httproutes rule: exit %d, want 3 and forbidden\n%s", code, stderr)
	}
}
