package filesource

import "github.com/prometheus/client_golang/prometheus"

// RegisterMetrics exports src's Status, corsgate_policy_source_*: how
// much it serves, and whether what it serves is what the files hold.
func RegisterMetrics(reg prometheus.Registerer, src *Source) {
	gauge := func(name, help string, value func(Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return value(src.Status()) })
	}
	reg.MustRegister(
		gauge("corsgate_policy_source_files", "Policy files (*.yaml, *.yml, *.json) of the last reload that was served.",
			func(s Status) float64 { return float64(s.Files) }),
		gauge("corsgate_policy_source_policies", "CorsPolicy objects that serve requests, of the last reload that was served (a targetRefs policy in a file serves none).",
			func(s Status) float64 { return float64(s.Policies) }),
		gauge("corsgate_policy_source_degraded", "1 when the policies served may not be what the files hold (a reload refused: files unparsable, the source empty; invalid policies keeping their last valid spec; policies that serve nothing, such as targetRefs in files; the path not watched), 0 otherwise. The log and /readyz say why.",
			func(s Status) float64 {
				if s.Degraded != "" {
					return 1
				}
				return 0
			}),
		gauge("corsgate_policy_source_watching", "1 while changes to --policies are watched; 0 while they cannot be (the path's folder is gone: the log and /readyz say why, and the source retries), when edits are not seen.",
			func(s Status) float64 {
				if s.Watching {
					return 1
				}
				return 0
			}),
		gauge("corsgate_policy_source_last_reload_timestamp_seconds", "When the last reload attempt ended (Unix time).",
			func(s Status) float64 { return float64(s.LastReload.UnixNano()) / 1e9 }),
	)
}
