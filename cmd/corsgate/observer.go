package main

import (
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

// observer counts decisions by kind, outcome reason and mode, and logs
// denials at V(1). The counters are resolved once, so observing allocates
// nothing.
type observer struct {
	log      logr.Logger
	counters [3][cors.NumReasons][2]prometheus.Counter
}

func newObserver(reg prometheus.Registerer, log logr.Logger) *observer {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "corsgate_decisions_total",
		Help: "CORS decisions by request kind (preflight, actual, not-cors), reason (allowed, origin not allowed, ...) and mode (Enforce, DryRun: what Enforce would have done).",
	}, []string{"kind", "reason", "mode"})
	reg.MustRegister(vec)
	o := &observer{log: log}
	for k := range o.counters {
		for r := range o.counters[k] {
			for m, mode := range []string{"Enforce", "DryRun"} {
				o.counters[k][r][m] = vec.WithLabelValues(cors.Kind(k).String(), cors.Reason(r).Label(), mode)
			}
		}
	}
	return o
}

func (o *observer) Observe(e *table.Entry, d cors.Decision) {
	m := 0
	if d.DryRun {
		m = 1
	}
	if int(d.Kind) < len(o.counters) && int(d.Reason) < len(o.counters[0]) {
		o.counters[d.Kind][d.Reason][m].Inc()
	}
	if !d.Allowed && d.Kind != cors.KindNotCORS {
		if v := o.log.V(1); v.Enabled() {
			v.Info("denied", "policy", e.Key(), "kind", d.Kind.String(), "reason", d.Reason.Label(), "detail", d.Detail, "dryRun", d.DryRun)
		}
	}
}
