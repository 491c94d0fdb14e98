// Command loadgen measures corsgate's ext_proc server under load against two
// no-op ext_proc servers, in the same run, through the Envoy stand-in: many
// concurrent streams over a few HTTP/2 connections, as Envoy opens them.
//
//	loadgen [-corsgate bin/corsgate] [-duration 5s] [-fixed-duration 30s] [-rounds 5]   # the comparison
//	loadgen -profile DIR ...                                                            # and CPU profiles
//	loadgen -soak 5m                                                                    # memory over time
//
// The servers run as child processes on 127.0.0.1: bin/corsgate in file
// mode, and this binary's serve-noop subcommand twice: the stock no-op
// ("noop": grpc-go's proto codec and go-control-plane messages, written the
// ordinary way) and the no-op with corsgate's codec work ("noop-wire":
// internal/extprocwire), both with extproc.ServerOptions. For each mix
// (preflight, actual CORS request, non-CORS request) and round, it measures
// each server back to back, rotating which goes first:
//   - closed loop (-workers streams in flight): maximum throughput, and the
//     server's CPU time per request;
//   - then, at half the stock no-op's maximum throughput, fixed rate:
//     latency percentiles (p50, p99, p99.9) from a log-linear histogram.
//
// Rows starting with SUMMARY are for hack/bench.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/corsgate/corsgate/bench/loadgen"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/test/envoystandin"
)

type options struct {
	corsgate       string
	duration       time.Duration
	warmup         time.Duration
	rounds         int
	conns          int
	workers        int
	fixedWorkers   int
	mixes          string
	messageTimeout time.Duration
	soak           time.Duration
	soakRate       float64
	soakEvery      time.Duration
	fixedDuration  time.Duration
	profileDir     string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve-noop" {
		if err := serveNoop(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen serve-noop:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.corsgate, "corsgate", "bin/corsgate", "The corsgate binary to measure (build it with `go build -o bin/corsgate ./cmd/corsgate`).")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "Length of each closed-loop (maximum throughput, CPU) measurement.")
	flag.DurationVar(&o.fixedDuration, "fixed-duration", 30*time.Second, "Length of each fixed-rate (latency) measurement.")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "Closed-loop warm-up before each mix, per server, not measured.")
	flag.IntVar(&o.rounds, "rounds", 5, "Rounds per mix; each measures every server, rotating which goes first. Medians are reported.")
	flag.IntVar(&o.conns, "conns", 2, "HTTP/2 connections per server (an Envoy keeps one per worker thread).")
	flag.IntVar(&o.workers, "workers", 64, "Concurrent streams in the closed-loop (maximum throughput) runs.")
	flag.IntVar(&o.fixedWorkers, "fixed-workers", 256, "Goroutines available to the fixed-rate runs (enough that requests never wait for one).")
	flag.StringVar(&o.mixes, "mixes", "preflight,actual,non-cors", "Comma-separated mixes to run.")
	flag.DurationVar(&o.messageTimeout, "message-timeout", 200*time.Millisecond, "The ext_proc filter's message_timeout (Envoy's default 200 ms); a later reply is a 504 and counts as an error.")
	flag.DurationVar(&o.soak, "soak", 0, "Instead of the comparison, run corsgate alone at -soak-rate for this long and report heap and goroutines over time.")
	flag.Float64Var(&o.soakRate, "soak-rate", 1000, "Requests per second during the soak (the three mixes in turn).")
	flag.DurationVar(&o.soakEvery, "soak-every", 10*time.Second, "Sampling interval of the soak.")
	flag.StringVar(&o.profileDir, "profile", "", "Write each server's CPU profile of the first closed-loop round of each mix into this folder (<server>-<mix>.pprof; read with go tool pprof -top).")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	if o.soak > 0 {
		err = soak(ctx, o)
	} else {
		err = compare(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func healthServing() *health.Server {
	hs := health.NewServer()
	hs.SetServingStatus(extproc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return hs
}

// measurement is one server's numbers for one mix and round.
type measurement struct {
	closed    loadgen.Result
	serverCPU time.Duration // during the closed-loop run
	fixed     loadgen.Result
}

func compare(ctx context.Context, o options) error {
	var mixes []loadgen.Mix
	for name := range strings.SplitSeq(o.mixes, ",") {
		m, err := loadgen.MixNamed(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		mixes = append(mixes, m)
	}
	logDir, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		return err
	}
	noop, err := startNoop(ctx, logDir, "proto")
	if err != nil {
		return err
	}
	defer noop.stop()
	noopWire, err := startNoop(ctx, logDir, "wire")
	if err != nil {
		return err
	}
	defer noopWire.stop()
	cg, err := startCorsgate(ctx, o.corsgate, logDir)
	if err != nil {
		return err
	}
	defer cg.stop()
	servers := []*server{noop, noopWire, cg}
	sims := map[*server][]*envoystandin.Sim{}
	for _, s := range servers {
		ss, closeConns, err := loadgen.Dial(s.addr, o.conns, loadgen.FilterConfig(o.messageTimeout))
		if err != nil {
			return err
		}
		defer closeConns()
		sims[s] = ss
	}

	fmt.Printf("loadgen: %d connections per server, %d streams in flight (closed loop), %s per closed-loop and %s per fixed-rate measurement, %d rounds; server logs in %s\n",
		o.conns, o.workers, o.duration, o.fixedDuration, o.rounds, logDir)
	for _, mix := range mixes {
		results := map[*server][]measurement{}
		for _, s := range servers { // warm up: connections, caches, GC pacing
			loadgen.Run(ctx, loadgen.Load{Sims: sims[s], Mixes: []loadgen.Mix{mix}, Expect: s.expected, Workers: o.workers, Duration: o.warmup})
		}
		// Closed loop: maximum throughput.
		for r := range o.rounds {
			for _, s := range order(servers, r) {
				var profiled chan error
				if r == 0 && o.profileDir != "" {
					profiled = make(chan error, 1)
					file := filepath.Join(o.profileDir, s.name+"-"+mix.Name+".pprof")
					go func() { profiled <- profile(s.pprof, o.duration, file) }()
				}
				cpu0, _ := loadgen.ProcessCPU(s.pid())
				res := loadgen.Run(ctx, loadgen.Load{Sims: sims[s], Mixes: []loadgen.Mix{mix}, Expect: s.expected, Workers: o.workers, Duration: o.duration})
				cpu1, _ := loadgen.ProcessCPU(s.pid())
				results[s] = append(results[s], measurement{closed: res, serverCPU: cpu1 - cpu0})
				if profiled != nil {
					if err := <-profiled; err != nil {
						return fmt.Errorf("profiling %s: %w", s.name, err)
					}
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		// Fixed rate at half the no-op's maximum: same offered load for both.
		rate := 0.5 * median(results[noop], func(m measurement) float64 { return m.closed.Throughput() })
		for r := range o.rounds {
			for _, s := range order(servers, r) {
				res := loadgen.Run(ctx, loadgen.Load{Sims: sims[s], Mixes: []loadgen.Mix{mix}, Expect: s.expected, Workers: o.fixedWorkers, Duration: o.fixedDuration, Rate: rate})
				results[s][r].fixed = res
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		report(mix, rate, servers, results)
	}
	return nil
}

// order rotates which server goes first, so that none always runs on a
// machine another has just warmed (or heated).
func order(servers []*server, round int) []*server {
	k := round % len(servers)
	return append(append([]*server{}, servers[k:]...), servers[:k]...)
}

func median(ms []measurement, f func(measurement) float64) float64 {
	v := make([]float64, len(ms))
	for i, m := range ms {
		v[i] = f(m)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// stats are one server's medians for one mix.
type stats struct {
	rps, cpuPerReq, p50, p99, p999, msgs float64
	errors                               uint64
	firstErr                             string
}

func summarize(ms []measurement) stats {
	st := stats{
		rps:       median(ms, func(m measurement) float64 { return m.closed.Throughput() }),
		cpuPerReq: median(ms, func(m measurement) float64 { return float64(m.serverCPU) / float64(max(m.closed.Requests, 1)) }),
		p50:       median(ms, func(m measurement) float64 { return float64(m.fixed.Latency.Quantile(0.50)) }),
		p99:       median(ms, func(m measurement) float64 { return float64(m.fixed.Latency.Quantile(0.99)) }),
		p999:      median(ms, func(m measurement) float64 { return float64(m.fixed.Latency.Quantile(0.999)) }),
		msgs:      median(ms, func(m measurement) float64 { return m.closed.MessagesPerRequest() }),
	}
	for _, m := range ms {
		st.errors += m.closed.Errors + m.fixed.Errors
		if st.firstErr == "" {
			st.firstErr = m.closed.FirstError + m.fixed.FirstError
		}
	}
	return st
}

// report prints one mix's table and its SUMMARY rows. servers are the stock
// no-op, the no-op with corsgate's codec work, and corsgate, in that order.
func report(mix loadgen.Mix, rate float64, servers []*server, results map[*server][]measurement) {
	n, w, c := summarize(results[servers[0]]), summarize(results[servers[1]]), summarize(results[servers[2]])
	us := func(ns float64) string { return fmt.Sprintf("%.1f µs", ns/1e3) }
	fmt.Printf("\nmix %s (%d ext_proc round trip(s) per request; measured %.2f noop, %.2f noop-wire, %.2f corsgate)\n", mix.Name, mix.RoundTrips, n.msgs, w.msgs, c.msgs)
	fmt.Printf("  %-28s %12s %12s %12s %10s %10s\n", "", "noop", "noop-wire", "corsgate", "cg/noop", "cg/wire")
	row := func(label string, f func(stats) float64, format func(float64) string) {
		fmt.Printf("  %-28s %12s %12s %12s %10.2f %10.2f\n", label, format(f(n)), format(f(w)), format(f(c)), f(c)/f(n), f(c)/f(w))
	}
	count := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	row("max throughput (req/s)", func(s stats) float64 { return s.rps }, count)
	row("server CPU per request", func(s stats) float64 { return s.cpuPerReq }, us)
	row(fmt.Sprintf("p50 at %.0f req/s", rate), func(s stats) float64 { return s.p50 }, us)
	row(fmt.Sprintf("p99 at %.0f req/s", rate), func(s stats) float64 { return s.p99 }, us)
	row(fmt.Sprintf("p99.9 at %.0f req/s", rate), func(s stats) float64 { return s.p999 }, us)
	fmt.Printf("  %-28s %12d %12d %12d\n", "errors (all runs)", n.errors, w.errors, c.errors)
	for i, st := range []stats{n, w, c} {
		if st.firstErr != "" {
			fmt.Printf("  first %s error: %s\n", servers[i].name, st.firstErr)
		}
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	summary := func(measure, cg, ref string, ratio float64, target string, ok bool) {
		fmt.Printf("SUMMARY\text_proc %s\t%s\t%s\t%s\t%.2f\t%s\t%s\n", mix.Name, measure, cg, ref, ratio, target, verdict(ok))
	}
	cpu, cpuWire, tput, p99 := c.cpuPerReq/n.cpuPerReq, c.cpuPerReq/w.cpuPerReq, c.rps/n.rps, c.p99/n.p99
	summary("server CPU per request corsgate/noop", us(c.cpuPerReq), us(n.cpuPerReq), cpu, "<= 1.00", cpu <= 1.00)
	summary("throughput corsgate/noop", count(c.rps)+" req/s", count(n.rps)+" req/s", tput, ">= 1.00", tput >= 1.00)
	summary("server CPU per request corsgate/noop-wire", us(c.cpuPerReq), us(w.cpuPerReq), cpuWire, "<= 1.05", cpuWire <= 1.05)
	summary(fmt.Sprintf("p99 at %.0f req/s corsgate/noop", rate), us(c.p99), us(n.p99), p99, "<= 1.2", p99 <= 1.2)
	if c.errors+n.errors+w.errors > 0 {
		fmt.Printf("SUMMARY\text_proc %s\terrors (504s etc.) corsgate / noop / noop-wire\t%d\t%d / %d\t\t0\t%s\n", mix.Name, c.errors, n.errors, w.errors, verdict(c.errors == 0))
	}
}
