// Package engine compares corsgate's CORS engine (internal/cors) with the two
// strongest Go references, github.com/rs/cors and github.com/jub0bs/cors, on
// the same machine and in the same run. It holds only benchmarks and tests:
// the references are test-only dependencies, never linked into a binary.
//
// Two shapes, one table of cases (cases_test.go):
//
//   - BenchmarkEngine: deciding one request into response headers, with no
//     HTTP plumbing around it. For corsgate that is Policy.Decide on a
//     prepared cors.Request. The references have no such entry point — their
//     decision is writing headers into an http.ResponseWriter — so they run
//     their middleware over a prepared *http.Request and a reused writer
//     whose header map is cleared per operation (rs/cors's own FakeResponse
//     approach), around a handler that does nothing.
//   - BenchmarkHTTP: the shape of jub0bs/cors-benchmarks, so the numbers line
//     up with the published ones: each middleware wraps a handler writing
//     "Hello, World!", every operation makes an httptest.NewRecorder, and
//     b.RunParallel drives it. corsgate runs behind a thin net/http adapter
//     (adapter_test.go) that does what the ext_proc server does with a
//     Decision, in net/http terms.
//
// Run `hack/bench.sh engine`, or by hand:
//
//	go test -run '^$' -bench . -benchmem -count 6 ./bench/engine/ > engine.txt
//	benchstat -col /mw engine.txt
package engine
