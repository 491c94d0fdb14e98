package main

import (
	"fmt"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/corsgate/corsgate/internal/observe"
)

// logModeFlag is --decision-log. The mode is behind a pointer so that the
// flag package's zero value (a nil mode, "") differs from the default
// (denials), which --help then shows.
type logModeFlag struct{ mode *observe.LogMode }

func (f *logModeFlag) String() string {
	if f.mode == nil {
		return ""
	}
	return f.mode.String()
}

func (f *logModeFlag) Set(s string) error {
	m, ok := observe.ParseLogMode(s)
	if !ok {
		return fmt.Errorf("%q is not a decision log mode: write denials (the default), all or none", s)
	}
	*f.mode = m
	return nil
}

// decisionLog is set by --decision-log, before any observer is made.
var decisionLog = logModeFlag{mode: new(observe.LogMode)}

const decisionLogUsage = "Which CORS decisions to log at info level, rate-limited per policy and reason: denials (and what DryRun policies would deny), all, or none."

// newObserver is the decision observer of both modes: metrics by policy,
// latency histograms, decision logs and the observed-origins inventory
// (served at observe.OriginsPath on the metrics listener).
func newObserver(reg prometheus.Registerer, log logr.Logger) *observe.Observer {
	return observe.New(reg, log, observe.Options{Log: *decisionLog.mode})
}

// grpcServerMetrics registers grpc-go's server metrics (grpc_server_started_total,
// grpc_server_handled_total{grpc_code}, messages received and sent), the
// families and labels of go-grpc-middleware's Prometheus provider counted
// at a fraction of its cost (see grpcMetrics), and returns the interceptors
// that feed them. Handling time is corsgate_extproc_stream_duration_seconds
// (native buckets too), so the provider's histogram is left off.
func grpcServerMetrics(reg prometheus.Registerer) []grpc.ServerOption {
	m := newGRPCMetrics()
	reg.MustRegister(m)
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.unaryInterceptor),
		grpc.ChainStreamInterceptor(m.streamInterceptor),
	}
}
