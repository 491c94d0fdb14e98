package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkCreateToServe measures the time from a CorsPolicy Create call
// returning to the served table allowing the new origin: API server, watch,
// informer, coalesced rebuild and swap. Run with
// `go test -run '^$' -bench CreateToServe ./controllers/` (needs KUBEBUILDER_ASSETS).
func BenchmarkCreateToServe(b *testing.B) {
	ctx := context.Background()
	ns := namespace(b)
	i := 0
	for b.Loop() {
		host := fmt.Sprintf("h%d.%s.latency.example.com", i, ns)
		origin := fmt.Sprintf("https://app%d.example.com", i)
		i++
		if err := k8s.Create(ctx, newPolicy(ns, fmt.Sprintf("p%d", i), host, origin)); err != nil {
			b.Fatal(err)
		}
		for {
			if ok, _ := served(host, origin); ok {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}
