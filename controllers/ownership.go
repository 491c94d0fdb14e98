package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
)

// +kubebuilder:rbac:groups=policy.corsgate.io,resources=corshostgrants,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy.corsgate.io,resources=corshostgrants/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// HostOwnership makes a TableBuilder enforce CorsHostGrants: set
// TableBuilder.Ownership to it (--host-ownership=Enforce) and every build
// admits only policies whose claims a grant to their namespace covers. It
// watches grants and the labels of namespaces (for namespaceSelector grants),
// and publishes which policies each grant admits for GrantStatusWriter.
type HostOwnership struct {
	// Changed receives the grants whose admitted list changed in a build.
	// Sends never block.
	Changed chan<- event.TypedGenericEvent[*v1alpha1.CorsHostGrant]

	own *compile.Ownership // used by the table builder's goroutine only

	mu          sync.RWMutex
	admitted    map[string][]string // grant name → admitted policy keys
	generations map[string]int64    // grant name → generation seen by the build
	pending     map[string]int64    // the same, for the build in progress
}

// namespaceMeta is what the builder reads of namespaces: labels only, so the
// cache holds metadata, not whole Namespace objects.
func namespaceMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return m
}

// watch rebuilds on grant changes and on namespace label changes.
func (h *HostOwnership) watch(ctx context.Context, c cache.Cache, trigger func()) error {
	h.own = compile.NewOwnership()
	grants, err := c.GetInformer(ctx, &v1alpha1.CorsHostGrant{})
	if err != nil {
		return fmt.Errorf("watching CorsHostGrant objects: %w", err)
	}
	kick := func(any) { trigger() }
	// Status writes do not change what a grant admits: only a new
	// generation (spec) does.
	if _, err := grants.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: kick, DeleteFunc: kick,
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(client.Object)
			n, ok2 := newObj.(client.Object)
			if !ok1 || !ok2 || o.GetGeneration() != n.GetGeneration() {
				trigger()
			}
		},
	}); err != nil {
		return err
	}
	namespaces, err := c.GetInformer(ctx, namespaceMeta())
	if err != nil {
		return fmt.Errorf("watching Namespaces (for namespaceSelector grants): %w", err)
	}
	_, err = namespaces.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: kick, DeleteFunc: kick,
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(client.Object)
			n, ok2 := newObj.(client.Object)
			if !ok1 || !ok2 || !equality.Semantic.DeepEqual(o.GetLabels(), n.GetLabels()) {
				trigger()
			}
		},
	})
	return err
}

// prepare loads grants and namespace labels for the next build and returns
// the index whose checks the compile.Builder is given (Admit for hosts
// policies, Grant for attachments).
func (h *HostOwnership) prepare(ctx context.Context, c cache.Cache) (*compile.Ownership, error) {
	var grants v1alpha1.CorsHostGrantList
	if err := c.List(ctx, &grants, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var namespaces metav1.PartialObjectMetadataList
	namespaces.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := c.List(ctx, &namespaces, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	nsLabels := make(map[string]map[string]string, len(namespaces.Items))
	for i := range namespaces.Items {
		nsLabels[namespaces.Items[i].Name] = namespaces.Items[i].Labels
	}
	h.own.Reset(grants.Items, nsLabels)
	h.pending = make(map[string]int64, len(grants.Items))
	for i := range grants.Items {
		h.pending[grants.Items[i].Name] = grants.Items[i].Generation
	}
	return h.own, nil
}

// published records what the build just made admitted, and signals the
// grants whose list changed.
func (h *HostOwnership) published() {
	next := h.own.Admitted()
	var changed []string
	h.mu.Lock()
	for name, keys := range next {
		if prev, ok := h.admitted[name]; !ok || !slices.Equal(prev, keys) || h.generations[name] != h.pending[name] {
			changed = append(changed, name)
		}
	}
	h.admitted, h.generations = next, h.pending
	h.mu.Unlock()
	if h.Changed == nil {
		return
	}
	for _, name := range changed {
		g := &v1alpha1.CorsHostGrant{}
		g.Name = name
		select {
		case h.Changed <- event.TypedGenericEvent[*v1alpha1.CorsHostGrant]{Object: g}:
		default:
		}
	}
}

// Admitted returns the policies ("namespace/name", sorted) the latest build
// admitted under a grant, and the grant generation that build saw.
func (h *HostOwnership) Admitted(grant string) (keys []string, generation int64, ok bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	keys, ok = h.admitted[grant]
	return keys, h.generations[grant], ok
}

// GrantStatusWriter writes each CorsHostGrant's status from the latest table
// build: how many policies it admits, and which (the first
// v1alpha1.MaxAdmittedListed). Like StatusWriter it runs on the leader only.
type GrantStatusWriter struct {
	Client    client.Client
	Ownership *HostOwnership
}

// Reconcile implements reconcile.Reconciler.
func (w *GrantStatusWriter) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var g v1alpha1.CorsHostGrant
	if err := w.Client.Get(ctx, req.NamespacedName, &g); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	keys, generation, ok := w.Ownership.Admitted(g.Name)
	if !ok || generation != g.Generation {
		// The table builder has not built with this generation yet.
		return ctrl.Result{RequeueAfter: notBuiltYet}, nil
	}
	next := v1alpha1.CorsHostGrantStatus{ObservedGeneration: g.Generation, AdmittedCount: int32(len(keys))}
	if len(keys) > 0 {
		next.Admitted = append([]string(nil), keys[:min(len(keys), v1alpha1.MaxAdmittedListed)]...)
	}
	if equality.Semantic.DeepEqual(g.Status, next) {
		return ctrl.Result{}, nil
	}
	patch := client.MergeFrom(g.DeepCopy())
	g.Status = next
	if err := w.Client.Status().Patch(ctx, &g, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("patching CorsHostGrant status: %w", err)
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the writer: it reconciles on grant changes and
// on every build that changed a grant's admitted list.
func (w *GrantStatusWriter) SetupWithManager(mgr ctrl.Manager, changed <-chan event.TypedGenericEvent[*v1alpha1.CorsHostGrant]) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("corshostgrant-status").
		For(&v1alpha1.CorsHostGrant{}).
		WatchesRawSource(source.Channel(changed, &handler.TypedEnqueueRequestForObject[*v1alpha1.CorsHostGrant]{})).
		Complete(w)
}
