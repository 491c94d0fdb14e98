package main

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/controllers"
	"github.com/corsgate/corsgate/internal/table"
)

// runKubernetes serves CorsPolicy objects from the API server (in-cluster
// config or KUBECONFIG). Every replica builds and serves the table; only the
// elected leader writes status.
func runKubernetes(ctx context.Context, o options, log logr.Logger) error {
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
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "corsgate.policy.corsgate.io",
		LeaderElectionNamespace:       o.leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}

	store := &table.Store{}
	results := &controllers.Results{}
	changed := make(chan event.TypedGenericEvent[*v1alpha1.CorsPolicy], 1024)
	if err := mgr.Add(&controllers.TableBuilder{
		Cache: mgr.GetCache(), Store: store, Results: results, Changed: changed, Log: log.WithName("table"),
	}); err != nil {
		return err
	}
	if err := (&controllers.StatusWriter{
		Client: mgr.GetClient(), Results: results, Recorder: mgr.GetEventRecorder("corsgate"),
	}).SetupWithManager(mgr, changed); err != nil {
		return err
	}
	runner, err := grpcRunner(o, store, log, newObserver(metrics.Registry, log.WithName("decisions")))
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
	log.Info("starting in Kubernetes mode", "leaderElection", o.leaderElect)
	return mgr.Start(ctx)
}
