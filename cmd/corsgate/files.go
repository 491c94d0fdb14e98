package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/observe"
	"github.com/corsgate/corsgate/internal/table"
)

// runFiles serves policies from files: no cluster, no leader election.
func runFiles(ctx context.Context, o options, log logr.Logger) error {
	store := &table.Store{}
	src := filesource.New(o.policies, store, log.WithName("policies"))
	src.AllowEmpty, src.Settle = o.allowEmptyPolicies, o.policiesSettle
	if err := src.Load(); err != nil {
		return err
	}
	filesource.RegisterMetrics(metrics.Registry, src)
	observe.RegisterServedTable(metrics.Registry, store)
	obs := newObserver(o, log)
	// Forget the policies a reload drops (the first table had nothing to
	// forget).
	src.OnServe = func(t *table.Table, _ time.Duration) { obs.Retain(t) }
	runner, err := grpcRunner(o, store, log, obs)
	if err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return runner.Start(ctx) })
	g.Go(func() error { return src.Watch(ctx) })
	if o.metricsAddr != "0" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
		mux.Handle(observe.OriginsPath, obs.OriginsHandler())
		g.Go(func() error { return serveHTTP(ctx, o.metricsAddr, mux, log.WithName("metrics")) })
	}
	if o.probeAddr != "0" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		ready := tableLoaded(store)
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
			if err := ready(r); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			// Still ready: the last good table keeps answering, which is
			// better than no replica answering. The reason is for people and
			// for probes that read the body.
			if d := src.Status().Degraded; d != "" {
				_, _ = w.Write([]byte("ok (degraded: " + d + ")"))
				return
			}
			_, _ = w.Write([]byte("ok"))
		})
		g.Go(func() error { return serveHTTP(ctx, o.probeAddr, mux, log.WithName("probes")) })
	}
	if o.pprofAddr != "0" && o.pprofAddr != "" {
		// The same endpoints controller-runtime's PprofBindAddress serves in
		// Kubernetes mode.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		g.Go(func() error { return serveHTTP(ctx, o.pprofAddr, mux, log.WithName("pprof")) })
	}
	return g.Wait()
}

func serveHTTP(ctx context.Context, addr string, h http.Handler, log logr.Logger) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown) // best effort: the process is stopping
	}()
	log.Info("listening", "address", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// tableLoaded is the readiness check of both modes: ready once the first
// policy table is in place, so that no replica answers "no policy" to
// everything while it starts.
func tableLoaded(store *table.Store) func(*http.Request) error {
	return func(*http.Request) error {
		if store.Load() == nil {
			return errors.New("no policy table yet")
		}
		return nil
	}
}
