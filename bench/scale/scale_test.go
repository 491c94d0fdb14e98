package scale_test

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
	"github.com/corsgate/corsgate/test/gen"
)

var sizes = []int{1, 100, 10000}

// build compiles objs from scratch, as a starting replica does.
func build(tb testing.TB, objs []v1alpha1.CorsPolicy) *table.Table {
	t, results := compile.NewBuilder().Build(objs)
	for _, r := range results {
		if r.Err != nil || r.Serving != compile.Served || len(r.Conflicts) > 0 {
			tb.Fatalf("%s: serving %s, error %v, conflicts %v", r.Key(), r.Serving, r.Err, r.Conflicts)
		}
	}
	return t
}

// BenchmarkCompile compiles n objects into a table from scratch (the start
// of a replica; a change recompiles only the changed object) and reports the
// heap the result holds: the table and the builder's per-object compiles,
// measured once after a GC (heap-MB), not counting the objects themselves,
// which the informer cache holds in any case.
func BenchmarkCompile(b *testing.B) {
	for _, n := range sizes {
		objs := gen.Many(n)
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				build(b, objs)
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(heapHeld(objs)/1e6, "heap-MB")
		})
	}
}

// BenchmarkRebuild is the table rebuild after one object changed, which a
// running replica does on every CorsPolicy event: the builder reuses the
// compiles of the unchanged objects, recompiles the changed one, and indexes
// everything again (table.New). It bounds the compile share of
// reconcile-to-serve latency.
func BenchmarkRebuild(b *testing.B) {
	for _, n := range sizes {
		objs := gen.Many(n)
		builder := compile.NewBuilder()
		builder.Build(objs)
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				objs[n/2].Generation++
				builder.Build(objs)
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

func heapHeld(objs []v1alpha1.CorsPolicy) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	builder := compile.NewBuilder()
	t, _ := builder.Build(objs)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(t)
	runtime.KeepAlive(builder)
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}

// request is one request of the decide benchmark's traffic.
type request struct {
	host, path string
	req        cors.Request
}

// traffic spreads up to 1,024 requests evenly over the policies, so that
// lookups at 10,000 policies touch as many different table entries as real
// traffic would (one hot key would sit in cache whatever the table's size).
func traffic(n int, kind string) []request {
	const max = 1024
	var out []request
	for k := range max {
		i := k * n / max
		if n < max && k >= n*gen.HostsPerPolicy {
			break
		}
		j := k % gen.HostsPerPolicy
		host := fmt.Sprintf("api%d-%d.example.com", i, j)
		if j%2 == 1 {
			host = fmt.Sprintf("x%d.svc%d-%d.example.net", k, i, j)
		}
		origin := fmt.Sprintf("https://app%d.example.com", i)
		r := request{host: host, path: "/v2/admin/users?page=2"}
		switch kind {
		case "preflight-allowed":
			r.req = cors.Request{Method: "OPTIONS", Origin: origin, HasOrigin: true, AccessControlRequestMethod: "PUT", AccessControlRequestHeaders: "content-type,x-foo"}
		case "preflight-denied":
			r.req = cors.Request{Method: "OPTIONS", Origin: "https://evil.example", HasOrigin: true, AccessControlRequestMethod: "PUT"}
		case "actual-allowed":
			r.req = cors.Request{Method: "GET", Origin: fmt.Sprintf("https://t%d.tenants.example.com", k), HasOrigin: true}
		}
		out = append(out, r)
	}
	return out
}

var kinds = []string{"preflight-allowed", "preflight-denied", "actual-allowed"}

// BenchmarkDecide is the per-request work at each size: find the policy
// (table.Lookup) and decide (Policy.Decide). The number of map probes does
// not depend on the number of policies; what does is where the data sits:
// traffic=hot repeats one request (everything it touches stays in cache, as
// for a hot endpoint), traffic=spread cycles through up to 1,024 requests
// across the whole table (at 10,000 policies the table is megabytes, and each
// request's data is fetched from memory).
func BenchmarkDecide(b *testing.B) {
	for _, n := range sizes {
		t := build(b, gen.Many(n))
		for _, kind := range kinds {
			spread := traffic(n, kind)
			hot := spread[len(spread)/2 : len(spread)/2+1]
			for _, tr := range []struct {
				name string
				reqs []request
			}{{"hot", hot}, {"spread", spread}} {
				b.Run(fmt.Sprintf("traffic=%s/policies=%d/req=%s", tr.name, n, kind), func(b *testing.B) {
					reqs := tr.reqs
					b.ReportAllocs()
					cpu := processCPU()
					i := 0
					for b.Loop() {
						r := &reqs[i]
						if i++; i == len(reqs) {
							i = 0
						}
						_ = t.Lookup(r.host, r.path).Policy.Decide(&r.req)
					}
					b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
				})
			}
		}
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
