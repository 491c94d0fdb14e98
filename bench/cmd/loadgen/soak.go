package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/corsgate/corsgate/bench/loadgen"
)

// soakSample is corsgate's memory at one point of the soak.
type soakSample struct {
	at               time.Duration
	heapInuse, rss   float64
	goroutines       float64
	requests, errors uint64
	p99              time.Duration
}

// soak runs corsgate alone at a fixed rate, the three mixes in turn, for
// o.soak, and samples its heap in use and goroutines (from its /metrics) and
// resident set size every o.soakEvery. Memory is flat when the last quarter's
// samples are no higher than the first quarter's (after the first sample,
// which includes warm-up), within 10 % + 2 MiB of heap, and goroutines are
// back where they started.
func soak(ctx context.Context, o options) error {
	logDir, err := os.MkdirTemp("", "loadgen-soak-")
	if err != nil {
		return err
	}
	cg, err := startCorsgate(ctx, o.corsgate, logDir)
	if err != nil {
		return err
	}
	defer cg.stop()
	sims, closeConns, err := loadgen.Dial(cg.addr, o.conns, loadgen.FilterConfig(o.messageTimeout))
	if err != nil {
		return err
	}
	defer closeConns()
	fmt.Printf("soak: corsgate at %.0f req/s (preflight, actual, non-cors in turn) for %s, sampled every %s; logs in %s\n",
		o.soakRate, o.soak, o.soakEvery, logDir)
	fmt.Printf("  %8s %12s %12s %11s %10s %8s %10s\n", "t", "heap inuse", "rss", "goroutines", "requests", "errors", "p99")

	var samples []soakSample
	var firstErr string
	start := time.Now()
	for elapsed := time.Duration(0); elapsed < o.soak && ctx.Err() == nil; elapsed = time.Since(start) {
		res := loadgen.Run(ctx, loadgen.Load{Sims: sims, Mixes: loadgen.Mixes, Expect: cg.expected,
			Workers: o.fixedWorkers, Duration: min(o.soakEvery, o.soak-elapsed), Rate: o.soakRate})
		// Sampled once the streams of this interval have ended (Run cancels
		// those still in flight at its deadline): what remains is what the
		// server keeps, not what the load has in flight at that instant.
		time.Sleep(500 * time.Millisecond)
		m, err := scrape(cg.metrics, "go_memstats_heap_inuse_bytes", "go_goroutines")
		if err != nil {
			return fmt.Errorf("reading corsgate's metrics: %w", err)
		}
		rss, _ := loadgen.ProcessRSS(cg.pid())
		s := soakSample{at: time.Since(start), heapInuse: m["go_memstats_heap_inuse_bytes"], rss: float64(rss),
			goroutines: m["go_goroutines"], requests: res.Requests, errors: res.Errors, p99: res.Latency.Quantile(0.99)}
		samples = append(samples, s)
		if res.FirstError != "" && firstErr == "" {
			firstErr = res.FirstError
		}
		fmt.Printf("  %8s %10.1fMB %10.1fMB %11.0f %10d %8d %10s\n", s.at.Round(time.Second), s.heapInuse/1e6, s.rss/1e6,
			s.goroutines, s.requests, s.errors, s.p99.Round(time.Microsecond))
	}
	if len(samples) < 5 {
		return fmt.Errorf("soak: only %d samples; run it longer than 5 x -soak-every", len(samples))
	}
	// Quarters, skipping the first sample.
	body := samples[1:]
	q := max(len(body)/4, 1)
	first, last := body[:q], body[len(body)-q:]
	heapFirst, heapLast := medianOf(first, func(s soakSample) float64 { return s.heapInuse }), medianOf(last, func(s soakSample) float64 { return s.heapInuse })
	rssFirst, rssLast := medianOf(first, func(s soakSample) float64 { return s.rss }), medianOf(last, func(s soakSample) float64 { return s.rss })
	gFirst, gLast := medianOf(first, func(s soakSample) float64 { return s.goroutines }), medianOf(last, func(s soakSample) float64 { return s.goroutines })
	var total, errs uint64
	for _, s := range samples {
		total, errs = total+s.requests, errs+s.errors
	}
	if firstErr != "" {
		fmt.Printf("soak: first error: %s\n", firstErr)
	}
	heapFlat := heapLast <= heapFirst*1.10+2<<20
	gFlat := gLast <= gFirst+2 // a straggling stream or two
	fmt.Printf("soak: %d requests, %d errors; heap in use %.1f MB -> %.1f MB, RSS %.1f MB -> %.1f MB, goroutines %.0f -> %.0f (first vs last quarter medians)\n",
		total, errs, heapFirst/1e6, heapLast/1e6, rssFirst/1e6, rssLast/1e6, gFirst, gLast)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	fmt.Printf("SUMMARY\tsoak %s at %.0f req/s\theap in use, last/first quarter\t%.1f MB\t%.1f MB\t%.2f\t<= 1.10 (+2 MiB)\t%s\n", o.soak, o.soakRate, heapLast/1e6, heapFirst/1e6, heapLast/heapFirst, verdict(heapFlat))
	fmt.Printf("SUMMARY\tsoak %s at %.0f req/s\tgoroutines, last vs first quarter\t%.0f\t%.0f\t\tno growth\t%s\n", o.soak, o.soakRate, gLast, gFirst, verdict(gFlat))
	return nil
}

func medianOf(ss []soakSample, f func(soakSample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	return v[len(v)/2]
}
