package main

import (
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

func TestObserverCountsByKindReasonAndMode(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := newObserver(reg, logr.Discard())
	e := &table.Entry{Namespace: "ns", Name: "p"}
	o.Observe(e, cors.Decision{Kind: cors.KindPreflight, Reason: cors.ReasonOriginNotAllowed})
	o.Observe(e, cors.Decision{Kind: cors.KindPreflight, Reason: cors.ReasonOriginNotAllowed})
	o.Observe(e, cors.Decision{Kind: cors.KindActual, Allowed: true, Reason: cors.ReasonAllowed, DryRun: true})

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 1 || families[0].GetName() != "corsgate_decisions_total" {
		t.Fatalf("metrics = %v; want corsgate_decisions_total only", families)
	}
	got := map[string]float64{}
	for _, m := range families[0].GetMetric() {
		labels := ""
		for _, l := range m.GetLabel() {
			labels += l.GetName() + "=" + l.GetValue() + " "
		}
		if v := m.GetCounter().GetValue(); v != 0 {
			got[labels] = v
		}
	}
	want := map[string]float64{
		"kind=preflight mode=Enforce reason=origin_not_allowed ": 2,
		"kind=actual mode=DryRun reason=allowed ":                1,
	}
	if len(got) != len(want) {
		t.Fatalf("non-zero counters = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if n := testutil.CollectAndCount(reg); n != 3*cors.NumReasons*2 {
		t.Errorf("%d series; want every kind × reason × mode pre-created (%d)", n, 3*cors.NumReasons*2)
	}
	if a := testing.AllocsPerRun(100, func() { o.Observe(e, cors.Decision{Kind: cors.KindActual, Reason: cors.ReasonAllowed}) }); a != 0 {
		t.Errorf("Observe allocates %v times, want 0", a)
	}
}
