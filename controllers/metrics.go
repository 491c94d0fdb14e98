package controllers

import (
	"context"
	"hash/fnv"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/table"
)

// TableMetrics are Kubernetes mode's table builds and per-policy state,
// refreshed after every build: call Served from TableBuilder.OnServe. (The
// table served, in either mode, is observe.RegisterServedTable's.)
type TableMetrics struct {
	cache   cache.Cache
	results *Results

	builds      prometheus.Counter
	duration    prometheus.Histogram
	last        prometheus.Gauge
	fingerprint prometheus.Gauge
	states      atomic.Pointer[[]policyState]

	acceptedDesc, readyDesc, conflictedDesc *prometheus.Desc
}

type policyState struct {
	namespace, name             string
	accepted, ready, conflicted bool
}

// NewTableMetrics registers the metrics with reg. c and results are the
// TableBuilder's Cache and Results, read after each build.
func NewTableMetrics(reg prometheus.Registerer, c cache.Cache, results *Results) *TableMetrics {
	m := &TableMetrics{
		cache: c, results: results,
		builds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "corsgate_table_builds_total",
			Help: "Policy tables built and swapped in by this replica.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                        "corsgate_table_build_duration_seconds",
			Help:                        "Time to build a policy table from the cache and swap it in.",
			Buckets:                     []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
			NativeHistogramBucketFactor: 1.1,
		}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "corsgate_table_last_build_timestamp_seconds",
			Help: "When this replica last swapped in a policy table (Unix time).",
		}),
		fingerprint: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "corsgate_table_fingerprint",
			Help: "Identifies what the served table was built from: every object's namespace/name, UID, generation and serving state, hashed (53 bits). Replicas serving the same generations show the same value.",
		}),
		acceptedDesc:   prometheus.NewDesc("corsgate_policy_accepted", "1 when the CorsPolicy's current spec is valid (its Accepted condition), else 0.", []string{"namespace", "name"}, nil),
		readyDesc:      prometheus.NewDesc("corsgate_policy_ready", "1 when the edge serves the CorsPolicy (its current or last valid spec; Ready condition), else 0.", []string{"namespace", "name"}, nil),
		conflictedDesc: prometheus.NewDesc("corsgate_policy_conflicted", "1 when another policy won some or all of this CorsPolicy's hosts and path prefixes, else 0.", []string{"namespace", "name"}, nil),
	}
	reg.MustRegister(m.builds, m.duration, m.last, m.fingerprint, m)
	return m
}

// Served records a build. It runs from TableBuilder.OnServe, right after the
// builder replaced Results, on the builder's goroutine; listing the cache without deep
// copies costs about what the build's own list did.
func (m *TableMetrics) Served(_ *table.Table, took time.Duration) {
	m.builds.Inc()
	m.duration.Observe(took.Seconds())
	m.last.SetToCurrentTime()
	var list v1alpha1.CorsPolicyList
	if err := m.cache.List(context.Background(), &list, client.UnsafeDisableDeepCopy); err != nil {
		return // the cache is stopping
	}
	states := make([]policyState, 0, len(list.Items))
	var sum uint64
	for i := range list.Items {
		obj := &list.Items[i]
		key := obj.Key()
		res, ok := m.results.Get(key)
		if !ok {
			continue // created after the build listed
		}
		states = append(states, policyState{
			namespace: obj.Namespace, name: obj.Name,
			accepted:   res.Err == nil,
			ready:      res.Serving != compile.NotServed,
			conflicted: len(res.Conflicts) > 0,
		})
		h := fnv.New64a()
		h.Write([]byte(key + "\x00" + string(obj.UID) + "\x00" + strconv.FormatInt(res.Generation, 10) + "\x00" + string(res.Serving)))
		sum += h.Sum64() // order-independent: the cache lists in no set order
	}
	m.fingerprint.Set(float64(sum & (1<<53 - 1)))
	m.states.Store(&states)
}

// Describe implements prometheus.Collector.
func (m *TableMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.acceptedDesc
	ch <- m.readyDesc
	ch <- m.conflictedDesc
}

// Collect implements prometheus.Collector: three series per policy.
func (m *TableMetrics) Collect(ch chan<- prometheus.Metric) {
	states := m.states.Load()
	if states == nil {
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, s := range *states {
		ch <- prometheus.MustNewConstMetric(m.acceptedDesc, prometheus.GaugeValue, b(s.accepted), s.namespace, s.name)
		ch <- prometheus.MustNewConstMetric(m.readyDesc, prometheus.GaugeValue, b(s.ready), s.namespace, s.name)
		ch <- prometheus.MustNewConstMetric(m.conflictedDesc, prometheus.GaugeValue, b(s.conflicted), s.namespace, s.name)
	}
}
