package main_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/test/envoystandin"
	"github.com/corsgate/corsgate/test/envtesting"
)

const (
	paymentsGrant = `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsHostGrant
metadata:
  name: payments
spec:
  namespaces: [payments]
  hosts: [payments.example.com]
`
	paymentsPolicy = `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata:
  name: api
  namespace: payments
spec:
  hosts: [payments.example.com]
  pathPrefixes: [/v1]
  allowOrigins: [https://pay.example.com]
  allowMethods: [PUT]
  allowCredentials: true
`
	// The attack from the issue: a team with rights in "orders" claims a
	// longer prefix of the payments team's host, for any script on
	// evil.example, with credentials.
	attackPolicy = `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata:
  name: transfers
  namespace: orders
spec:
  hosts: [payments.example.com]
  pathPrefixes: [/v1/transfers]
  allowOrigins: [https://evil.example]
  allowMethods: [PUT]
  allowCredentials: true
`
)

// TestHostOwnershipStopsTheAttack runs the binary with its defaults
// (--host-ownership=Enforce) against a real kube-apiserver, with the chart's
// admission policy installed, and tries the hijack through `kubectl apply`:
// the orders namespace has no grant for payments.example.com, so apply
// warns, the policy's status refuses it, and preflights through the Envoy
// stand-in keep being decided by the payments policy.
func TestHostOwnershipStopsTheAttack(t *testing.T) {
	t.Parallel()
	user := envtesting.New(t, envtesting.Options{}).User(t, "corsgate-test", "system:masters")
	kcPath := user.Kubeconfig
	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		return user.Kubectl(t, stdin, args...)
	}
	kubectl("", "apply", "-f", filepath.Join("..", "..", "config", "admission", "host_ownership.yaml"))
	kubectl("", "create", "namespace", "payments")
	kubectl("", "create", "namespace", "orders")

	s := &server{addr: freePort(t), output: &bytes.Buffer{}}
	s.cmd = exec.Command(binary, "--grpc-bind-address", s.addr, "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--leader-elect", "--leader-election-namespace", "default")
	s.cmd.Env = append(os.Environ(), "KUBECONFIG="+kcPath)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	waitServing(t, s)
	sim := envoy(t, s.addr)
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never happened; corsgate output:\n%s", what, s.output)
			}
		}
	}
	transfers := func(origin string) int {
		return preflightAt(t, sim, "payments.example.com", "/v1/transfers/42", origin, "PUT")
	}
	condition := func(ns, name, typ, field string) string {
		return kubectl("", "get", "corspolicy", "-n", ns, name, "-o", `jsonpath={.status.conditions[?(@.type=="`+typ+`")].`+field+`}`)
	}

	kubectl(paymentsGrant, "apply", "-f", "-")
	kubectl(paymentsPolicy, "apply", "-f", "-")
	until("the payments policy answering /v1/transfers", func() bool { return transfers("https://pay.example.com") == 204 })

	// The attack. The admission policy warns at apply time; corsgate refuses.
	out := kubectl(attackPolicy, "apply", "-f", "-")
	if !strings.Contains(out, "Warning:") || !strings.Contains(out, "CorsHostGrant payments gives payments.example.com to other namespaces than orders") {
		t.Errorf("kubectl apply of the attack should warn:\n%s", out)
	}
	until("the attack refused in status (Accepted=False, HostNotGranted)", func() bool {
		return condition("orders", "transfers", "Accepted", "reason") == "HostNotGranted"
	})
	msg := condition("orders", "transfers", "Accepted", "message")
	for _, want := range []string{`namespace "orders"`, `host "payments.example.com" under "/v1/transfers"`, `"kind":"CorsHostGrant"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("status message lacks %q: %s", want, msg)
		}
	}
	if got := condition("orders", "transfers", "Ready", "status"); got != "False" {
		t.Errorf("attack Ready = %q, want False", got)
	}

	// The payments policy keeps deciding /v1/transfers: the evil origin is
	// refused at the edge (403, no CORS headers), the payments app's allowed.
	// The attack's status is written after the build that refused it, so
	// these answers come from the same table.
	if got := transfers("https://evil.example"); got != 403 {
		t.Errorf("preflight from https://evil.example to /v1/transfers: %d, want 403 (decided by payments/api)", got)
	}
	if got := transfers("https://pay.example.com"); got != 204 {
		t.Errorf("preflight from https://pay.example.com to /v1/transfers: %d, want 204", got)
	}
	if got := condition("payments", "api", "Ready", "status"); got != "True" {
		t.Errorf("payments/api Ready = %q, want True", got)
	}
	if out := kubectl("", "get", "corshostgrants"); !strings.Contains(out, "payments.example.com") || !strings.Contains(out, "ADMITTED") {
		t.Errorf("kubectl get corshostgrants should show hosts and admitted count:\n%s", out)
	}
}

// TestHostOwnershipFlag: Open is logged as a warning at start-up, and a value
// that is neither Enforce nor Open is refused with what to write. Neither
// needs a cluster: the flag is checked before connecting.
func TestHostOwnershipFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, value, want string
	}{
		{desc: "Open warns", value: "Open", want: "WARNING: --host-ownership=Open: any namespace that may write a CorsPolicy can claim any host"},
		{desc: "unknown value", value: "enforce", want: `: write Enforce (the default: serve a CorsPolicy only where a CorsHostGrant admits its namespace) or Open`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binary, "--host-ownership", tc.value, "--grpc-bind-address", "127.0.0.1:0",
				"--metrics-bind-address", "0", "--health-probe-bind-address", "0")
			cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(t.TempDir(), "missing"), "KUBERNETES_SERVICE_HOST=")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("started without a cluster:\n%s", out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

// preflightAt sends a preflight for path through the stand-in and returns
// the status the browser would see.
func preflightAt(t *testing.T, sim *envoystandin.Sim, authority, path, origin, method string) int {
	t.Helper()
	res, err := sim.Do(context.Background(), envoystandin.Request{Method: "OPTIONS", Authority: authority, Path: path,
		Headers: envoystandin.NewHeaders("origin", origin, "access-control-request-method", method)}, upstream)
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}
