package observe_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/corsgate/corsgate/internal/observe"
	"github.com/corsgate/corsgate/internal/table"
)

// TestServedTable: no table is 0 and 0; then what the store serves now.
func TestServedTable(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	store := &table.Store{}
	observe.RegisterServedTable(reg, store)
	want := func(served, policies string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP corsgate_table_policies Policies in the table this replica serves (0 before the first table).
# TYPE corsgate_table_policies gauge
corsgate_table_policies `+policies+`
# HELP corsgate_table_served 1 once this replica serves a policy table (it is then ready), 0 before.
# TYPE corsgate_table_served gauge
corsgate_table_served `+served+`
`)); err != nil {
			t.Error(err)
		}
	}
	want("0", "0")
	tbl, _ := table.New([]table.Entry{
		{Namespace: "a", Name: "one", Hosts: []string{"one.example.com"}},
		{Namespace: "a", Name: "two", Hosts: []string{"two.example.com"}},
	})
	store.Swap(tbl)
	want("1", "2")
	empty, _ := table.New(nil)
	store.Swap(empty)
	want("1", "0")
}
