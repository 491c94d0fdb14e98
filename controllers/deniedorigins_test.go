package controllers

import (
	"context"
	"slices"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/observe"
	"github.com/corsgate/corsgate/test/envtesting"
	"github.com/corsgate/corsgate/test/gen"
)

// TestDeniedOriginsOnStatus writes the observed-origins summary to a real
// API server (envtest): only origins seen often enough, only when the set
// changes, never for a spec the status does not describe yet.
func TestDeniedOriginsOnStatus(t *testing.T) {
	t.Parallel()
	// A control plane of its own: the suite's runs a status writer that
	// would fill in the field this test needs empty.
	cluster := envtesting.New(t, envtesting.Options{})
	c := cluster.Client
	ctx := context.Background()
	policies := []*v1alpha1.CorsPolicy{
		gen.CorsPolicy("orders", gen.WithHosts("api.example.com"), gen.WithOrigins("https://app.example.com")),
		gen.CorsPolicy("fresh", gen.WithHosts("fresh.example.com"), gen.WithOrigins("https://app.example.com")),
	}
	for _, p := range policies {
		p.UID = "" // the API server assigns it
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// The status writer has described orders' spec, not fresh's.
	orders := policies[0].DeepCopy()
	orders.Status.ObservedGeneration = orders.Generation
	if err := c.Status().Update(ctx, orders); err != nil {
		t.Fatal(err)
	}

	var objs []v1alpha1.CorsPolicy
	for _, p := range policies {
		objs = append(objs, *p)
	}
	tbl, _ := compile.NewBuilder().Build(objs)
	obs := observe.New(prometheus.NewRegistry(), logr.Discard(), observe.Options{Log: observe.LogNone})
	deny := func(host, origin string, n int) {
		e := tbl.Lookup(host, "/")
		d := e.Policy.Decide(&cors.Request{Method: "GET", Origin: origin, HasOrigin: true})
		for range n {
			obs.ObserveDecision(e, d, extproc.RequestInfo{Method: "GET", Authority: host, Path: "/", Origin: origin})
		}
	}
	deny("api.example.com", "https://partner.example", 9)
	deny("api.example.com", "https://once.example", 1) // below MinStatusCount
	deny("fresh.example.com", "https://partner.example", 9)

	w := &DeniedOriginsWriter{Client: c, Inventory: obs, Log: logr.Discard()}
	if n, err := w.sync(ctx); err != nil || n != 1 {
		t.Fatalf("first sync wrote %d (%v), want 1 (orders only)", n, err)
	}
	get := func(name string) v1alpha1.CorsPolicy {
		var p v1alpha1.CorsPolicy
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := get("orders").Status.DeniedOrigins; !slices.Equal(got, []string{"https://partner.example"}) {
		t.Errorf("orders status.deniedOrigins = %v, want [https://partner.example]", got)
	}
	if got := get("fresh").Status.DeniedOrigins; got != nil {
		t.Errorf("fresh status.deniedOrigins = %v; its status does not describe the spec yet", got)
	}
	if got := get("orders").Status.ObservedGeneration; got != orders.Generation {
		t.Errorf("the patch changed observedGeneration to %d", got)
	}
	if n, err := w.sync(ctx); err != nil || n != 0 {
		t.Errorf("an unchanged summary wrote %d (%v), want no write", n, err)
	}
	deny("api.example.com", "https://another.example", 6)
	if n, err := w.sync(ctx); err != nil || n != 1 {
		t.Errorf("a changed summary wrote %d (%v), want 1", n, err)
	}
	if got := get("orders").Status.DeniedOrigins; !slices.Equal(got, []string{"https://another.example", "https://partner.example"}) {
		t.Errorf("orders status.deniedOrigins = %v, want both, sorted", got)
	}
}
