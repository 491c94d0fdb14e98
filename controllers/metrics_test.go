package controllers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
)

// listCache is a cache that lists policies, as the builder's does: no API
// server.
type listCache struct {
	cache.Cache
	items []v1alpha1.CorsPolicy
}

func (c *listCache) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	list.(*v1alpha1.CorsPolicyList).Items = slices.Clone(c.items)
	return nil
}

func listedPolicy(name, uid string, generation int64) v1alpha1.CorsPolicy {
	return v1alpha1.CorsPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID(uid), Generation: generation}}
}

// TestTableMetrics: each build counts, and the per-policy gauges and the
// fingerprint say what the build's results and the cache held.
func TestTableMetrics(t *testing.T) {
	t.Parallel()
	c := &listCache{items: []v1alpha1.CorsPolicy{
		listedPolicy("ok", "u1", 1), listedPolicy("broken", "u2", 3), listedPolicy("lost", "u3", 1),
		listedPolicy("new", "u4", 1), // created after the build listed: no result
	}}
	results := &Results{}
	results.replace([]compile.Result{
		{Namespace: "shop", Name: "ok", Generation: 1, Serving: compile.Served},
		{Namespace: "shop", Name: "broken", Generation: 3, Serving: compile.ServedLastValid, Err: errors.New("invalid")},
		{Namespace: "shop", Name: "lost", Generation: 1, Serving: compile.NotServed, Conflicts: []string{"shop/ok won api.example.com"}},
	})
	reg := prometheus.NewPedanticRegistry()
	m := NewTableMetrics(reg, c, results)
	if n := testutil.CollectAndCount(reg, "corsgate_policy_accepted"); n != 0 {
		t.Errorf("%d policy series before the first build, want none", n)
	}

	m.Served(nil, 3*time.Millisecond)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP corsgate_policy_accepted 1 when the CorsPolicy's current spec is valid (its Accepted condition), else 0.
# TYPE corsgate_policy_accepted gauge
corsgate_policy_accepted{name="broken",namespace="shop"} 0
corsgate_policy_accepted{name="lost",namespace="shop"} 1
corsgate_policy_accepted{name="ok",namespace="shop"} 1
# HELP corsgate_policy_conflicted 1 when another policy won some or all of this CorsPolicy's hosts and path prefixes, else 0.
# TYPE corsgate_policy_conflicted gauge
corsgate_policy_conflicted{name="broken",namespace="shop"} 0
corsgate_policy_conflicted{name="lost",namespace="shop"} 1
corsgate_policy_conflicted{name="ok",namespace="shop"} 0
# HELP corsgate_policy_ready 1 when the edge serves the CorsPolicy (its current or last valid spec; Ready condition), else 0.
# TYPE corsgate_policy_ready gauge
corsgate_policy_ready{name="broken",namespace="shop"} 1
corsgate_policy_ready{name="lost",namespace="shop"} 0
corsgate_policy_ready{name="ok",namespace="shop"} 1
# HELP corsgate_table_builds_total Policy tables built and swapped in by this replica.
# TYPE corsgate_table_builds_total counter
corsgate_table_builds_total 1
`), "corsgate_policy_accepted", "corsgate_policy_conflicted", "corsgate_policy_ready", "corsgate_table_builds_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "corsgate_table_build_duration_seconds"); n != 1 {
		t.Errorf("%d duration series, want 1", n)
	}
	if last := testutil.ToFloat64(m.last); last < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last build at %v, want now", last)
	}

	// The fingerprint is of what was built from, in no order.
	first := testutil.ToFloat64(m.fingerprint)
	if first == 0 || first >= 1<<53 {
		t.Errorf("fingerprint %v, want 53 bits, not all zero", first)
	}
	slices.Reverse(c.items)
	m.Served(nil, time.Millisecond)
	if got := testutil.ToFloat64(m.fingerprint); got != first {
		t.Errorf("the same objects listed in another order: fingerprint %v, want %v", got, first)
	}
	if n := testutil.ToFloat64(m.builds); n != 2 {
		t.Errorf("%v builds counted, want 2", n)
	}
	results.replace([]compile.Result{
		{Namespace: "shop", Name: "ok", Generation: 2, Serving: compile.Served},
		{Namespace: "shop", Name: "broken", Generation: 3, Serving: compile.ServedLastValid, Err: errors.New("invalid")},
		{Namespace: "shop", Name: "lost", Generation: 1, Serving: compile.NotServed, Conflicts: []string{"shop/ok won api.example.com"}},
	})
	m.Served(nil, time.Millisecond)
	if got := testutil.ToFloat64(m.fingerprint); got == first {
		t.Error("a new generation built: the fingerprint did not change")
	}
}
