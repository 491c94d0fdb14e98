// Package controllers turns CorsPolicy objects into the served policy table
// (TableBuilder, on every replica) and into status (StatusWriter, on the
// elected leader). Both go through internal/compile, the one compile path.
package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/table"
)

// +kubebuilder:rbac:groups=policy.corsgate.io,resources=corspolicies,verbs=get;list;watch

// TableBuilder rebuilds the policy table from the manager's cache whenever a
// CorsPolicy changes, and swaps it into Store. Changes are coalesced: a burst
// of events while a build runs causes one more build, not one per event. A
// full rebuild is cheap because unchanged objects reuse their compile
// (compile.Builder), so there is no incremental path to get wrong.
//
// It is a manager Runnable that runs on every replica (NeedLeaderElection is
// false): every replica serves the same table.
type TableBuilder struct {
	Cache   cache.Cache
	Store   *table.Store
	Results *Results
	Log     logr.Logger
	// Changed receives the results that changed in each build, for the status
	// writer. Sends never block: if the writer lags, it catches up from
	// Results on its own reconciles.
	Changed chan<- event.TypedGenericEvent[*v1alpha1.CorsPolicy]
	// OnServe, if set, is called after each table the builder swaps in, once
	// Results hold its results, with how long the build took (from listing
	// the cache to the swap): the one "a table was swapped in" hook, as the
	// file source's (filesource.Source.OnServe). Metrics and the observer's
	// retention hang on it.
	OnServe func(t *table.Table, took time.Duration)
	// Ownership, if set, enforces CorsHostGrants (--host-ownership=Enforce):
	// a policy is served only where a grant to its namespace covers it.
	// Nil serves every valid policy (Open).
	Ownership *HostOwnership
	// GatewayClasses are the GatewayClasses whose Gateways targetRefs
	// attach through (--gateway-classes); nil: every class.
	GatewayClasses compile.GatewayClasses

	// pipeline builds, swaps and reports: the step the file source shares
	// (compile.Pipeline).
	pipeline *compile.Pipeline
	builder  *compile.Builder // pipeline.Builder, whose hooks the build sets
	kick     chan struct{}
	gateway  *gatewayAPI // targetRefs (gateway.go)
}

// NeedLeaderElection is false: every replica builds and serves.
func (b *TableBuilder) NeedLeaderElection() bool { return false }

// Start builds the first table once the cache has synced, then rebuilds on
// every change until ctx ends.
func (b *TableBuilder) Start(ctx context.Context) error {
	b.pipeline = compile.NewPipeline(b.Store)
	b.builder = b.pipeline.Builder
	b.kick = make(chan struct{}, 1)
	inf, err := b.informer(ctx, &v1alpha1.CorsPolicy{})
	if err != nil {
		return fmt.Errorf("watching CorsPolicy objects: %w", err)
	}
	kick := func(any) { b.trigger() }
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: kick, DeleteFunc: kick,
		UpdateFunc: func(_, _ any) { b.trigger() },
	}); err != nil {
		return err
	}
	if b.Ownership != nil {
		if err := b.Ownership.watch(ctx, b.Cache, b.trigger); err != nil {
			return err
		}
	}
	b.watchGatewayAPI(ctx)
	if !b.Cache.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	b.trigger()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.kick:
			if err := b.build(ctx); err != nil {
				// Listing from the cache fails only while it is stopping;
				// keep the last table and try again on the next change.
				b.Log.Error(err, "building the policy table; the last table keeps serving")
			}
		}
	}
}

// informer gets the cache's informer for obj, waiting for the API server:
// at start-up it may be unreachable (connection refused, discovery failing)
// or, just started, not serve the CRD's group yet; exiting would trade a
// replica that says NOT_SERVING until it can list for one that
// crash-loops. Only a kind the scheme does not know (a bug) is an error.
func (b *TableBuilder) informer(ctx context.Context, obj client.Object) (cache.Informer, error) {
	wait := 250 * time.Millisecond
	for {
		inf, err := b.Cache.GetInformer(ctx, obj)
		if err == nil || runtime.IsNotRegisteredError(err) || ctx.Err() != nil {
			return inf, err
		}
		if meta.IsNoMatchError(err) {
			b.Log.Error(err, "the API server does not serve CorsPolicy: install the CRDs (charts/corsgate/crds); NOT_SERVING until it does, retrying", "in", wait.String())
		} else {
			b.Log.Error(err, "cannot reach the API server: no policy table (NOT_SERVING) until the first list; retrying", "in", wait.String())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 4*time.Second)
	}
}

// trigger asks for a build; a pending request absorbs the rest of a burst.
func (b *TableBuilder) trigger() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

func (b *TableBuilder) build(ctx context.Context) error {
	start := time.Now()
	var list v1alpha1.CorsPolicyList
	// The build only reads the objects, and keeps nothing of them but
	// immutable strings: skip the cache's deep copy of every object, which
	// dominated a rebuild at 10,000 policies.
	if err := b.Cache.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	if b.Ownership != nil {
		own, err := b.Ownership.prepare(ctx, b.Cache)
		if err != nil {
			return err
		}
		b.builder.Admit, b.builder.Grant = own.Admit, own.Grant
	}
	b.gateway.startBuild()
	t, results, err := b.pipeline.Publish(list.Items, func(*table.Table, []compile.Result) error {
		return b.gateway.buildErr() // a failed read of a Gateway or HTTPRoute: keep the last table
	})
	if err != nil {
		return err
	}
	if b.Ownership != nil {
		b.Ownership.published()
	}
	took := time.Since(start)
	changed := b.Results.replace(results)
	b.Log.V(1).Info("policy table built", "policies", len(list.Items), "served", t.Len(), "changed", len(changed), "took", took)
	if b.OnServe != nil {
		b.OnServe(t, took)
	}
	if b.Changed != nil {
		for _, r := range changed {
			obj := &v1alpha1.CorsPolicy{}
			obj.Namespace, obj.Name = r.Namespace, r.Name
			select {
			case b.Changed <- event.TypedGenericEvent[*v1alpha1.CorsPolicy]{Object: obj}:
			default:
			}
		}
	}
	return nil
}

// keyOf is the Results key of an object.
func keyOf(nn types.NamespacedName) string { return nn.Namespace + "/" + nn.Name }
