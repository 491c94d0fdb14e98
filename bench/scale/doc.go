// Package scale measures corsgate at 1, 100 and 10,000 policies (10 hosts
// each, exact and wildcard mixed, two path prefixes: 100,000 hosts at the
// top): the time to compile CorsPolicy objects into a table through the one
// compile path (internal/compile), the heap the result holds, and the time to
// look a request up and decide it. It holds only benchmarks and tests.
//
//	go test -run '^$' -bench . -benchmem ./bench/scale/
package scale
