// Command corsgate is the CORS edge service: an Envoy ext_proc gRPC server
// that answers CORS preflights and sets CORS response headers from CorsPolicy
// objects, read from the Kubernetes API (default) or from files (--policies).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/grpcmetrics"
	"github.com/corsgate/corsgate/internal/observe"
	"github.com/corsgate/corsgate/internal/table"
)

// options are the command line, with controller-runtime's flag names.
type options struct {
	policies                string
	grpcAddr                string
	metricsAddr             string
	probeAddr               string
	pprofAddr               string
	leaderElect             bool
	leaderElectionNS        string
	grpcTLSCert, grpcTLSKey string
	grpcShutdownTimeout     time.Duration
	kubeAPIQPS              float64
	kubeAPIBurst            int
	allowEmptyPolicies      bool
	policiesSettle          time.Duration
	limits                  extproc.Limits
	decisionLog             observe.LogMode
	// Kubernetes mode only: a policy file has one trusted author, and no
	// Gateways.
	hostOwnership  string
	gatewayClasses string
}

func main() {
	// The operators' tools (explain, lint, import) are subcommands of the one
	// binary, dispatched before the server's flags are parsed (tools.go).
	if code, ok := runTool(os.Args, os.Stdin, os.Stdout, os.Stderr); ok {
		os.Exit(code)
	}
	var o options
	flag.StringVar(&o.policies, "policies", "", "Serve the CorsPolicy objects in this YAML file or folder instead of reading them from Kubernetes; reloaded on change.")
	flag.StringVar(&o.grpcAddr, "grpc-bind-address", ":9002", "The address the ext_proc gRPC server (and its gRPC health service) binds to.")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "The address the Prometheus metrics endpoint binds to; 0 disables it.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "The address the /healthz and /readyz probes bind to; 0 disables them.")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "The address Go's /debug/pprof/ endpoints bind to, for profiling (keep it on loopback or off); 0 disables them.")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader to write CorsPolicy status (Kubernetes mode). Every replica serves traffic either way.")
	flag.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease; defaults to the pod's namespace.")
	flag.StringVar(&o.grpcTLSCert, "grpc-tls-cert-file", "", "Serve gRPC over TLS with this certificate (PEM, e.g. tls.crt of a cert-manager Secret); needs --grpc-tls-key-file.")
	flag.StringVar(&o.grpcTLSKey, "grpc-tls-key-file", "", "The private key (PEM, e.g. tls.key) for --grpc-tls-cert-file.")
	flag.DurationVar(&o.grpcShutdownTimeout, "grpc-shutdown-timeout", extproc.DefaultShutdownTimeout, "After SIGTERM, how long in-flight ext_proc streams may finish before they are cut; keep it below the pod's termination grace period.")
	flag.Float64Var(&o.kubeAPIQPS, "kube-api-qps", 50, "Queries per second to the Kubernetes API (status writes); Kubernetes mode.")
	flag.IntVar(&o.kubeAPIBurst, "kube-api-burst", 100, "Burst of queries to the Kubernetes API; Kubernetes mode.")
	flag.BoolVar(&o.allowEmptyPolicies, "allow-empty-policies", false, "File mode: start, and keep running, with no CorsPolicy in --policies. Without it an empty source is refused at start-up, and later never replaces policies being served.")
	flag.DurationVar(&o.policiesSettle, "policies-settle", filesource.DefaultSettle, "File mode: reload once the policy files have not changed for this long, so that a file written in pieces is never served half-written.")
	flag.DurationVar(&o.limits.StreamIdleTimeout, "grpc-stream-idle-timeout", extproc.DefaultStreamIdleTimeout, "End an ext_proc stream that receives no message for this long (Envoy waits for the upstream's response headers between two messages); 0 disables.")
	flag.IntVar(&o.limits.MaxStreamsPerConnection, "grpc-max-streams-per-connection", extproc.DefaultMaxStreamsPerConnection, "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS of each gRPC connection; Envoy opens another connection when a connection is full. 0 means no limit.")
	flag.IntVar(&o.limits.MaxStreams, "grpc-max-streams", extproc.DefaultMaxStreams, "Concurrent ext_proc streams over all connections; a stream beyond it is refused with RESOURCE_EXHAUSTED. 0 means no limit.")
	flag.IntVar(&o.limits.MaxHeaderListBytes, "grpc-max-header-list-bytes", extproc.DefaultMaxHeaderListBytes, "Largest HTTP/2 header list (gRPC metadata) a client may send on a stream. 0 means grpc-go's default (16 MiB).")
	flag.IntVar(&o.limits.MaxMessageBytes, "grpc-max-message-bytes", extproc.DefaultMaxMessageBytes, "Largest ext_proc message accepted (it carries the HTTP request's or response's headers). 0 means grpc-go's default (4 MiB).")
	// Configuration errors are answers, not crashes: no Go stack trace below
	// panic level unless --zap-stacktrace-level asks for one.
	zapOpts := zap.Options{StacktraceLevel: zapcore.PanicLevel}
	flag.Var(&logModeFlag{&o.decisionLog}, "decision-log", "Which CORS decisions to log at info level, rate-limited per policy and reason: denials (and what DryRun policies would deny), all, or none.")
	flag.StringVar(&o.hostOwnership, "host-ownership", "Enforce",
		"Kubernetes mode: Enforce serves a CorsPolicy only where a CorsHostGrant (written by cluster administrators) "+
			"lets its namespace claim its hosts and path prefixes; Open lets any namespace claim any host (single-tenant clusters).")
	flag.StringVar(&o.gatewayClasses, "gateway-classes", "eg",
		"Kubernetes mode: the GatewayClasses (comma-separated) whose Gateways' Envoys call this corsgate; CorsPolicy targetRefs attach only "+
			"through Gateways of these classes, and others are reported in status.ancestors. \"*\" serves every class.")
	zapOpts.BindFlags(flag.CommandLine)
	showVersion := flag.Bool("version", false, "Print the version, the commit and the Go version, and exit (as corsgate version).")
	if code, done := parseServerFlags(flag.CommandLine, os.Args[1:], os.Stdout, os.Stderr); done {
		os.Exit(code)
	}
	if *showVersion {
		os.Exit(runVersion(nil, os.Stdin, os.Stdout, os.Stderr))
	}
	if err := o.limits.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "corsgate: %v\n", err)
		os.Exit(2)
	}

	log := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(log)
	started := time.Now()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var err error
	if o.policies != "" {
		err = runFiles(ctx, o, log)
	} else {
		err = runKubernetes(ctx, o, log)
	}
	if err != nil {
		// One line at error level: the error says what to change.
		log.Error(err, "corsgate cannot run")
		os.Exit(1)
	}
	log.Info("corsgate stopped", "uptime", time.Since(started).Round(time.Millisecond).String())
}

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

// newObserver is the decision observer of both modes: metrics by policy,
// latency histograms, decision logs and the observed-origins inventory
// (served at observe.OriginsPath on the metrics listener).
func newObserver(o options, log logr.Logger) *observe.Observer {
	return observe.New(metrics.Registry, log.WithName("decisions"), observe.Options{Log: o.decisionLog})
}

// grpcRunner builds the ext_proc server's Runnable: it serves on every
// replica, whatever the source of policies.
func grpcRunner(o options, store *table.Store, log logr.Logger, obs *observe.Observer) (*extproc.Runner, error) {
	lis, err := net.Listen("tcp", o.grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("--grpc-bind-address %s: %w", o.grpcAddr, err)
	}
	r := &extproc.Runner{
		Server:          extproc.NewServer(store, extproc.WithLogger(log.WithName("extproc")), extproc.WithObserver(obs)),
		Listener:        lis,
		ShutdownTimeout: o.grpcShutdownTimeout,
		Limits:          o.limits,
		Log:             log.WithName("extproc"),
	}
	// grpc_server_*: go-grpc-middleware's series, without its cost.
	gm := grpcmetrics.NewServerMetrics()
	metrics.Registry.MustRegister(gm)
	r.Options = append(r.Options, gm.ServerOptions()...)
	if o.grpcTLSCert != "" || o.grpcTLSKey != "" {
		creds, err := tlsCredentials(o.grpcTLSCert, o.grpcTLSKey)
		if err != nil {
			lis.Close()
			return nil, err
		}
		r.Options = append(r.Options, grpc.Creds(creds))
	}
	log.Info("ext_proc gRPC server listening", "address", lis.Addr().String(), "tls", o.grpcTLSCert != "")
	return r, nil
}

// tlsCredentials reloads the key pair on every handshake, so that a
// certificate renewed by cert-manager is picked up without a restart.
func tlsCredentials(certFile, keyFile string) (credentials.TransportCredentials, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("--grpc-tls-cert-file and --grpc-tls-key-file go together: set both")
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		return nil, fmt.Errorf("loading the gRPC TLS key pair: %w", err)
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			return &c, err
		},
	}), nil
}

// parseServerFlags parses the server's flags. --help prints the usage once,
// to stdout; a bad flag or a stray argument prints one line and a hint,
// exits 2, and starts nothing.
func parseServerFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (int, bool) {
	fs.Init("corsgate", flag.ContinueOnError)
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		serverUsage(fs)
		return 0, true
	case err != nil:
		fmt.Fprintf(stderr, "corsgate: %v\nrun 'corsgate --help' for the flags\n", err)
		return 2, true
	}
	fs.SetOutput(stderr)
	return strayArguments(fs.Args(), stderr)
}

// serverUsage is the server's --help: what it does, examples, then every flag.
func serverUsage(fs *flag.FlagSet) {
	out := fs.Output()
	fmt.Fprint(out, `corsgate answers Envoy's ext_proc calls with the CORS decisions of CorsPolicy objects.

Usage:
  corsgate [flags]                   serve (Kubernetes mode: in-cluster config or KUBECONFIG)
  corsgate --policies PATH [flags]   serve policy files (a YAML file or a folder), no cluster
  corsgate explain|lint|import ...   operator tools (corsgate explain --help, ...)
  corsgate version                   the version, commit and Go version

Examples:
  # Serve the sample policies without a cluster, gRPC on :9002, probes on :8081.
  corsgate --policies config/samples

  # In a cluster, as the chart runs it: two replicas, one writes status.
  corsgate --leader-elect --leader-election-namespace corsgate-system

  # A single-team cluster, where any namespace may claim any host.
  corsgate --host-ownership=Open

  # Profile the server under load: 30 s of CPU, read with go tool pprof.
  corsgate --policies config/samples --pprof-bind-address 127.0.0.1:6060 &
  go tool pprof -top 'http://127.0.0.1:6060/debug/pprof/profile?seconds=30'

Flags:
`)
	fs.PrintDefaults()
}
