package observe

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/corsgate/corsgate/internal/table"
)

// RegisterServedTable exports the table a replica serves, in both modes:
// whether there is one, and how many policies it holds. (Kubernetes mode
// adds its builds and per-policy state, controllers.TableMetrics; file
// mode its reloads, filesource.RegisterMetrics.)
func RegisterServedTable(reg prometheus.Registerer, store *table.Store) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "corsgate_table_policies",
		Help: "Policies in the table this replica serves (0 before the first table).",
	}, func() float64 { return float64(store.Load().Len()) }), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "corsgate_table_served",
		Help: "1 once this replica serves a policy table (it is then ready), 0 before.",
	}, func() float64 {
		if store.Load() == nil {
			return 0
		}
		return 1
	}))
}
