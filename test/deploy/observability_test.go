package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	"sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/test/envoystandin"
	"github.com/corsgate/corsgate/test/envtesting"
)

// The chart's Grafana dashboard and PrometheusRule are checked here: the
// dashboard's JSON parses, every panel query is valid PromQL (promtool
// parses it, as a recording rule) and names only metrics corsgate exports
// (read from a real /metrics scrape of the binary); the alerts pass
// `promtool check rules` and their unit tests (`promtool test rules`).
//
// promtool is built from the module proxy into bin/ (make promtool) rather
// than importing Prometheus' PromQL parser: that module would pull hundreds
// of dependencies into the product's go.mod for one test.

var observabilityValues = map[string]any{"metrics": map[string]any{
	"dashboard":      map[string]any{"enabled": true},
	"prometheusRule": map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus-stack"}},
}}

// dashboardQueries renders the chart's dashboard and returns its panel
// queries by panel title.
func dashboardQueries(t *testing.T) map[string][]string {
	t.Helper()
	objs := mustRender(t, observabilityValues)
	cm := mustFind(t, objs, "ConfigMap", "corsgate-dashboard")
	if got := cm.GetLabels()["grafana_dashboard"]; got != "1" {
		t.Errorf("dashboard ConfigMap label grafana_dashboard = %q, want \"1\" (the Grafana sidecar's default)", got)
	}
	data, _ := cm.Object["data"].(map[string]any)
	raw, _ := data["corsgate.json"].(string)
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if dash.UID == "" || len(dash.Panels) < 8 {
		t.Fatalf("dashboard uid %q with %d panels; want a uid and the panels of docs/operating.md", dash.UID, len(dash.Panels))
	}
	out := map[string][]string{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	return out
}

// grafanaVars replaces the dashboard's variables by what Grafana would
// send, so that promtool can parse the result.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*")

// promtoolCheck writes rule groups to a file and runs promtool check rules.
func promtoolCheck(t *testing.T, groups any) string {
	t.Helper()
	data, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, tool(t, "promtool"), "check", "rules", file)
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, out, data)
	}
	return file
}

func TestDashboardQueriesParse(t *testing.T) {
	t.Parallel()
	var rules []map[string]any
	for title, exprs := range dashboardQueries(t) {
		for _, e := range exprs {
			rules = append(rules, map[string]any{"record": "corsgate:dashboard_query", "expr": grafanaVars.Replace(e), "labels": map[string]any{"panel": title}})
		}
	}
	promtoolCheck(t, []map[string]any{{"name": "dashboard", "rules": rules}})
}

// prometheusRuleGroups renders the chart's PrometheusRule and returns its
// spec.groups, which is a Prometheus rule file's groups.
func prometheusRuleGroups(t *testing.T) any {
	t.Helper()
	pr := mustFind(t, mustRender(t, observabilityValues), "PrometheusRule", "corsgate")
	if pr.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule labels = %v, want metrics.prometheusRule.labels added", pr.GetLabels())
	}
	spec, _ := pr.Object["spec"].(map[string]any)
	return spec["groups"]
}

func TestAlertsPassPromtool(t *testing.T) {
	t.Parallel()
	rules := promtoolCheck(t, prometheusRuleGroups(t))
	// Unit tests of the alerts, on synthetic series (promtool test rules).
	tests := `rule_files: [` + filepath.Base(rules) + `]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'corsgate_table_served{namespace="corsgate-system",job="corsgate-metrics",pod="corsgate-a"}'
        values: '0x10'
      - series: 'corsgate_table_served{namespace="corsgate-system",job="corsgate-metrics",pod="corsgate-b"}'
        values: '1x10'
    alert_rule_test:
      - alertname: CorsgateNoTableServed
        eval_time: 4m
        exp_alerts: []
      - alertname: CorsgateNoTableServed
        eval_time: 6m
        exp_alerts:
          - exp_labels: {severity: critical, namespace: corsgate-system, job: corsgate-metrics, pod: corsgate-a}
            exp_annotations:
              summary: "corsgate corsgate-a serves no policy table"
              description: "The replica has not loaded its first policy table for 5 minutes, so it is not ready and Envoy gets no CORS answers from it. Look at its log: the API server or the policy files cannot be read."
  - interval: 1m
    input_series:
      - series: 'corsgate_table_fingerprint{namespace="corsgate-system",job="corsgate-metrics",pod="corsgate-a"}'
        values: '7x30'
      - series: 'corsgate_table_fingerprint{namespace="corsgate-system",job="corsgate-metrics",pod="corsgate-b"}'
        values: '7x5 9x25'
    alert_rule_test:
      - alertname: CorsgateReplicasServeDifferentTables
        eval_time: 10m
        exp_alerts: []
      - alertname: CorsgateReplicasServeDifferentTables
        eval_time: 20m
        exp_alerts:
          - exp_labels: {severity: warning, namespace: corsgate-system, job: corsgate-metrics}
            exp_annotations:
              summary: "corsgate replicas in corsgate-system serve different policy tables"
              description: "For 10 minutes not every replica has served the same CorsPolicy generations: a replica whose watch is stuck answers with old policies. Compare corsgate_table_fingerprint per pod and restart the odd one."
  - interval: 1m
    input_series:
      # 10 requests/s; 1% denied for two hours, then 60%.
      - series: 'corsgate_decisions_total{namespace="shop",name="orders",kind="actual",reason="allowed"}'
        values: '0+594x120 71280+240x60'
      - series: 'corsgate_decisions_total{namespace="shop",name="orders",kind="actual",reason="origin_not_allowed"}'
        values: '0+6x120 720+360x60'
    alert_rule_test:
      - alertname: CorsgatePolicyDenialRateJumped
        eval_time: 110m
        exp_alerts: []
      - alertname: CorsgatePolicyDenialRateJumped
        eval_time: 150m
        exp_alerts:
          - exp_labels: {severity: warning, namespace: shop, name: orders}
            exp_annotations:
              summary: "CorsPolicy shop/orders denies far more than an hour ago"
              description: "The share of CORS requests this policy denies (or, in DryRun, would deny) more than doubled against the hour before, usually after a change to the policy. /debug/corsgate/origins on the metrics port lists the origins it denies."
`
	testFile := filepath.Join(filepath.Dir(rules), "rules_test.yaml")
	if err := os.WriteFile(testFile, []byte(tests), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, tool(t, "promtool"), "test", "rules", testFile); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// kubernetesOnly are metrics only Kubernetes mode exports (table builds
// from the API server's cache, per-policy conditions); the scrape below is
// of file mode. Each must still be registered by controllers.TableMetrics.
var kubernetesOnly = []string{"corsgate_table_fingerprint", "corsgate_table_builds_total", "corsgate_policy_ready", "corsgate_policy_accepted", "corsgate_policy_conflicted"}

func TestDashboardAndAlertsNameExportedMetrics(t *testing.T) {
	t.Parallel()
	exported := scrapeBinary(t)
	src, err := os.ReadFile(repoPath(t, "controllers", "metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range kubernetesOnly {
		if !strings.Contains(string(src), `"`+name+`"`) {
			t.Errorf("%s is not registered in controllers/metrics.go", name)
		}
		exported[name] = true
	}
	check := func(where, expr string) {
		for _, name := range metricNames(grafanaVars.Replace(expr)) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
			if !exported[name] && !exported[base] {
				t.Errorf("%s uses %s, which corsgate does not export (exported: %v)", where, name, sortedKeys(exported))
			}
		}
	}
	for title, exprs := range dashboardQueries(t) {
		for _, e := range exprs {
			check("dashboard panel "+strconvQuote(title), e)
		}
	}
	data, err := yaml.Marshal(prometheusRuleGroups(t))
	if err != nil {
		t.Fatal(err)
	}
	var groups []struct {
		Rules []struct {
			Alert string `json:"alert"`
			Expr  string `json:"expr"`
		} `json:"rules"`
	}
	if err := yaml.Unmarshal(data, &groups); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		for _, r := range g.Rules {
			check("alert "+r.Alert, r.Expr)
		}
	}
	// The extraction itself: a metric, a function, labels and keywords.
	if got := metricNames(`sum by (le, phase) (rate(a_b_bucket{x="y{z}"}[5m])) / on (n) group_left c_total offset 1h > bool 2`); !slices.Equal(got, []string{"a_b_bucket", "c_total"}) {
		t.Errorf("metricNames = %v, want [a_b_bucket c_total]", got)
	}
}

func strconvQuote(s string) string { return `"` + s + `"` }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promBraces   = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
	promDuration = regexp.MustCompile(`^[0-9]`)
)

// metricNames lists the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are removed, other than function names (followed by "("),
// keywords and numbers. promtool has already parsed the expression, so
// this lexical pass only needs to tell names from the rest.
func metricNames(expr string) []string {
	e := promString.ReplaceAllString(expr, `""`)
	e = promBraces.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " \t\n")
		if promKeywords[strings.ToLower(name)] || strings.HasPrefix(rest, "(") || (loc[0] > 0 && promDuration.MatchString(e[loc[0]-1:loc[0]])) {
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// scrapeBinary builds corsgate, runs it in file mode with a policy, drives
// decisions (enough denials to hit the log rate limit) through the Envoy
// stand-in, and returns the metric names of its /metrics.
func scrapeBinary(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "corsgate")
	if out, err := run(t, "go", "build", "-o", bin, "./cmd/corsgate"); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	policy := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\nmetadata: {name: api, namespace: shop}\nspec:\n  hosts: [api.example.com]\n  allowOrigins: [https://app.example.com]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	grpcAddr, metricsAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "--policies", policy, "--grpc-bind-address", grpcAddr, "--metrics-bind-address", metricsAddr, "--health-probe-bind-address", "0")
	var output strings.Builder
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sim := envoystandin.New(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{
		AllowModeOverride: true, MessageTimeout: durationpb.New(10 * time.Second)}})
	preflight := func(origin string) (int, error) {
		res, err := sim.Do(context.Background(), envoystandin.Request{Method: "OPTIONS", Authority: "api.example.com", Path: "/",
			Headers: envoystandin.NewHeaders("origin", origin, "access-control-request-method", "GET")}, envoystandin.Upstream{Status: 200})
		if err != nil {
			return 0, err
		}
		return res.Status, nil
	}
	// Until corsgate listens, the stand-in answers 500 as Envoy would.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if status, _ := preflight("https://app.example.com"); status == 204 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("corsgate never answered 204; output:\n%s", output.String())
		}
	}
	for range 20 {
		if status, err := preflight("https://evil.example"); err != nil || status != 403 {
			t.Fatalf("preflight from evil.example: %d, %v; want 403", status, err)
		}
	}
	// The metrics listener starts beside the gRPC one: wait for it too.
	var resp *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err = http.Get("http://" + metricsAddr + "/metrics")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names[promIdent.FindString(line)] = true
	}
	for _, want := range []string{"corsgate_decisions_total", "corsgate_decision_logs_suppressed_total", "corsgate_extproc_stream_duration_seconds_bucket", "grpc_server_handled_total"} {
		if !names[want] {
			t.Fatalf("/metrics lacks %s:\n%s\ncorsgate's output:\n%s", want, body, output.String())
		}
	}
	return names
}

func freeAddr(t *testing.T) string { return envtesting.FreeAddr(t) }
