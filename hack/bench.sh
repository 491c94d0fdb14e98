#!/usr/bin/env bash
# corsgate's performance run: corsgate against its references, measured side
# by side in the same run, ending with one summary table (docs/performance.md
# explains the method and holds the last results).
#
#   hack/bench.sh [all|engine|scale|loadgen|envtest|soak]   (default: all)
#
# Knobs (environment):
#   BENCH_COUNT=6          repetitions of the engine benchmarks (benchstat medians)
#   BENCH_TIME=100ms       -benchtime of each engine benchmark run
#   BENCH_LOAD_DURATION=5s   length of each closed-loop ext_proc measurement (throughput, CPU)
#   BENCH_FIXED_DURATION=30s length of each fixed-rate ext_proc measurement (latency)
#   BENCH_LOAD_ROUNDS=5      rounds per mix (the three servers rotate which goes first)
#   BENCH_PROFILE=1          also keep each server's CPU profile of the first round ($OUT/profiles)
#   BENCH_SOAK=5m          length of the soak (`hack/bench.sh soak`, `make soak`)
#   BENCH_SOAK_RATE=1000   requests per second during the soak
#   BENCH_OUT=dir          where raw outputs go (default: a new /tmp directory)
#
# Everything runs on this machine; all traffic goes to 127.0.0.1. `all` does
# not include the soak (5 minutes on its own).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-all}
COUNT=${BENCH_COUNT:-6}
BENCHTIME=${BENCH_TIME:-100ms}
LOAD_DURATION=${BENCH_LOAD_DURATION:-5s}
FIXED_DURATION=${BENCH_FIXED_DURATION:-30s}
LOAD_ROUNDS=${BENCH_LOAD_ROUNDS:-5}
SOAK=${BENCH_SOAK:-5m}
SOAK_RATE=${BENCH_SOAK_RATE:-1000}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/corsgate-bench.XXXXXX)}
mkdir -p "$OUT" "$ROOT/bin"
export GOFLAGS="${GOFLAGS:-} -modcacherw"
BENCHSTAT_VERSION=v0.0.0-20260908200009-22c9c6c9d4da # golang.org/x/perf

step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

machine() {
	echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB; $(go version | cut -d' ' -f3-4); load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

tools() {
	if [[ ! -x bin/benchstat ]]; then
		step "installing benchstat into bin/"
		GOBIN="$ROOT/bin" go install "golang.org/x/perf/cmd/benchstat@$BENCHSTAT_VERSION"
	fi
}

engine() {
	step "engine: corsgate vs jub0bs/cors vs rs/cors, $COUNT runs of $BENCHTIME each"
	(cd bench && go test -c -o "$OUT/engine.test" ./engine/)
	: >"$OUT/engine.txt"
	# Runs of the whole set, one after another, interleave the three libraries:
	# each case's three benchmarks run back to back in every run.
	for i in $(seq "$COUNT"); do
		"$OUT/engine.test" -test.run '^$' -test.bench . -test.benchtime "$BENCHTIME" -test.benchmem >>"$OUT/engine.txt"
		printf '.'
	done
	echo
	bin/benchstat -col '/mw@(jub0bs-cors corsgate rs-cors)' -filter '.unit:(cpu-sec/op OR allocs/op)' "$OUT/engine.txt" | tee "$OUT/engine-benchstat.txt"
}

scale() {
	step "scale: 1, 100, 10,000 policies"
	(cd bench && go test -c -o "$OUT/scale.test" ./scale/)
	"$OUT/scale.test" -test.run '^$' -test.bench 'Compile|Rebuild' -test.benchtime 3x -test.count 3 -test.benchmem >"$OUT/scale.txt"
	"$OUT/scale.test" -test.run '^$' -test.bench Decide -test.benchtime 200ms -test.count 5 -test.benchmem >>"$OUT/scale.txt"
	bin/benchstat -filter '.unit:(sec/op OR cpu-sec/op OR heap-MB)' "$OUT/scale.txt" | tee "$OUT/scale-benchstat.txt"
}

loadgen() {
	step "ext_proc under load: corsgate vs a stock no-op and a no-op with corsgate's codec work"
	go build -o bin/corsgate ./cmd/corsgate
	(cd bench && go build -o "$ROOT/bin/loadgen" ./cmd/loadgen)
	local profile=()
	if [[ -n ${BENCH_PROFILE:-} ]]; then
		mkdir -p "$OUT/profiles"
		profile=(-profile "$OUT/profiles")
	fi
	bin/loadgen -corsgate bin/corsgate -duration "$LOAD_DURATION" -fixed-duration "$FIXED_DURATION" -rounds "$LOAD_ROUNDS" "${profile[@]}" | tee "$OUT/loadgen.txt"
}

envtest() {
	step "reconcile to serve (envtest: kube-apiserver + etcd)"
	if [[ ! -x bin/k8s/kube-apiserver || ! -x bin/k8s/etcd ]]; then
		make --no-print-directory envtest-assets
	fi
	KUBEBUILDER_ASSETS="$ROOT/bin/k8s" go test -run '^$' -bench ReconcileToServe -benchtime 1x -timeout 30m ./controllers/ | tee "$OUT/envtest.txt"
}

soak() {
	step "soak: corsgate at $SOAK_RATE req/s for $SOAK"
	go build -o bin/corsgate ./cmd/corsgate
	(cd bench && go build -o "$ROOT/bin/loadgen" ./cmd/loadgen)
	bin/loadgen -corsgate bin/corsgate -soak "$SOAK" -soak-rate "$SOAK_RATE" | tee "$OUT/soak.txt"
}

summary() {
	local args=()
	[[ -s $OUT/engine.txt ]] && args+=(-engine "$OUT/engine.txt")
	[[ -s $OUT/scale.txt ]] && args+=(-scale "$OUT/scale.txt")
	[[ -s $OUT/envtest.txt ]] && args+=(-envtest "$OUT/envtest.txt")
	{
		if ((${#args[@]})); then (cd bench && go run ./cmd/summary "${args[@]}"); fi
		cat "$OUT"/loadgen.txt "$OUT"/soak.txt 2>/dev/null | grep '^SUMMARY' || true
	} | cut -f2- >"$OUT/summary.tsv"
	step "summary (ratios: corsgate / reference, same run; raw outputs in $OUT)"
	machine
	{
		printf 'section\tmeasure\tcorsgate\treference\tratio\ttarget\tverdict\n'
		cat "$OUT/summary.tsv"
	} | awk -F'\t' -v OFS='\t' '{ for (i = 1; i <= NF; i++) if ($i == "") $i = "-"; print }' | column -t -s $'\t'
}

started=$(date +%s)
machine | tee "$OUT/machine.txt"
tools
case $MODE in
all) engine; scale; loadgen; envtest ;;
engine | scale | loadgen | envtest | soak) "$MODE" ;;
*) echo "usage: hack/bench.sh [all|engine|scale|loadgen|envtest|soak]" >&2; exit 2 ;;
esac
summary
echo "took $(( $(date +%s) - started )) s"
