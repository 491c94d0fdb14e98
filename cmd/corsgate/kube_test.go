package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corsgate/corsgate/test/envtesting"
)

const kubePolicy = `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata:
  name: api
  namespace: default
spec:
  hosts: [kube.example.com]
  allowOrigins: [%s]
  allowMethods: [PUT]
`

// TestKubernetesModeFollowsKubectlApply runs the binary in Kubernetes mode
// against a real kube-apiserver and etcd (envtest), applies a CorsPolicy with
// kubectl, and drives preflights through the Envoy stand-in until the
// answer changes.
func TestKubernetesModeFollowsKubectlApply(t *testing.T) {
	t.Parallel()
	user := envtesting.New(t, envtesting.Options{}).User(t, "corsgate-test", "system:masters")
	kcPath := user.Kubeconfig
	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		return user.Kubectl(t, stdin, args...)
	}

	s := &server{addr: freePort(t), output: &bytes.Buffer{}}
	metricsAddr := freePort(t)
	s.cmd = exec.Command(binary, "--grpc-bind-address", s.addr, "--metrics-bind-address", metricsAddr, "--health-probe-bind-address", "0",
		"--leader-elect", "--leader-election-namespace", "default",
		// No grants here: this test is about following kubectl apply, with
		// host ownership off (ownership_test.go tests it on).
		"--host-ownership", "Open")
	s.cmd.Env = append(os.Environ(), "KUBECONFIG="+kcPath)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	waitServing(t, s)
	sim := envoy(t, s.addr)

	preflight := func(origin string) int { return preflightStatus(t, sim, "kube.example.com", origin, "PUT") }
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never happened; corsgate output:\n%s", what, s.output)
			}
		}
	}

	if got := preflight("https://app.example.com"); got != 405 {
		t.Fatalf("before any policy: %d, want the upstream's own 405 (no policy applies)", got)
	}
	kubectl(strings.Replace(kubePolicy, "%s", "https://app.example.com", 1), "apply", "-f", "-")
	until("the applied policy answering the preflight", func() bool { return preflight("https://app.example.com") == 204 })
	until("status Accepted=True written by the leader", func() bool {
		return kubectl("", "get", "corspolicy", "api", "-o", `jsonpath={.status.conditions[?(@.type=="Accepted")].status}`) == "True"
	})

	kubectl(strings.Replace(kubePolicy, "%s", "https://other.example.com", 1), "apply", "-f", "-")
	until("the edited policy refusing the old origin", func() bool { return preflight("https://app.example.com") == 403 })
	if got := preflight("https://other.example.com"); got != 204 {
		t.Errorf("new origin: %d, want 204", got)
	}
	if out := kubectl("", "get", "corspolicies"); !strings.Contains(out, "kube.example.com") || !strings.Contains(out, "True") {
		t.Errorf("kubectl get corspolicies should show hosts and acceptance:\n%s", out)
	}

	// The policy's decisions are counted; once it is deleted, the table
	// builder's OnServe hook makes the observer drop its series.
	series := `corsgate_decisions_total{kind="preflight",mode="Enforce",name="api",namespace="default",outcome="preflight-rejected",reason="origin_not_allowed"} `
	if got := sample(httpGet(t, "http://"+metricsAddr+"/metrics"), series); got == "" {
		t.Errorf("no %s series after the refused preflights", series)
	}
	kubectl("", "delete", "corspolicy", "api")
	until("the deleted policy leaving the table", func() bool { return preflight("https://other.example.com") == 405 })
	until("the deleted policy's series leaving /metrics", func() bool {
		return sample(httpGet(t, "http://"+metricsAddr+"/metrics"), series) == ""
	})

	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("SIGTERM: exit %v; output:\n%s", err, s.output)
	}
}
