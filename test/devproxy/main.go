// Command devproxy is a stand-in for Envoy for trying corsgate out; not a
// production proxy. No Envoy binary can run where corsgate is developed, so
// devproxy puts test/envoystandin's faithful reproduction of Envoy's
// ext_proc filter in front of an upstream: browsers talk to devproxy, devproxy
// asks the corsgate ext_proc server (plaintext h2c gRPC) about every request,
// exactly as Envoy would, and forwards what is left to the upstream.
//
// Without --upstream it starts a demo upstream on a random 127.0.0.1 port that
// echoes each request as JSON and, like many real applications, answers
// OPTIONS with 405 and sets its own wrong "Access-Control-Allow-Origin: *" on
// GET /v1/legacy — the two mistakes corsgate exists to hide.
//
// The filter is configured like examples/envoy/envoy.yaml (see
// docs/envoy.md#deployment), allow_mode_override on and message_timeout
// 500 ms, except that it fails closed unless --failure-mode-allow is given.
//
//	devproxy --listen 127.0.0.1:8000 --extproc 127.0.0.1:9002
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/corsgate/corsgate/test/envoystandin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "devproxy:", err)
		os.Exit(1)
	}
}

type options struct {
	listen            string
	extproc           string
	upstream          string
	messageTimeout    time.Duration
	allowModeOverride bool
	failureModeAllow  bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("devproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8000", "address to serve HTTP on")
	fs.StringVar(&o.extproc, "extproc", "127.0.0.1:9002", "address of the ext_proc gRPC server (plaintext h2c)")
	fs.StringVar(&o.upstream, "upstream", "", "upstream base URL, e.g. http://127.0.0.1:3000; empty starts the built-in demo upstream")
	fs.DurationVar(&o.messageTimeout, "message-timeout", 500*time.Millisecond, "ext_proc message_timeout (Envoy's default is 200ms)")
	fs.BoolVar(&o.allowModeOverride, "allow-mode-override", true, "ext_proc allow_mode_override (lets the server skip the response phase)")
	fs.BoolVar(&o.failureModeAllow, "failure-mode-allow", false, "ext_proc failure_mode_allow (serve without ext_proc when it fails)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q: devproxy takes flags only (see -h)", fs.Args())
	}
	if o.upstream != "" {
		u, err := url.Parse(o.upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return o, fmt.Errorf("--upstream %q is not an http(s) URL with a host: write it like http://127.0.0.1:3000", o.upstream)
		}
	}
	if o.messageTimeout < 0 {
		return o, fmt.Errorf("--message-timeout %v is negative", o.messageTimeout)
	}
	return o, nil
}

// run serves until ctx ends. ready, when set, receives the listening address.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	upstream := o.upstream
	if upstream == "" {
		demo, err := startDemoUpstream()
		if err != nil {
			return err
		}
		defer demo.Close()
		upstream = "http://" + demo.Addr().String()
		log.Info("demo upstream started", "url", upstream)
	}
	upURL, _ := url.Parse(upstream)

	conn, err := grpc.NewClient(o.extproc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("--extproc %q: %w", o.extproc, err)
	}
	defer conn.Close()

	sim := envoystandin.New(conn, envoystandin.Config{
		Filter: &extprocfilterv3.ExternalProcessor{
			MessageTimeout:    durationpb.New(o.messageTimeout),
			AllowModeOverride: o.allowModeOverride,
			FailureModeAllow:  o.failureModeAllow,
		},
		EnvoyHeaders: true,
	})
	proxy := envoystandin.NewProxy(sim, upURL)
	proxy.Log = log

	lis, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", o.listen, err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	log.Info("devproxy listening (a stand-in for Envoy, not a production proxy)",
		"addr", lis.Addr().String(), "extproc", o.extproc, "upstream", upstream)
	if ready != nil {
		ready <- lis.Addr().String()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
