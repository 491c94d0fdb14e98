// Command corsgate is the CORS edge service: an Envoy ext_proc gRPC server
// that answers CORS preflights and sets CORS response headers from CorsPolicy
// objects, read from the Kubernetes API (default) or from files (--policies).
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/table"
)

// options are the command line, with controller-runtime's flag names.
type options struct {
	policies                string
	grpcAddr                string
	metricsAddr             string
	probeAddr               string
	leaderElect             bool
	leaderElectionNS        string
	grpcTLSCert, grpcTLSKey string
	grpcShutdownTimeout     time.Duration
	kubeAPIQPS              float64
	kubeAPIBurst            int
}

func main() {
	var o options
	flag.StringVar(&o.policies, "policies", "", "Serve the CorsPolicy objects in this YAML file or folder instead of reading them from Kubernetes; reloaded on change.")
	flag.StringVar(&o.grpcAddr, "grpc-bind-address", ":9002", "The address the ext_proc gRPC server (and its gRPC health service) binds to.")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "The address the Prometheus metrics endpoint binds to; 0 disables it.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "The address the /healthz and /readyz probes bind to; 0 disables them.")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader to write CorsPolicy status (Kubernetes mode). Every replica serves traffic either way.")
	flag.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease; defaults to the pod's namespace.")
	flag.StringVar(&o.grpcTLSCert, "grpc-tls-cert-file", "", "Serve gRPC over TLS with this certificate (PEM, e.g. tls.crt of a cert-manager Secret); needs --grpc-tls-key-file.")
	flag.StringVar(&o.grpcTLSKey, "grpc-tls-key-file", "", "The private key (PEM, e.g. tls.key) for --grpc-tls-cert-file.")
	flag.DurationVar(&o.grpcShutdownTimeout, "grpc-shutdown-timeout", extproc.DefaultShutdownTimeout, "After SIGTERM, how long in-flight ext_proc streams may finish before they are cut; keep it below the pod's termination grace period.")
	flag.Float64Var(&o.kubeAPIQPS, "kube-api-qps", 50, "Queries per second to the Kubernetes API (status writes); Kubernetes mode.")
	flag.IntVar(&o.kubeAPIBurst, "kube-api-burst", 100, "Burst of queries to the Kubernetes API; Kubernetes mode.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	log := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(log)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var err error
	if o.policies != "" {
		err = runFiles(ctx, o, log)
	} else {
		err = runKubernetes(ctx, o, log)
	}
	if err != nil {
		log.Error(err, "corsgate stopped")
		fmt.Fprintln(os.Stderr, "corsgate:", err)
		os.Exit(1)
	}
}

// grpcRunner builds the ext_proc server's Runnable: it serves on every
// replica, whatever the source of policies.
func grpcRunner(o options, store *table.Store, log logr.Logger, obs extproc.Observer) (*extproc.Runner, error) {
	lis, err := net.Listen("tcp", o.grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("--grpc-bind-address %s: %w", o.grpcAddr, err)
	}
	r := &extproc.Runner{
		Server:          extproc.NewServer(store, extproc.WithLogger(log.WithName("extproc")), extproc.WithObserver(obs)),
		Listener:        lis,
		ShutdownTimeout: o.grpcShutdownTimeout,
	}
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
