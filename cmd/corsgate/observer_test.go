package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/observe"
)

// startObserved runs the binary like start, with the metrics listener on
// and the given extra flags; it returns the server and the listener's URL.
func startObserved(t *testing.T, policies string, flags ...string) (*server, string) {
	t.Helper()
	s := &server{addr: freePort(t), output: &bytes.Buffer{}}
	metricsAddr := freePort(t)
	args := append([]string{"--policies", policies, "--grpc-bind-address", s.addr,
		"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", "0"}, flags...)
	s.cmd = exec.Command(binary, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	})
	waitServing(t, s)
	return s, "http://" + metricsAddr
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
			}
			return string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
}

// sample finds one sample line of the text exposition.
func sample(metrics, prefix string) string {
	for l := range strings.SplitSeq(metrics, "\n") {
		if after, ok := strings.CutPrefix(l, prefix); ok {
			return strings.TrimSpace(after)
		}
	}
	return ""
}

func TestDecisionsMetricsLogAndOriginsThroughTheBinary(t *testing.T) {
	t.Parallel()
	s, admin := startObserved(t, "testdata/design.yaml")
	sim := envoy(t, s.addr)
	for range 3 {
		if got := preflightStatus(t, sim, "api.example.com", "https://evil.example", "GET"); got != 403 {
			t.Fatalf("preflight from evil.example: %d, want 403", got)
		}
	}
	if got := preflightStatus(t, sim, "api.example.com", "https://app.example.com", "GET"); got != 204 {
		t.Fatalf("preflight from app.example.com: %d, want 204", got)
	}
	for range 6 {
		preflightStatus(t, sim, "trial.example.org", "https://partner.example", "PUT")
	}

	// grpc-go counts a stream as handled after its last message is sent, so
	// the last exchange's count may trail the answer the stand-in got.
	const handled = `grpc_server_handled_total{grpc_code="OK",grpc_method="Process",grpc_service="envoy.service.ext_proc.v3.ExternalProcessor",grpc_type="bidi_stream"}`
	m := httpGet(t, admin+"/metrics")
	for deadline := time.Now().Add(10 * time.Second); sample(m, handled+" ") != "10" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		m = httpGet(t, admin+"/metrics")
	}
	for prefix, want := range map[string]string{
		`corsgate_decisions_total{kind="preflight",mode="Enforce",name="subdomains",namespace="shop",outcome="preflight-rejected",reason="origin_not_allowed"}`: "3",
		`corsgate_decisions_total{kind="preflight",mode="Enforce",name="subdomains",namespace="shop",outcome="preflight-allowed",reason="allowed"}`:             "1",
		`corsgate_decisions_total{kind="preflight",mode="DryRun",name="trial",namespace="shop",outcome="forwarded",reason="origin_not_allowed"}`:                "6",
		`corsgate_table_policies`: "5",
		handled:                   "10",
	} {
		if got := sample(m, prefix+" "); got != want {
			t.Errorf("%s = %q, want %s", prefix, got, want)
		}
	}
	for _, family := range []string{"corsgate_extproc_message_duration_seconds_bucket", "corsgate_extproc_stream_duration_seconds_count",
		"corsgate_table_served", "corsgate_policy_source_last_reload_timestamp_seconds"} {
		if !strings.Contains(m, "\n"+family) {
			t.Errorf("/metrics lacks %s", family)
		}
	}

	// Denials are logged at info (the default --decision-log=denials), as
	// JSON lines with the policy, the reason and the request.
	// The lines reach the buffer through a pipe: wait for them.
	var denials []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		denials = nil
		sc := bufio.NewScanner(strings.NewReader(s.output.String()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["policy"] != nil && line["reason"] != nil {
				denials = append(denials, line)
			}
		}
		if len(denials) >= 9 || time.Now().After(deadline) {
			break
		}
	}
	if len(denials) != 9 {
		t.Fatalf("%d decision log lines, want 3 denials and 6 DryRun would-be denials; output:\n%s", len(denials), s.output)
	}
	if d := denials[0]; d["policy"] != "shop/subdomains" || d["reason"] != "origin_not_allowed" || d["origin"] != `"https://evil.example"` ||
		d["level"] != "info" || d["host"] != `"api.example.com"` || d["path"] != `"/"` {
		t.Errorf("first denial = %v", d)
	}

	var report observe.OriginsReport
	if err := json.Unmarshal([]byte(httpGet(t, admin+observe.OriginsPath+"?namespace=shop&name=trial")), &report); err != nil {
		t.Fatal(err)
	}
	if len(report.Policies) != 1 || report.Policies[0].Mode != "DryRun" || len(report.Policies[0].Denied.Origins) != 1 ||
		report.Policies[0].Denied.Origins[0] != (observe.OriginCount{Origin: "https://partner.example", Count: 6}) {
		t.Errorf("observed origins of shop/trial = %+v; want partner.example 6 times would-be denied", report.Policies)
	}
}

func TestDecisionLogFlag(t *testing.T) {
	t.Parallel()
	s, _ := startObserved(t, "testdata/design.yaml", "--decision-log=none")
	sim := envoy(t, s.addr)
	preflightStatus(t, sim, "api.example.com", "https://evil.example", "GET")
	time.Sleep(100 * time.Millisecond)
	if strings.Contains(s.output.String(), "origin_not_allowed") {
		t.Errorf("--decision-log=none logged a decision:\n%s", s.output)
	}
	out, err := exec.Command(binary, "--decision-log=some", "--policies", "testdata/design.yaml").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "write denials (the default), all or none") {
		t.Errorf("--decision-log=some: %v\n%s; want a usage error naming the values", err, out)
	}
}

// TestRemovedPolicyLeavesMetrics: when a reload drops a policy, its
// decision series and observed origins go (the file source's OnServe hook
// calls the observer's Retain); a policy still served keeps its series.
func TestRemovedPolicyLeavesMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(body string) {
		t.Helper()
		// Written beside the folder, then renamed in: the source never
		// reads a half-written file.
		tmp := filepath.Join(t.TempDir(), "p.yaml")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "p.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	const policy = `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata: {name: %s, namespace: shop}
spec:
  hosts: [%s.example.com]
  allowOrigins: [https://app.example.com]
`
	write(fmt.Sprintf(policy, "kept", "kept") + "---\n" + fmt.Sprintf(policy, "dropped", "dropped"))
	s, admin := startObserved(t, dir, "--policies-settle", "50ms")
	sim := envoy(t, s.addr)
	for _, host := range []string{"kept.example.com", "dropped.example.com"} {
		if got := preflightStatus(t, sim, host, "https://evil.example", "GET"); got != 403 {
			t.Fatalf("preflight to %s: %d, want 403", host, got)
		}
	}
	series := func(name string) string {
		return `corsgate_decisions_total{kind="preflight",mode="Enforce",name="` + name + `",namespace="shop",outcome="preflight-rejected",reason="origin_not_allowed"} `
	}
	m := httpGet(t, admin+"/metrics")
	if sample(m, series("kept")) != "1" || sample(m, series("dropped")) != "1" {
		t.Fatalf("before the reload: kept=%q dropped=%q, want 1 each", sample(m, series("kept")), sample(m, series("dropped")))
	}

	write(fmt.Sprintf(policy, "kept", "kept"))
	waitFor(t, 30*time.Second, "the dropped policy's series to leave /metrics", func() bool {
		return sample(httpGet(t, admin+"/metrics"), series("dropped")) == ""
	})
	if got := sample(httpGet(t, admin+"/metrics"), series("kept")); got != "1" {
		t.Errorf("the kept policy's series = %q after the reload, want 1", got)
	}
	if body := httpGet(t, admin+observe.OriginsPath+"?namespace=shop&name=dropped"); strings.Contains(body, "evil.example") {
		t.Errorf("the dropped policy's observed origins are still reported: %s", body)
	}
}
