// Command summary turns the raw `go test -bench` output of hack/bench.sh into
// the rows of its summary table (tab-separated, each starting with SUMMARY):
// ratios of corsgate against the references measured in the same run, each
// with its target and whether it is met.
//
//	go run ./bench/summary -engine engine.txt -scale scale.txt -envtest envtest.txt
//
// Timings are medians over the -count runs; ratios use CPU time per operation
// (cpu-ns/op, which waiting for a core on a shared machine does not inflate),
// falling back to wall time (ns/op) when a benchmark has no CPU metric.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	engine := flag.String("engine", "", "output of go test -bench . ./bench/engine/")
	scale := flag.String("scale", "", "output of go test -bench . ./bench/scale/")
	envtest := flag.String("envtest", "", "output of go test -bench ReconcileToServe ./controllers/")
	flag.Parse()
	var out []row
	for _, in := range []struct {
		path string
		sum  func(results) []row
	}{{*engine, engineRows}, {*scale, scaleRows}, {*envtest, envtestRows}} {
		if in.path == "" {
			continue
		}
		f, err := os.Open(in.path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "summary:", err)
			os.Exit(1)
		}
		res := parse(f)
		f.Close()
		out = append(out, in.sum(res)...)
	}
	for _, r := range out {
		fmt.Println(r)
	}
}

// results holds every value of every benchmark, by name (without the -N
// GOMAXPROCS suffix) and unit.
type results map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads the standard benchmark format: name, iterations, then value
// and unit pairs.
func parse(r io.Reader) results {
	res := results{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res
}

// median of a benchmark's unit; NaN when absent.
func (r results) median(name, unit string) float64 {
	v := slices.Clone(r[name][unit])
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// cpu is the benchmark's median CPU time per op, or its wall time.
func (r results) cpu(name string) float64 {
	if v := r.median(name, "cpu-ns/op"); !math.IsNaN(v) {
		return v
	}
	return r.median(name, "ns/op")
}

type row struct {
	section, measure, ours, ref, ratio, target, verdict string
}

func (r row) String() string {
	return strings.Join([]string{"SUMMARY", r.section, r.measure, r.ours, r.ref, r.ratio, r.target, r.verdict}, "\t")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

func ns(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 1e9:
		return fmt.Sprintf("%.2f s", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1f ms", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1f µs", v/1e3)
	default:
		return fmt.Sprintf("%.0f ns", v)
	}
}

// cases returns the case names (the part after "mw=<lib>/") of one shape.
func (r results) cases(shape string) []string {
	seen := map[string]bool{}
	var out []string
	for name := range r {
		rest, ok := strings.CutPrefix(name, shape+"/mw=corsgate/")
		if ok && !seen[rest] {
			seen[rest] = true
			out = append(out, rest)
		}
	}
	slices.Sort(out)
	return out
}

func engineRows(r results) []row {
	var rows []row
	for _, shape := range []string{"Engine", "HTTP"} {
		cases := r.cases(shape)
		if len(cases) == 0 {
			continue
		}
		section := map[string]string{"Engine": "engine, decide only", "HTTP": "engine, jub0bs/cors-benchmarks shape"}[shape]
		if shape == "Engine" {
			worst := 0.0
			for _, c := range cases {
				worst = max(worst, r.median(shape+"/mw=corsgate/"+c, "allocs/op"))
			}
			rows = append(rows, row{section, fmt.Sprintf("allocs/op, worst of %d cases", len(cases)), fmt.Sprintf("%.0f", worst), "", "", "0", verdict(worst == 0)})
		}
		for _, ref := range []string{"jub0bs-cors", "rs-cors"} {
			logSum, n := 0.0, 0
			var ours, theirs []float64
			for _, c := range cases {
				o, t := r.cpu(shape+"/mw=corsgate/"+c), r.cpu(shape+"/mw="+ref+"/"+c)
				if math.IsNaN(o) || math.IsNaN(t) {
					continue
				}
				logSum += math.Log(o / t)
				ours, theirs = append(ours, o), append(theirs, t)
				n++
			}
			if n == 0 {
				continue
			}
			g := math.Exp(logSum / float64(n))
			target, v := "(info)", ""
			if ref == "jub0bs-cors" {
				target, v = "<= 1", verdict(g <= 1)
			}
			rows = append(rows, row{section, fmt.Sprintf("geomean CPU time, corsgate/%s (%d cases)", ref, n), ns(geomean(ours)), ns(geomean(theirs)), fmt.Sprintf("%.2f", g), target, v})
		}
		for _, c := range cases {
			if !strings.Contains(c, "/o=n") {
				continue
			}
			o, t := r.cpu(shape+"/mw=corsgate/"+c), r.cpu(shape+"/mw=jub0bs-cors/"+c)
			rows = append(rows, row{section, "disallowed " + c + ", corsgate/jub0bs-cors", ns(o), ns(t), fmt.Sprintf("%.2f", o/t), "<= 1", verdict(o <= t)})
		}
		if shape == "Engine" {
			small, big := r.cpu(shape+"/mw=corsgate/n=all/r=p/o=y/m=acrh_64k"), r.cpu(shape+"/mw=corsgate/n=all/r=p/o=y/m=acrh_1m")
			if !math.IsNaN(small) && !math.IsNaN(big) {
				rows = append(rows, row{section, "adversarial ACRH: 1 MiB vs 64 KiB (work bounded)", ns(big), ns(small), fmt.Sprintf("%.2f", big/small), "no growth (<= 1.5)", verdict(big/small <= 1.5)})
			}
		}
		if shape == "HTTP" {
			if none := r.median("HTTP/mw=none", "ns/op"); !math.IsNaN(none) {
				rows = append(rows, row{section, "harness alone (mw=none), wall time", ns(none), "", "", "(info)", ""})
			}
		}
	}
	return rows
}

func geomean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += math.Log(x)
	}
	return math.Exp(s / float64(len(v)))
}

func scaleRows(r results) []row {
	var rows []row
	const section = "scale"
	if v := r.median("Compile/policies=10000", "ns/op"); !math.IsNaN(v) {
		rows = append(rows, row{section, "compile 10,000 policies (100,000 hosts)", ns(v), "", "", "< 1 s", verdict(v < 1e9)})
	}
	if v := r.median("Rebuild/policies=10000", "ns/op"); !math.IsNaN(v) {
		rows = append(rows, row{section, "rebuild after one change, 10,000 policies", ns(v), "", "", "(info)", ""})
	}
	for _, n := range []string{"1", "100", "10000"} {
		if v := r.median("Compile/policies="+n, "heap-MB"); !math.IsNaN(v) {
			target, vd := "(info)", ""
			if n == "10000" {
				target, vd = "< 200 MB", verdict(v < 200)
			}
			rows = append(rows, row{section, "heap held, " + n + " policies", fmt.Sprintf("%.1f MB", v), "", "", target, vd})
		}
	}
	for _, traffic := range []string{"hot", "spread"} {
		for _, kind := range []string{"preflight-allowed", "preflight-denied", "actual-allowed"} {
			one := r.cpu("Decide/traffic=" + traffic + "/policies=1/req=" + kind)
			big := r.cpu("Decide/traffic=" + traffic + "/policies=10000/req=" + kind)
			if math.IsNaN(one) || math.IsNaN(big) {
				continue
			}
			target, vd := "<= 1.2", verdict(big/one <= 1.2)
			if traffic == "spread" {
				target, vd = "(info)", ""
			}
			rows = append(rows, row{section, fmt.Sprintf("lookup+decide %s, traffic=%s: 10,000 vs 1 policy", kind, traffic), ns(big), ns(one), fmt.Sprintf("%.2f", big/one), target, vd})
		}
	}
	return rows
}

func envtestRows(r results) []row {
	var rows []row
	for _, n := range []string{"0", "10000"} {
		name := "ReconcileToServe/objects=" + n
		p50, p99 := r.median(name, "p50-ms"), r.median(name, "p99-ms")
		if math.IsNaN(p50) {
			continue
		}
		section := "reconcile to serve (envtest)"
		rows = append(rows, row{section, fmt.Sprintf("Create/Update -> ext_proc answer, %s other objects: p50 / p99", n),
			fmt.Sprintf("%.1f / %.1f ms", p50, p99), "", "", "(info)", ""})
		if s := r.median(name, "setup-s"); n != "0" && !math.IsNaN(s) {
			rows = append(rows, row{section, "setup: create " + n + " objects, table caught up", fmt.Sprintf("%.0f s", s), "", "", "(info)", ""})
		}
	}
	return rows
}
