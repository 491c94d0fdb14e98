package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/table"
)

// runFiles serves policies from files: no cluster, no leader election.
func runFiles(ctx context.Context, o options, log logr.Logger) error {
	store := &table.Store{}
	src := filesource.New(o.policies, store, log.WithName("policies"))
	if err := src.Load(); err != nil {
		return err
	}
	obs := newObserver(metrics.Registry, log.WithName("decisions"))
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
		g.Go(func() error { return serveHTTP(ctx, o.metricsAddr, mux, log.WithName("metrics")) })
	}
	if o.probeAddr != "0" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
		ready := tableLoaded(store)
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
			if err := ready(r); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ok"))
		})
		g.Go(func() error { return serveHTTP(ctx, o.probeAddr, mux, log.WithName("probes")) })
	}
	return g.Wait()
}

func serveHTTP(ctx context.Context, addr string, h http.Handler, log logr.Logger) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
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
