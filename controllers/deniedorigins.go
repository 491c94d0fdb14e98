package controllers

import (
	"context"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
)

// Bounds on the status writes of the observed-origins summary. At 10,000
// policies the worst case (every policy's top denied origins change every
// time) is 5 patches a second, 3,000 per cycle: a cycle that cannot finish
// in its interval goes on into the next, so the rate never rises. Typical
// load is a handful of writes per cycle, since a write happens only when a
// policy's set of top origins changes.
const (
	DeniedOriginsInterval = 10 * time.Minute
	DeniedOriginsPerWrite = 200 * time.Millisecond // 5 writes/s
	deniedOriginsTop      = 5
)

// OriginInventory is the observed-origins inventory as DeniedOriginsWriter
// reads it: the binary's *observe.Observer, whose TopDenied returns up to n
// origins each policy denied most, by "namespace/name", sorted.
type OriginInventory interface {
	TopDenied(n int) map[string][]string
}

// DeniedOriginsWriter summarises the observed-origins inventory on each
// CorsPolicy's status.deniedOrigins. It runs on the leader only, so the
// summary is the leader's own traffic: with Envoy balancing over the
// replicas, that is a fair sample of who calls.
type DeniedOriginsWriter struct {
	Client client.Client
	// Inventory is what is summarised: this replica's decisions.
	Inventory OriginInventory
	// Interval is the time between two syncs; Pause, between two writes
	// of one sync, so that a sync that writes many policies does not burst
	// at the API server. An Interval of zero or less is
	// DeniedOriginsInterval; a zero Pause is DeniedOriginsPerWrite, a
	// negative one writes without pausing.
	Interval, Pause time.Duration
	Log             logr.Logger
}

// NeedLeaderElection is true: one replica writes status.
func (w *DeniedOriginsWriter) NeedLeaderElection() bool { return true }

// Start syncs every interval until ctx ends.
func (w *DeniedOriginsWriter) Start(ctx context.Context) error {
	interval := w.Interval
	if interval <= 0 {
		interval = DeniedOriginsInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if n, err := w.sync(ctx); err != nil {
				w.Log.Error(err, "writing status.deniedOrigins; retrying next cycle", "written", n)
			} else if n > 0 {
				w.Log.V(1).Info("status.deniedOrigins written", "policies", n)
			}
		}
	}
}

// sync patches the policies whose top denied origins changed and returns
// how many it wrote.
func (w *DeniedOriginsWriter) sync(ctx context.Context) (int, error) {
	pause := w.Pause
	if pause == 0 {
		pause = DeniedOriginsPerWrite
	}
	top := w.Inventory.TopDenied(deniedOriginsTop)
	var list v1alpha1.CorsPolicyList
	if err := w.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return 0, err
	}
	written := 0
	for i := range list.Items {
		obj := &list.Items[i]
		if obj.Status.ObservedGeneration != obj.Generation {
			continue // the status writer has not described this spec yet
		}
		want := top[obj.Key()]
		if slices.Equal(obj.Status.DeniedOrigins, want) {
			continue
		}
		if written > 0 && pause > 0 {
			select {
			case <-ctx.Done():
				return written, nil
			case <-time.After(pause):
			}
		}
		base := obj.DeepCopy() // the cache's object is shared: never modify it
		next := base.DeepCopy()
		next.Status.DeniedOrigins = want
		// A merge patch of this one field: it never races the status
		// writer's conditions.
		if err := w.Client.Status().Patch(ctx, next, client.MergeFrom(base)); client.IgnoreNotFound(err) != nil {
			return written, err
		}
		written++
	}
	return written, nil
}
