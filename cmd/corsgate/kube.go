package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/controllers"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/observe"
	"github.com/corsgate/corsgate/internal/table"
)

// runKubernetes serves CorsPolicy objects from the API server (in-cluster
// config or KUBECONFIG). Every replica builds and serves the table; only the
// elected leader writes status.
func runKubernetes(ctx context.Context, o options, log logr.Logger) error {
	var ownership *controllers.HostOwnership
	var grantsChanged chan event.TypedGenericEvent[*v1alpha1.CorsHostGrant]
	switch o.hostOwnership {
	case "Enforce":
		grantsChanged = make(chan event.TypedGenericEvent[*v1alpha1.CorsHostGrant], 1024)
		ownership = &controllers.HostOwnership{Changed: grantsChanged}
	case "Open":
		log.Info("WARNING: --host-ownership=Open: any namespace that may write a CorsPolicy can claim any host, " +
			"including another team's API. Use it only where one team writes every CorsPolicy; the default, Enforce, " +
			"serves a policy only where a CorsHostGrant admits its namespace.")
	default:
		return fmt.Errorf("--host-ownership=%q: write Enforce (the default: serve a CorsPolicy only where a CorsHostGrant admits its namespace) or Open (any namespace may claim any host)", o.hostOwnership)
	}
	classes, err := compile.ParseGatewayClasses(o.gatewayClasses)
	if err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("no Kubernetes configuration (in-cluster or KUBECONFIG): %w; to run without a cluster, pass --policies PATH", err)
	}
	cfg.QPS, cfg.Burst = float32(o.kubeAPIQPS), o.kubeAPIBurst
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	// Gateways and HTTPRoutes, read for targetRefs policies when their CRDs
	// are installed (controllers/gateway.go).
	if err := gwapiv1.Install(scheme); err != nil {
		return err
	}
	obs := newObserver(o, log)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Metrics: metricsserver.Options{BindAddress: o.metricsAddr,
			ExtraHandlers: map[string]http.Handler{observe.OriginsPath: obs.OriginsHandler()}},
		HealthProbeBindAddress: o.probeAddr,
		PprofBindAddress:       o.pprofAddr,
		// No LeaderElection: a manager that loses its lease stops serving
		// too. controllers.StatusLeader holds the lease for the leader-only
		// runnables alone.
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	lock, err := leaderelection.NewResourceLock(cfg, mgr, leaderelection.Options{LeaderElection: o.leaderElect,
		LeaderElectionID: "corsgate.policy.corsgate.io", LeaderElectionNamespace: o.leaderElectionNS, RenewDeadline: controllers.RenewDeadline})
	if err != nil {
		return fmt.Errorf("--leader-elect: %w; pass --leader-election-namespace outside a cluster", err)
	}
	leaderOnly := mgr
	mgr = controllers.ServingOnly{Manager: mgr}

	store := &table.Store{}
	results := &controllers.Results{}
	changed := make(chan event.TypedGenericEvent[*v1alpha1.CorsPolicy], 1024)
	observe.RegisterServedTable(metrics.Registry, store)
	tm := controllers.NewTableMetrics(metrics.Registry, mgr.GetCache(), results)
	if err := mgr.Add(&controllers.TableBuilder{
		Cache: mgr.GetCache(), Store: store, Results: results, Changed: changed, Log: log.WithName("table"),
		Ownership: ownership, GatewayClasses: classes,
		OnServe: func(t *table.Table, took time.Duration) {
			tm.Served(t, took)
			obs.Retain(t) // forget the policies the new table drops
		},
	}); err != nil {
		return err
	}
	// The leader-only runnables, set up again for every term of the lease.
	setupLeaderOnly := func(mgr manager.Manager) error {
		if ownership != nil {
			if err := (&controllers.GrantStatusWriter{Client: mgr.GetClient(), Ownership: ownership}).SetupWithManager(mgr, grantsChanged); err != nil {
				return err
			}
		}
		if err := (&controllers.StatusWriter{
			Client: mgr.GetClient(), Results: results, Recorder: mgr.GetEventRecorder("corsgate"),
		}).SetupWithManager(mgr, changed); err != nil {
			return err
		}
		// Every DeniedOriginsInterval, at most one write per DeniedOriginsPerWrite.
		return mgr.Add(&controllers.DeniedOriginsWriter{Client: mgr.GetClient(), Inventory: obs, Log: log.WithName("denied-origins")})
	}
	if err := mgr.Add(&controllers.StatusLeader{Lock: lock, Manager: leaderOnly, Setup: setupLeaderOnly, Log: log.WithName("leader")}); err != nil {
		return err
	}
	runner, err := grpcRunner(o, store, log, obs)
	if err != nil {
		return err
	}
	if err := mgr.Add(runner); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// Ready once the first table is built from a synced cache.
	if err := mgr.AddReadyzCheck("policy-table", tableLoaded(store)); err != nil {
		return err
	}
	log.Info("starting in Kubernetes mode", "leaderElection", o.leaderElect, "hostOwnership", o.hostOwnership)
	return mgr.Start(ctx)
}
