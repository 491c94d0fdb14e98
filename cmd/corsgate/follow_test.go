package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 21, "The file source stops following its folder", through the
// binary: a release symlink switched as release tools do is served, and a
// path whose folder vanishes is reported (log, /readyz, metrics) while the
// last table serves, until it comes back.
func TestFileSourceFollowsThePathThroughTheBinary(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, rel := range []struct{ name, host string }{{"rel1", "one.example"}, {"rel2", "two.example"}, {"rel3", "three.example"}} {
		os.MkdirAll(filepath.Join(root, "mnt", rel.name), 0o755)
		os.WriteFile(filepath.Join(root, "mnt", rel.name, "p.yaml"), []byte(fmt.Sprintf(policyDoc, "p", rel.host)), 0o644)
	}
	current := filepath.Join(root, "mnt", "current")
	switchTo := func(rel string) {
		tmp := current + ".tmp"
		if err := os.Symlink(rel, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, current); err != nil { // mv -T tmp current
			t.Fatal(err)
		}
	}
	switchTo("rel1")
	p := run(t, "--policies", current, "--policies-settle", "100ms")
	sim := envoy(t, p.addr)
	waitServed := func(host string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if ok, _ := answered(t, sim, host); ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never served", host)
			}
		}
	}
	if got := p.metric(t, "corsgate_policy_source_watching"); got != 1 {
		t.Errorf("corsgate_policy_source_watching = %v, want 1", got)
	}
	switchTo("rel2")
	waitServed("two.example")
	switchTo("rel3")
	waitServed("three.example")

	// The folder holding the path vanishes: said, and the last table serves.
	if err := os.Rename(filepath.Join(root, "mnt"), filepath.Join(root, "gone")); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "policy changes are not seen")
	for deadline := time.Now().Add(30 * time.Second); p.metric(t, "corsgate_policy_source_watching") != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("corsgate_policy_source_watching never became 0")
		}
	}
	if got := p.metric(t, "corsgate_policy_source_degraded"); got != 1 {
		t.Errorf("corsgate_policy_source_degraded = %v, want 1", got)
	}
	code, body := getURL(t, "http://"+p.probes+"/readyz")
	if code != 200 || !strings.Contains(body, "degraded") || !strings.Contains(body, "cannot watch --policies") {
		t.Errorf("/readyz = %d %q, want 200, degraded, with the reason", code, body)
	}
	if ok, res := answered(t, sim, "three.example"); !ok {
		t.Errorf("three.example: %+v, want the last table to keep serving", res)
	}
	// It comes back, on another release.
	if err := os.Rename(filepath.Join(root, "gone"), filepath.Join(root, "mnt")); err != nil {
		t.Fatal(err)
	}
	switchTo("rel1")
	waitServed("one.example")
	p.waitLog(t, "watching policy files again")
	for deadline := time.Now().Add(30 * time.Second); p.metric(t, "corsgate_policy_source_degraded") != 0 || p.metric(t, "corsgate_policy_source_watching") != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the source never reported itself healthy again")
		}
	}
}

// A file of targetRefs policies serves nothing in file mode: the server
// says so and refuses to start serving nothing; beside a hosts policy, it is
// logged and reported as degraded.
func TestTargetRefsInFilesThroughTheBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(`apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata: {name: attached}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop}]
  allowOrigins: [https://one.example]
`), 0o644)
	_, stderr, code := runBounded(t, binary, "--policies", dir, "--grpc-bind-address", freePort(t),
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	if code == 0 || !strings.Contains(stderr, "policy not served") || !strings.Contains(stderr, "none serves a request") {
		t.Errorf("a folder of targetRefs policies: exit %d; want a refusal that says they serve nothing:\n%s", code, stderr)
	}
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(fmt.Sprintf(policyDoc, "b", "b.example")), 0o644)
	p := run(t, "--policies", dir)
	p.waitLog(t, "policy not served", "default/attached")
	if got := p.metric(t, "corsgate_policy_source_policies"); got != 1 {
		t.Errorf("corsgate_policy_source_policies = %v, want 1 (the targetRefs policy serves nothing)", got)
	}
	if got := p.metric(t, "corsgate_policy_source_degraded"); got != 1 {
		t.Errorf("corsgate_policy_source_degraded = %v, want 1", got)
	}
}
