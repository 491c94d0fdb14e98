package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/corsgate/corsgate/bench/loadgen"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/extprocwire"
)

// server is an ext_proc server process under load.
type server struct {
	name     string
	addr     string
	metrics  string // corsgate's /metrics address, "" for the no-op
	pprof    string // the server's /debug/pprof/ address
	cmd      *exec.Cmd
	stderr   *os.File
	expected func(loadgen.Mix) loadgen.Expect
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop ends the process this program started, and waits for it.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	if s.stderr != nil {
		s.stderr.Close()
	}
}

// startNoop runs this binary's serve-noop subcommand as a child process, so
// that the no-op server, like corsgate, has a process (and CPU account) of
// its own.
// codec "proto" is the stock no-op (grpc-go's proto codec, go-control-plane
// messages); "wire" is the no-op with corsgate's codec work
// (loadgen.WireNoop).
func startNoop(ctx context.Context, logDir, codec string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	pprofAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	name := "noop"
	if codec == "wire" {
		name = "noop-wire"
	}
	s := &server{name: name, pprof: pprofAddr, expected: func(m loadgen.Mix) loadgen.Expect { return m.Noop }}
	s.cmd = exec.Command(self, "serve-noop", "-addr", "127.0.0.1:0", "-pprof", pprofAddr, "-codec", codec)
	if s.stderr, err = os.Create(filepath.Join(logDir, name+".log")); err != nil {
		return nil, err
	}
	s.cmd.Stderr = s.stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the no-op server: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		s.stop()
		return nil, fmt.Errorf("the no-op server did not say where it listens (%q, %v); see %s", line, err, s.stderr.Name())
	}
	s.addr = addr
	return s, waitServing(ctx, s)
}

// startCorsgate runs the corsgate binary in file mode over loadgen.Policies,
// with its metrics endpoint on loopback (the soak reads heap and goroutines
// there) and probes off.
func startCorsgate(ctx context.Context, bin, logDir string) (*server, error) {
	policies := filepath.Join(logDir, "policies.yaml")
	if err := os.WriteFile(policies, []byte(loadgen.Policies), 0o644); err != nil {
		return nil, err
	}
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	pprofAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &server{name: "corsgate", addr: grpcAddr, metrics: metricsAddr, pprof: pprofAddr, expected: func(m loadgen.Mix) loadgen.Expect { return m.Corsgate }}
	s.cmd = exec.Command(bin, "--policies", policies, "--grpc-bind-address", grpcAddr,
		"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", "0", "--pprof-bind-address", pprofAddr)
	if s.stderr, err = os.Create(filepath.Join(logDir, "corsgate.log")); err != nil {
		return nil, err
	}
	s.cmd.Stdout, s.cmd.Stderr = s.stderr, s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (build it with `go build -o bin/corsgate ./cmd/corsgate`): %w", bin, err)
	}
	return s, waitServing(ctx, s)
}

// freeAddr finds a free loopback port. Another process could take it before
// the server binds it; on a test machine that does not happen in practice,
// and the server then fails loudly.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitServing polls the gRPC health service (corsgate says SERVING once its
// table is loaded; the no-op answers the same way) for up to 30 s.
func waitServing(ctx context.Context, s *server) error {
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.stop()
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := hc.Check(cctx, &healthpb.HealthCheckRequest{Service: extproc.ServiceName})
		cancel()
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return fmt.Errorf("%s at %s is not SERVING after 30 s (last: %v); see %s", s.name, s.addr, err, s.stderr.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serveNoop is the serve-noop subcommand: a no-op ext_proc server with the
// same gRPC options (extproc.ServerOptions) and health service as corsgate,
// until SIGTERM.
func serveNoop(args []string) error {
	fs := flag.NewFlagSet("serve-noop", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "The gRPC address.")
	pprofAddr := fs.String("pprof", "", "The /debug/pprof/ address; empty disables it.")
	codec := fs.String("codec", "proto", "proto: grpc-go's codec and go-control-plane messages (the stock no-op); wire: corsgate's codec work (internal/extprocwire).")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pprofAddr != "" {
		// http.DefaultServeMux carries net/http/pprof's handlers.
		go func() { _ = http.ListenAndServe(*pprofAddr, nil) }() //nolint:gosec // loopback, benchmark only
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var gs *grpc.Server
	switch *codec {
	case "proto":
		gs = grpc.NewServer(extproc.ServerOptions()...)
		extprocv3.RegisterExternalProcessorServer(gs, loadgen.Noop{})
	case "wire":
		gs = grpc.NewServer(append(extproc.ServerOptions(), extprocwire.ServerOption())...)
		loadgen.RegisterWireNoop(gs)
	default:
		return fmt.Errorf("-codec %q: use proto or wire", *codec)
	}
	hs := healthServing()
	healthpb.RegisterHealthServer(gs, hs)
	fmt.Printf("listening %s\n", lis.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); gs.Stop() }()
	if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// scrape reads a few gauges from a Prometheus text endpoint.
func scrape(addr string, names ...string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		for _, n := range names {
			if rest, ok := strings.CutPrefix(line, n+" "); ok {
				if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
					out[n] = v
				}
			}
		}
	}
	return out, nil
}

// profile records addr's CPU profile for the next d into file, for
// `go tool pprof`. It returns when the profile is written.
func profile(addr string, d time.Duration, file string) error {
	secs := max(int(d/time.Second), 1)
	c := http.Client{Timeout: d + 30*time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile from %s: %s", addr, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
