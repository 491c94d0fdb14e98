package filesource_test

import (
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/table"
)

// TestMetricsFollowStatus: the gauges read the source's Status at each
// scrape; a refused reload keeps counting what is served and sets degraded.
func TestMetricsFollowStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "policies.yaml", twoPolicies)
	src := filesource.New(dir, &table.Store{}, logr.Discard())
	reg := prometheus.NewPedanticRegistry()
	filesource.RegisterMetrics(reg, src)
	want := func(when string, files, policies, degraded float64) {
		t.Helper()
		got := gauges(t, reg)
		for name, v := range map[string]float64{
			"corsgate_policy_source_files": files, "corsgate_policy_source_policies": policies,
			"corsgate_policy_source_degraded": degraded, "corsgate_policy_source_watching": 0,
		} {
			if got[name] != v {
				t.Errorf("%s: %s = %v, want %v (status %+v)", when, name, got[name], v, src.Status())
			}
		}
		if len(got) != 5 {
			t.Errorf("%s: %d gauges, want 5: %v", when, len(got), got)
		}
	}
	want("before Load", 0, 0, 0)
	before := time.Now()
	if err := src.Load(); err != nil {
		t.Fatal(err)
	}
	want("loaded", 1, 2, 0)
	if last := gauges(t, reg)["corsgate_policy_source_last_reload_timestamp_seconds"]; last < float64(before.Unix()) || last > float64(time.Now().Unix()+1) {
		t.Errorf("last reload at %v, want between %v and now", last, before.Unix())
	}
	write(t, dir, "policies.yaml", "kind: CorsPolicy\n  not: [yaml")
	if err := src.Load(); err == nil {
		t.Fatal("Load of an unparsable file: no error")
	}
	want("refused", 1, 2, 1)
}

// gauges are the values of the gauges reg gathers, by name.
func gauges(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	return got
}
