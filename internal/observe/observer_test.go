package observe_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/observe"
	"github.com/corsgate/corsgate/internal/table"
	"github.com/corsgate/corsgate/test/envoystandin"
	"github.com/corsgate/corsgate/test/gen"
)

func dryRun(p *v1alpha1.CorsPolicy) { p.Spec.Mode = v1alpha1.ModeDryRun }

// testPolicies: an enforcing policy for api.example.com and a DryRun one for
// trial.example.com, both allowing https://app.example.com only.
func testPolicies() []v1alpha1.CorsPolicy {
	return []v1alpha1.CorsPolicy{
		*gen.CorsPolicy("orders", gen.WithNamespace("shop"), gen.WithHosts("api.example.com"),
			gen.WithOrigins("https://app.example.com"), gen.WithMethods("GET", "PUT")),
		*gen.CorsPolicy("trial", gen.WithNamespace("lab"), gen.WithHosts("trial.example.com"),
			gen.WithOrigins("https://app.example.com"), dryRun),
	}
}

// logLines collects log lines as funcr renders them (JSON).
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) logger() logr.Logger {
	return funcr.NewJSON(func(obj string) {
		var m map[string]any
		if err := json.Unmarshal([]byte(obj), &m); err != nil {
			panic(err)
		}
		l.mu.Lock()
		l.lines = append(l.lines, m)
		l.mu.Unlock()
	}, funcr.Options{})
}

func (l *logLines) all() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]any(nil), l.lines...)
}

type harness struct {
	sim     *envoystandin.Sim
	obs     *observe.Observer
	reg     *prometheus.Registry
	store   *table.Store
	builder *compile.Builder
	logs    *logLines
	admin   *httptest.Server
}

// newHarness builds the policies' table with the real compile path, serves
// it with the real ext_proc server over loopback gRPC, and puts the Envoy
// stand-in in front; /metrics and the origins endpoint are served as the
// binary serves them.
func newHarness(t *testing.T, opts observe.Options, policies []v1alpha1.CorsPolicy) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), store: &table.Store{}, builder: compile.NewBuilder(), logs: &logLines{}}
	h.swap(t, policies)
	h.obs = observe.New(h.reg, h.logs.logger(), opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runner := &extproc.Runner{Server: extproc.NewServer(h.store, extproc.WithObserver(h.obs)), Listener: lis}
	done := make(chan error, 1)
	go func() { done <- runner.Start(ctx) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
	})
	h.sim = envoystandin.New(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{
		AllowModeOverride: true, MessageTimeout: durationpb.New(10 * time.Second),
	}})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{}))
	mux.Handle(observe.OriginsPath, h.obs.OriginsHandler())
	h.admin = httptest.NewServer(mux)
	t.Cleanup(h.admin.Close)
	return h
}

func (h *harness) swap(t *testing.T, policies []v1alpha1.CorsPolicy) {
	t.Helper()
	tbl, results := h.builder.Build(policies)
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Key(), r.Err)
		}
	}
	h.store.Swap(tbl)
	if h.obs != nil {
		h.obs.Retain(tbl) // as the sources' OnServe hook does in the binary
	}
}

var upstream = envoystandin.Upstream{Status: 200}

func (h *harness) preflight(t *testing.T, host, origin, method string) int {
	t.Helper()
	res, err := h.sim.Do(context.Background(), envoystandin.Request{Method: "OPTIONS", Authority: host, Path: "/v1/orders?token=secret",
		Headers: envoystandin.NewHeaders("origin", origin, "access-control-request-method", method)}, upstream)
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

func (h *harness) get(t *testing.T, host, origin string) {
	t.Helper()
	headers := envoystandin.NewHeaders()
	if origin != "" {
		headers = envoystandin.NewHeaders("origin", origin)
	}
	if _, err := h.sim.Do(context.Background(), envoystandin.Request{Method: "GET", Authority: host, Path: "/v1/orders", Headers: headers}, upstream); err != nil {
		t.Fatal(err)
	}
}

// scrape reads /metrics as Prometheus would and returns the samples of one
// family as "label=value,... -> value".
func (h *harness) scrape(t *testing.T, family string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(h.admin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	families, err := parseText(resp)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, m := range families[family].GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		v := m.GetCounter().GetValue()
		if m.GetHistogram() != nil {
			v = float64(m.GetHistogram().GetSampleCount())
		}
		out[strings.Join(labels, ",")] = v
	}
	return out
}

func (h *harness) origins(t *testing.T, query string) observe.OriginsReport {
	t.Helper()
	resp, err := http.Get(h.admin.URL + observe.OriginsPath + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s%s: %s %s", observe.OriginsPath, query, resp.Status, resp.Header.Get("Content-Type"))
	}
	var r observe.OriginsReport
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDecisionsByPolicyThroughTheStandIn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, observe.Options{}, testPolicies())
	for range 3 {
		if got := h.preflight(t, "api.example.com", "https://evil.example", "PUT"); got != 403 {
			t.Fatalf("preflight from evil: %d, want 403", got)
		}
	}
	if got := h.preflight(t, "api.example.com", "https://app.example.com", "PUT"); got != 204 {
		t.Fatalf("preflight from app: %d, want 204", got)
	}
	h.get(t, "api.example.com", "https://app.example.com")
	h.get(t, "api.example.com", "")
	h.preflight(t, "trial.example.com", "https://evil.example", "GET")
	h.preflight(t, "unknown.example.com", "https://app.example.com", "GET") // no policy: not counted

	got := h.scrape(t, "corsgate_decisions_total")
	want := map[string]float64{
		"kind=preflight,mode=Enforce,name=orders,namespace=shop,outcome=preflight-rejected,reason=origin_not_allowed": 3,
		"kind=preflight,mode=Enforce,name=orders,namespace=shop,outcome=preflight-allowed,reason=allowed":             1,
		"kind=actual,mode=Enforce,name=orders,namespace=shop,outcome=actual-allowed,reason=allowed":                   1,
		"kind=not-cors,mode=Enforce,name=orders,namespace=shop,outcome=not-cors,reason=not_cors":                      1,
		// DryRun: forwarded, and the reason says what Enforce would have done.
		"kind=preflight,mode=DryRun,name=trial,namespace=lab,outcome=forwarded,reason=origin_not_allowed": 1,
	}
	if len(got) != len(want) {
		t.Errorf("series = %v\nwant %v (only the combinations used exist)", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	phases := h.scrape(t, "corsgate_extproc_message_duration_seconds")
	if phases["phase=request_headers"] < 8 || phases["phase=response_headers"] < 2 {
		t.Errorf("message latency counts = %v; want every request_headers (>= 8) and response_headers (>= 2) timed", phases)
	}
	if s := h.scrape(t, "corsgate_extproc_stream_duration_seconds"); s[""] < 8 {
		t.Errorf("stream duration count = %v, want >= 8", s)
	}

	// Denials are logged at info, with the policy, the reason and the
	// request (path without its query); allowed requests are not.
	var denials []map[string]any
	for _, l := range h.logs.all() {
		if l["policy"] != nil {
			denials = append(denials, l)
		}
	}
	if len(denials) != 4 {
		t.Fatalf("decision log lines = %v; want 3 denials of shop/orders and 1 would-be denial of lab/trial", denials)
	}
	first := denials[0]
	for k, v := range map[string]any{"policy": "shop/orders", "kind": "preflight", "reason": "origin_not_allowed", "outcome": "preflight-rejected",
		"origin": `"https://evil.example"`, "method": `"OPTIONS"`, "host": `"api.example.com"`, "path": `"/v1/orders"`, "mode": "Enforce"} {
		if first[k] != v {
			t.Errorf("log field %s = %v, want %v (line %v)", k, first[k], v, first)
		}
	}
	if first["msg"] != "CORS request denied" {
		t.Errorf("msg = %v", first["msg"])
	}
	if last := denials[3]; last["policy"] != "lab/trial" || last["mode"] != "DryRun" || last["msg"] != "CORS request would be denied (DryRun)" {
		t.Errorf("DryRun line = %v", last)
	}
}

func TestObservedOriginsSplitByDecision(t *testing.T) {
	t.Parallel()
	h := newHarness(t, observe.Options{Log: observe.LogNone}, testPolicies())
	for range 7 {
		h.preflight(t, "trial.example.com", "https://partner.example", "GET")
	}
	for range 2 {
		h.preflight(t, "trial.example.com", "https://app.example.com", "GET")
	}
	h.get(t, "trial.example.com", "https://other.example")
	h.get(t, "trial.example.com", "") // no Origin: not an origin to list
	h.preflight(t, "api.example.com", "https://app.example.com", "GET")

	r := h.origins(t, "?namespace=lab&name=trial")
	if r.Capacity != observe.OriginsCapacity || len(r.Policies) != 1 {
		t.Fatalf("report = %+v, want lab/trial only", r)
	}
	p := r.Policies[0]
	if p.Mode != "DryRun" || p.Since.IsZero() {
		t.Errorf("mode %q since %v", p.Mode, p.Since)
	}
	wantDenied := []observe.OriginCount{{Origin: "https://partner.example", Count: 7}, {Origin: "https://other.example", Count: 1}}
	if fmt.Sprint(p.Denied.Origins) != fmt.Sprint(wantDenied) || p.Denied.Requests != 8 {
		t.Errorf("would be denied = %+v, want %v over 8 requests", p.Denied, wantDenied)
	}
	if want := []observe.OriginCount{{Origin: "https://app.example.com", Count: 2}}; fmt.Sprint(p.Allowed.Origins) != fmt.Sprint(want) {
		t.Errorf("allowed = %+v, want %v", p.Allowed, want)
	}
	if all := h.origins(t, ""); len(all.Policies) != 2 || all.Policies[0].Namespace != "lab" || all.Policies[1].Name != "orders" {
		t.Errorf("all policies = %+v, want lab/trial and shop/orders", all.Policies)
	}
	// Only origins seen at least MinStatusCount times go to status.
	top := h.obs.TopDenied(5)
	if got := fmt.Sprint(top); got != "map[lab/trial:[https://partner.example]]" {
		t.Errorf("TopDenied = %s", got)
	}
	resp, err := http.Get(h.admin.URL + observe.OriginsPath + "?namespace=lab")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("namespace without name: %s, want 400", resp.Status)
	}
}

func TestLogRateLimitPerPolicyAndReason(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newHarness(t, observe.Options{LogBurst: 3, LogInterval: time.Minute, Now: clock}, testPolicies())
	// A flood of spoofed origins: 10 denials of one (policy, reason).
	for i := range 10 {
		h.preflight(t, "api.example.com", fmt.Sprintf("https://spoof-%d.example", i), "PUT")
	}
	// Another reason of the same policy has its own budget.
	h.preflight(t, "api.example.com", "https://app.example.com", "DELETE")
	lines := 0
	for _, l := range h.logs.all() {
		if l["policy"] == "shop/orders" && l["reason"] == "origin_not_allowed" {
			lines++
		}
	}
	if lines != 3 {
		t.Errorf("%d origin_not_allowed lines, want the burst of 3", lines)
	}
	sup := h.scrape(t, "corsgate_decision_logs_suppressed_total")
	if sup["name=orders,namespace=shop,reason=origin_not_allowed"] != 7 || len(sup) != 1 {
		t.Errorf("suppressed = %v, want 7 for shop/orders origin_not_allowed only", sup)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	h.preflight(t, "api.example.com", "https://evil.example", "PUT")
	lines = 0
	for _, l := range h.logs.all() {
		if l["reason"] == "origin_not_allowed" {
			lines++
		}
	}
	if lines != 4 {
		t.Errorf("after one interval: %d lines, want one more (4)", lines)
	}
	// The flood is in the inventory: 10 spoofed origins, app (method not
	// allowed) and evil.
	denied := h.origins(t, "?namespace=shop&name=orders").Policies[0].Denied
	if denied.Requests != 12 || len(denied.Origins) != 12 {
		t.Errorf("denied = %d requests, %d origins; want 12 and 12", denied.Requests, len(denied.Origins))
	}
}

func TestDeletedPolicyLosesItsSeries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, observe.Options{Log: observe.LogNone}, testPolicies())
	h.preflight(t, "api.example.com", "https://evil.example", "PUT")
	h.preflight(t, "trial.example.com", "https://evil.example", "PUT")
	// shop/orders changes (new generation: a new compiled policy) and
	// lab/trial is deleted.
	changed := testPolicies()[:1]
	changed[0].Generation = 2
	changed[0].Spec.AllowOrigins = []string{"https://evil.example"}
	h.swap(t, changed)
	if got := h.preflight(t, "api.example.com", "https://evil.example", "PUT"); got != 204 {
		t.Fatalf("after the change: %d, want 204", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := h.scrape(t, "corsgate_decisions_total")
		var lab []string
		for k := range got {
			if strings.Contains(k, "namespace=lab") {
				lab = append(lab, k)
			}
		}
		rejected := got["kind=preflight,mode=Enforce,name=orders,namespace=shop,outcome=preflight-rejected,reason=origin_not_allowed"]
		if len(lab) == 0 {
			if rejected != 1 {
				t.Errorf("shop/orders' series was reset by its spec change: rejected = %v, want 1", rejected)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab/trial's series remain after its deletion: %v", lab)
		}
		// The cleanup runs after the first decision that sees the new table.
		h.preflight(t, "api.example.com", "https://evil.example", "PUT")
		time.Sleep(10 * time.Millisecond)
	}
	r := h.origins(t, "")
	if len(r.Policies) != 1 || r.Policies[0].Name != "orders" || len(r.Policies[0].Denied.Origins) != 0 {
		t.Errorf("origins after the change = %+v; want shop/orders only, with a fresh inventory", r.Policies)
	}
}

func TestObserveAllocatesNothing(t *testing.T) {
	h := newHarness(t, observe.Options{}, testPolicies())
	tbl := h.store.Load()
	e := tbl.Lookup("api.example.com", "/")
	allowed := e.Policy.Decide(preflightReq("https://app.example.com"))
	denied := e.Policy.Decide(preflightReq("https://evil.example"))
	info := extproc.RequestInfo{Method: "OPTIONS", Authority: "api.example.com", Path: "/", Origin: "https://app.example.com"}
	h.obs.ObserveDecision(e, allowed, info) // first use resolves the counter
	if a := testing.AllocsPerRun(1000, func() { h.obs.ObserveDecision(e, allowed, info) }); a != 0 {
		t.Errorf("an allowed decision allocates %v times, want 0", a)
	}
	quiet := observe.New(prometheus.NewRegistry(), logr.Discard(), observe.Options{Log: observe.LogNone})
	evil := info
	evil.Origin = "https://evil.example"
	quiet.ObserveDecision(e, denied, evil)
	if a := testing.AllocsPerRun(1000, func() {
		evil.Origin = "https://evil.example"
		quiet.ObserveDecision(e, denied, evil)
		evil.Origin = "https://other.example" // a new origin replaces a slot: still nothing allocated
		quiet.ObserveDecision(e, denied, evil)
	}); a != 0 {
		t.Errorf("a denial with logging off allocates %v times, want 0", a)
	}
	if n := testutil.CollectAndCount(h.reg, "corsgate_decisions_total"); n != 1 {
		t.Errorf("%d decision series, want 1 (only what was used)", n)
	}
}

func TestOriginsStayBoundedUnderAFlood(t *testing.T) {
	t.Parallel()
	h := newHarness(t, observe.Options{Log: observe.LogNone}, testPolicies())
	tbl := h.store.Load()
	e := tbl.Lookup("api.example.com", "/")
	denied := e.Policy.Decide(preflightReq("https://evil.example"))
	info := extproc.RequestInfo{Method: "OPTIONS", Authority: "api.example.com", Path: "/"}
	// 10,000 distinct spoofed origins, and a real caller sending one
	// request in eleven: more than 1/OriginsCapacity of them.
	for i := range 10_000 {
		info.Origin = fmt.Sprintf("https://spoof-%d.example", i)
		h.obs.ObserveDecision(e, denied, info)
		if i%10 == 0 {
			info.Origin = "https://partner.example"
			h.obs.ObserveDecision(e, denied, info)
		}
	}
	info.Origin = "https://" + strings.Repeat("x", 300) + ".example"
	h.obs.ObserveDecision(e, denied, info)
	d := h.origins(t, "?namespace=shop&name=orders").Policies[0].Denied
	if d.Requests != 11_001 || len(d.Origins) != observe.OriginsCapacity {
		t.Fatalf("denied = %d requests in %d origins, want 11001 in %d", d.Requests, len(d.Origins), observe.OriginsCapacity)
	}
	// Space-saving: the caller is kept, its count at least the true 1000,
	// and Count - Error at most that.
	if top := d.Origins[0]; top.Origin != "https://partner.example" || top.Count < 1000 || top.Count-top.Error > 1000 {
		t.Errorf("top origin = %+v; the flood must not push out the real caller", top)
	}
	truncated := false
	for _, o := range d.Origins {
		if len(o.Origin) > observe.MaxOriginBytes {
			t.Errorf("stored origin of %d bytes, want at most %d", len(o.Origin), observe.MaxOriginBytes)
		}
		truncated = truncated || o.Truncated
	}
	if !truncated {
		t.Errorf("the 300-byte origin is not marked truncated: %+v", d.Origins)
	}
}
