// Package loadgen drives an Envoy ext_proc server the way Envoy does, through
// the Envoy stand-in (test/envoystandin): many concurrent streams, one
// per HTTP request, multiplexed over a few HTTP/2 connections, in closed-loop
// (as fast as a fixed number of workers can go) or fixed-rate mode, with
// latencies in a log-linear (HDR-style) histogram. It also holds the no-op
// ext_proc server that sets the baseline: the cost of gRPC and the stand-in
// alone. bench/cmd/loadgen is its command line.
package loadgen
