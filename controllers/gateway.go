package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways;httproutes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// gatewayRecheck is how often the table builder looks again for the Gateway
// API CRDs while they are not installed.
var gatewayRecheck = time.Minute

// gatewayAPI reads Gateways and HTTPRoutes for targetRefs policies
// (internal/compile/attachment.go turns them into hosts and path prefixes). It
// watches them only when their CRDs are installed; without them corsgate
// runs as it would without the Gateway API, says so once, and looks again
// every gatewayRecheck, so installing the CRDs later needs no restart.
type gatewayAPI struct {
	b *TableBuilder

	mu      sync.Mutex
	enabled bool
	// readErr is the first failed cache read of a build: such a build is
	// not swapped in (a broken source never replaces a good table).
	readErr error
}

// watchGatewayAPI starts watching Gateways, HTTPRoutes and Namespaces (whose
// labels listeners may select routes by), each change triggering a build.
func (b *TableBuilder) watchGatewayAPI(ctx context.Context) {
	g := &gatewayAPI{b: b}
	b.gateway = g
	b.builder.Resolve = g.resolve(ctx)
	if err := g.watch(ctx); err == nil {
		return
	} else if !absent(err) {
		b.Log.Error(err, "watching Gateway API objects; targetRefs policies serve nothing until this works, retrying", "every", gatewayRecheck)
	} else {
		b.Log.Info("the Gateway API CRDs (gateway.networking.k8s.io/v1 Gateway, HTTPRoute) are not installed: CorsPolicy targetRefs serve nothing, hosts/pathPrefixes policies are unaffected; looking again", "every", gatewayRecheck)
	}
	go func() {
		t := time.NewTicker(gatewayRecheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := g.watch(ctx); err == nil {
					b.Log.Info("the Gateway API CRDs are installed: resolving CorsPolicy targetRefs")
					b.trigger()
					return
				}
			}
		}
	}()
}

// absent reports whether err says a kind is not served by the API server or
// not known to the scheme.
func absent(err error) bool {
	return meta.IsNoMatchError(err) || runtime.IsNotRegisteredError(err)
}

func (g *gatewayAPI) watch(ctx context.Context) error {
	kick := toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { g.b.trigger() }, DeleteFunc: func(any) { g.b.trigger() },
		UpdateFunc: func(_, _ any) { g.b.trigger() },
	}
	for _, obj := range []client.Object{&gwapiv1.Gateway{}, &gwapiv1.HTTPRoute{}, &corev1.Namespace{}} {
		// Bounded: GetInformer blocks until the informer has synced.
		c, cancel := context.WithTimeout(ctx, 2*time.Minute)
		inf, err := g.b.Cache.GetInformer(c, obj)
		cancel()
		if err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(kick); err != nil {
			return err
		}
	}
	g.mu.Lock()
	g.enabled = true
	g.mu.Unlock()
	return nil
}

// startBuild clears the read error of the previous build.
func (g *gatewayAPI) startBuild() {
	g.mu.Lock()
	g.readErr = nil
	g.mu.Unlock()
}

// buildErr is the first failed read of the build that just ran.
func (g *gatewayAPI) buildErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.readErr
}

func (g *gatewayAPI) failed(err error) {
	g.mu.Lock()
	if g.readErr == nil {
		g.readErr = err
	}
	g.mu.Unlock()
}

func (g *gatewayAPI) isEnabled() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.enabled
}

// resolve reads a targetRef's objects from the manager's cache.
func (g *gatewayAPI) resolve(ctx context.Context) compile.Resolver {
	read := Resolver(ctx, g.b.Cache, g.b.GatewayClasses, g.failed)
	return func(ns string, ref gwapiv1.LocalPolicyTargetReferenceWithSectionName) []compile.Attachment {
		if !g.isEnabled() {
			a := compile.TargetNotFound(ns, ref)
			a.Message = "The Gateway API CRDs (gateway.networking.k8s.io Gateway, HTTPRoute) are not installed in this cluster, so targetRefs attach to nothing: install them, or select requests with hosts and pathPrefixes."
			return []compile.Attachment{a}
		}
		return read(ns, ref)
	}
}

// Resolver resolves targetRefs (internal/compile/attachment.go) from the Gateway
// API objects r reads: the table builder's cache, or explain's client, so
// that explain resolves exactly as the server does. Only Gateways of
// classes serve (nil: every class). failed, if set, is told of every read
// error other than NotFound (the table builder then keeps its last table).
func Resolver(ctx context.Context, r client.Reader, classes compile.GatewayClasses, failed func(error)) compile.Resolver {
	get := func(key client.ObjectKey, obj client.Object) error {
		err := r.Get(ctx, key, obj)
		if err != nil && !apierrors.IsNotFound(err) && failed != nil {
			failed(fmt.Errorf("reading %T %s: %w", obj, key, err))
		}
		return err
	}
	gateway := func(ns, name string) *gwapiv1.Gateway {
		var gw gwapiv1.Gateway
		if err := get(client.ObjectKey{Namespace: ns, Name: name}, &gw); err != nil {
			return nil
		}
		return &gw
	}
	nsLabels := func(name string) (labels.Set, bool) {
		var n corev1.Namespace
		if err := get(client.ObjectKey{Name: name}, &n); err != nil {
			return nil, false
		}
		return n.Labels, true
	}
	return func(ns string, ref gwapiv1.LocalPolicyTargetReferenceWithSectionName) []compile.Attachment {
		key := client.ObjectKey{Namespace: ns, Name: string(ref.Name)}
		switch ref.Kind {
		case v1alpha1.KindGateway:
			var gw gwapiv1.Gateway
			if err := get(key, &gw); err != nil {
				return []compile.Attachment{compile.TargetNotFound(ns, ref)}
			}
			return []compile.Attachment{compile.ResolveGateway(&gw, ref.SectionName, classes)}
		case v1alpha1.KindHTTPRoute:
			var route gwapiv1.HTTPRoute
			if err := get(key, &route); err != nil {
				return []compile.Attachment{compile.TargetNotFound(ns, ref)}
			}
			return compile.ResolveRoute(&route, ref.SectionName, gateway, nsLabels, classes)
		}
		a := compile.TargetNotFound(ns, ref)
		a.Reason = string(gwapiv1.PolicyReasonInvalid)
		a.Message = fmt.Sprintf("kind %s is not a kind corsgate attaches to: write Gateway or HTTPRoute", ref.Kind)
		return []compile.Attachment{a}
	}
}
