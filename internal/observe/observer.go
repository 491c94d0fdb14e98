// Package observe records every CORS decision corsgate makes: Prometheus
// counters by policy, kind, outcome, reason and mode; ext_proc latency
// histograms; rate-limited decision logs; and a bounded inventory of the
// origins each policy saw (Origins). An *Observer is the extproc.Observer of
// the binary.
//
// Everything on the decision path is resolved once and then reused, so that
// observing a decision allocates nothing: per compiled policy (the
// *cors.Policy a table entry points to, which an unchanged object keeps
// across rebuilds) the Observer holds a small state block with the counters
// that policy has used, its log rate limiters and its origin summaries.
// Blocks are made on a policy's first decision and dropped when a table
// without that policy is served. Origins never become label values.
package observe

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

// LogMode says which decisions are logged.
type LogMode uint8

const (
	// LogDenials logs denials (and, for DryRun policies, what Enforce would
	// deny) at info level: the default.
	LogDenials LogMode = iota
	// LogAll logs every decision of a CORS request (requests without Origin
	// are never logged).
	LogAll
	// LogNone logs no decision.
	LogNone
)

// ParseLogMode reads the --decision-log flag.
func ParseLogMode(s string) (LogMode, bool) {
	switch s {
	case "denials":
		return LogDenials, true
	case "all":
		return LogAll, true
	case "none":
		return LogNone, true
	}
	return 0, false
}

func (m LogMode) String() string {
	switch m {
	case LogAll:
		return "all"
	case LogNone:
		return "none"
	default:
		return "denials"
	}
}

// Options configure an Observer. The zero value logs denials, at most
// DefaultLogBurst lines per policy and reason at once and one more every
// DefaultLogInterval.
type Options struct {
	Log LogMode
	// LogBurst and LogInterval are the rate limit per (policy, reason): a
	// burst of LogBurst lines, then one per LogInterval. A flood of spoofed
	// origins then costs a few lines a minute, and the rest is counted in
	// corsgate_decision_logs_suppressed_total.
	LogBurst    int
	LogInterval time.Duration
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultLogBurst    = 10
	DefaultLogInterval = time.Second
)

// Truncation of request input in log lines: a valid origin is at most 326
// bytes (internal/cors), a host 253.
const (
	maxLogOrigin = 330
	maxLogHost   = 256
	maxLogPath   = 256
	maxLogMethod = 32
	maxLogDetail = 256
)

// Observer implements extproc.Observer. It is safe for concurrent use.
type Observer struct {
	decisions  *prometheus.CounterVec
	suppressed *prometheus.CounterVec
	phases     [3]prometheus.Observer
	streams    prometheus.Observer

	log         logr.Logger
	logMode     LogMode
	logBurst    int64
	logInterval int64 // ns
	now         func() time.Time

	// policies maps *cors.Policy to *policyState. Retain, called by the
	// source's OnServe hook after each swap, drops the policies no longer
	// served.
	policies sync.Map
}

var _ extproc.Observer = (*Observer)(nil)

// latencyBuckets are classic buckets for the per-message latency: corsgate
// answers in microseconds; anything above a millisecond is a problem.
var latencyBuckets = []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2}

// streamBuckets are classic buckets for a stream's life, which includes the
// upstream's answer.
var streamBuckets = []float64{5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// nativeFactor gives native (sparse) histograms with at most 10% bucket
// growth, served beside the classic buckets to a Prometheus that scrapes
// them (protobuf exposition, native histograms enabled).
const nativeFactor = 1.1

// New registers the decision and latency metrics with reg and returns an
// Observer that logs to log.
func New(reg prometheus.Registerer, log logr.Logger, opts Options) *Observer {
	o := &Observer{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corsgate_decisions_total",
			Help: "CORS decisions by policy (namespace, name), request kind (preflight, actual, not-cors), outcome (what the edge did: preflight-allowed, preflight-rejected, actual-allowed, actual-denied, refused, not-cors, forwarded), reason (allowed, origin_not_allowed, ...: one of the engine's reasons, listed in docs/operating.md; for DryRun what Enforce would have done) and mode (Enforce, DryRun). A series exists once a policy has used it.",
		}, []string{"namespace", "name", "kind", "outcome", "reason", "mode"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corsgate_decision_logs_suppressed_total",
			Help: "Decision log lines not written because the policy and reason exceeded the log rate limit.",
		}, []string{"namespace", "name", "reason"}),
		log:         log,
		logMode:     opts.Log,
		logBurst:    int64(opts.LogBurst),
		logInterval: int64(opts.LogInterval),
		now:         opts.Now,
	}
	if o.logBurst <= 0 {
		o.logBurst = DefaultLogBurst
	}
	if o.logInterval <= 0 {
		o.logInterval = int64(DefaultLogInterval)
	}
	if o.now == nil {
		o.now = time.Now
	}
	phases := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                            "corsgate_extproc_message_duration_seconds",
		Help:                            "Time corsgate took to answer one ext_proc message, by phase (request_headers, response_headers, other): the latency it adds to that phase of an HTTP request.",
		Buckets:                         latencyBuckets,
		NativeHistogramBucketFactor:     nativeFactor,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}, []string{"phase"})
	for p := range o.phases {
		o.phases[p] = phases.WithLabelValues(extproc.Phase(p).String())
	}
	streams := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                            "corsgate_extproc_stream_duration_seconds",
		Help:                            "How long ext_proc streams (one per HTTP request) lived, from the server's first read to its last: the upstream's time included.",
		Buckets:                         streamBuckets,
		NativeHistogramBucketFactor:     nativeFactor,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	})
	o.streams = streams
	reg.MustRegister(o.decisions, o.suppressed, phases, streams)
	return o
}

// ObserveDecision implements extproc.Observer: it counts the decision,
// records the origin in the inventory and logs the decision as the log mode
// says.
func (o *Observer) ObserveDecision(e *table.Entry, d cors.Decision, r extproc.RequestInfo) {
	ps := o.state(e, &d)
	ps.counter(o, &d).Inc()
	if d.Kind == cors.KindNotCORS {
		return
	}
	if d.Allowed {
		ps.origins[0].record(r.Origin)
	} else {
		ps.origins[1].record(r.Origin)
	}
	switch o.logMode {
	case LogNone:
		return
	case LogDenials:
		if d.Allowed {
			return
		}
	}
	o.logDecision(ps, &d, &r)
}

// ObservePhase implements extproc.Observer.
func (o *Observer) ObservePhase(p extproc.Phase, took time.Duration) {
	if int(p) < len(o.phases) {
		o.phases[p].Observe(took.Seconds())
	}
}

// ObserveStream implements extproc.Observer.
func (o *Observer) ObserveStream(took time.Duration) { o.streams.Observe(took.Seconds()) }

// policyState is what the Observer keeps per compiled policy.
type policyState struct {
	namespace, name string
	dryRun          bool
	since           time.Time

	// counters is a small lock-free table from a packed label combination
	// to its counter: a policy uses a dozen combinations at most (its mode
	// is fixed), so a linear scan of a few words beats a map. Writers hold
	// mu and publish c before key.
	counters [maxCombos]combo
	mu       sync.Mutex

	// tat is the log rate limiter per reason (GCRA: the theoretical arrival
	// time of the next line, in ns).
	tat [cors.NumReasons]atomic.Int64
	// suppressed are the per-reason suppression counters, made on first use.
	suppressed [cors.NumReasons]atomic.Pointer[counterRef]

	// origins[0] are the origins allowed, origins[1] those denied (for
	// DryRun: that Enforce would deny).
	origins [2]originSummary
}

// maxCombos bounds the label combinations cached per policy. A policy has
// one mode and about 12 reachable (kind, outcome, reason) triples; beyond
// maxCombos, counters are looked up in the vector (allocating) rather than
// cached.
const maxCombos = 24

type combo struct {
	key atomic.Uint32
	c   atomic.Pointer[counterRef]
}

type counterRef struct{ c prometheus.Counter }

// state returns e's policy state, making it on the policy's first decision.
func (o *Observer) state(e *table.Entry, d *cors.Decision) *policyState {
	if v, ok := o.policies.Load(e.Policy); ok {
		return v.(*policyState)
	}
	ps := &policyState{namespace: e.Namespace, name: e.Name, dryRun: d.DryRun, since: o.now()}
	v, _ := o.policies.LoadOrStore(e.Policy, ps)
	return v.(*policyState)
}

// comboKey packs the label combination of a decision; never 0.
func comboKey(d *cors.Decision) uint32 {
	mode := uint32(0)
	if d.DryRun {
		mode = 1
	}
	return 1 + uint32(d.Kind) | uint32(cors.OutcomeOf(d))<<4 | uint32(d.Reason)<<8 | mode<<16
}

func modeLabel(dryRun bool) string {
	if dryRun {
		return "DryRun"
	}
	return "Enforce"
}

// counter returns the decision counter for d, resolving it on first use.
func (ps *policyState) counter(o *Observer, d *cors.Decision) prometheus.Counter {
	key := comboKey(d)
	for i := range ps.counters {
		k := ps.counters[i].key.Load()
		if k == key {
			return ps.counters[i].c.Load().c
		}
		if k == 0 {
			break
		}
	}
	c := o.decisions.WithLabelValues(ps.namespace, ps.name, d.Kind.String(), cors.OutcomeOf(d).String(), d.Reason.Label(), modeLabel(d.DryRun))
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i := range ps.counters {
		switch ps.counters[i].key.Load() {
		case key:
			return c
		case 0:
			ps.counters[i].c.Store(&counterRef{c})
			ps.counters[i].key.Store(key)
			return c
		}
	}
	return c // full: uncached, still counted
}

// allowLog takes a token of the (policy, reason) rate limiter.
func (o *Observer) allowLog(ps *policyState, r cors.Reason) bool {
	if int(r) >= len(ps.tat) {
		return true
	}
	now := o.now().UnixNano()
	tolerance := (o.logBurst - 1) * o.logInterval
	for {
		old := ps.tat[r].Load()
		tat := max(old, now)
		if tat-now > tolerance {
			return false
		}
		if ps.tat[r].CompareAndSwap(old, tat+o.logInterval) {
			return true
		}
	}
}

func (o *Observer) logDecision(ps *policyState, d *cors.Decision, r *extproc.RequestInfo) {
	if !o.log.Enabled() {
		return
	}
	if !o.allowLog(ps, d.Reason) {
		o.suppressedCounter(ps, d.Reason).Inc()
		return
	}
	msg := "CORS request denied"
	if d.Allowed {
		msg = "CORS request allowed"
	} else if d.DryRun {
		msg = "CORS request would be denied (DryRun)"
	}
	kv := []any{
		"policy", ps.namespace + "/" + ps.name,
		"kind", d.Kind.String(),
		"outcome", cors.OutcomeOf(d).String(),
		"reason", d.Reason.Label(),
		"mode", modeLabel(d.DryRun),
		"origin", quote(r.Origin, maxLogOrigin),
		"method", quote(r.Method, maxLogMethod),
		"host", quote(r.Authority, maxLogHost),
		"path", quote(table.PathOnly(r.Path), maxLogPath),
	}
	if d.Detail != "" {
		kv = append(kv, "detail", quote(d.Detail, maxLogDetail))
	}
	o.log.Info(msg, kv...)
}

func (o *Observer) suppressedCounter(ps *policyState, r cors.Reason) prometheus.Counter {
	if int(r) >= len(ps.suppressed) {
		return o.suppressed.WithLabelValues(ps.namespace, ps.name, r.Label())
	}
	if ref := ps.suppressed[r].Load(); ref != nil {
		return ref.c
	}
	c := o.suppressed.WithLabelValues(ps.namespace, ps.name, r.Label())
	ps.suppressed[r].Store(&counterRef{c})
	return c
}

// quote makes request input safe for any log encoder: Go-quoted ASCII (so a
// console log cannot be fed terminal escapes or fake line breaks), cut to n
// bytes first.
func quote(s string, n int) string {
	if len(s) > n {
		return strconv.QuoteToASCII(s[:n]) + "..."
	}
	return strconv.QuoteToASCII(s)
}

// Retain forgets every policy t does not serve, and deletes the series of
// objects t does not serve at all (an object whose spec changed keeps its
// series: its new policy resolves the same label values).
func (o *Observer) Retain(t *table.Table) {
	live := make(map[*cors.Policy]bool, t.Len())
	keys := make(map[[2]string]bool, t.Len())
	for _, e := range t.Entries() {
		live[e.Policy] = true
		keys[[2]string{e.Namespace, e.Name}] = true
	}
	gone := map[[2]string]bool{}
	o.policies.Range(func(k, v any) bool {
		if !live[k.(*cors.Policy)] {
			o.policies.Delete(k)
			ps := v.(*policyState)
			if key := [2]string{ps.namespace, ps.name}; !keys[key] {
				gone[key] = true
			}
		}
		return true
	})
	for key := range gone {
		labels := prometheus.Labels{"namespace": key[0], "name": key[1]}
		o.decisions.DeletePartialMatch(labels)
		o.suppressed.DeletePartialMatch(labels)
	}
}
