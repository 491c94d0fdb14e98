//go:build e2e

package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/corsgate/corsgate/extproc"
)

// startCorsgate runs the corsgate binary with args on a random loopback gRPC
// port, waits until its gRPC health service says the ext_proc service is
// SERVING (a policy table is loaded), and returns a connection to it. The
// process is stopped (SIGTERM, then SIGKILL) when the test ends.
func startCorsgate(t *testing.T, args, env []string, artifacts string) *grpc.ClientConn {
	t.Helper()
	logPath := filepath.Join(artifacts, "corsgate.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })

	args = append(args,
		"--grpc-bind-address=127.0.0.1:0",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
	)
	cmd := exec.Command(corsgateBin, args...)
	cmd.Env = append(os.Environ(), env...)
	// An os.Pipe, not cmd.StdoutPipe: the reader below drains it to EOF,
	// also after the process has exited, so the log keeps its last lines.
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	proc := startProcess(t, cmd)
	w.Close()
	t.Cleanup(func() { proc.stop(t, "corsgate") })

	// corsgate logs JSON lines; the one that says where the gRPC server
	// listens carries the port it was given.
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(out, logFile))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "ext_proc gRPC server listening" {
				select {
				case addrc <- line.Address:
				default:
				}
			}
		}
		io.Copy(logFile, out) // the rest, if the scanner stopped early
		out.Close()
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-proc.done:
		t.Fatalf("corsgate %v exited before listening: %v; its log is %s:\n%s", args, proc.err, logPath, readFile(logPath))
	case <-time.After(hangGuard):
		t.Fatalf("corsgate never said where it listens; its log is %s", logPath)
	}

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	waitServing(t, conn, proc, logPath)
	t.Logf("corsgate %v serving on %s (log: %s)", args, addr, logPath)
	return conn
}

// waitServing watches grpc.health.v1 until the ext_proc service is SERVING.
func waitServing(t *testing.T, conn *grpc.ClientConn, proc *process, logPath string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	go func() {
		select {
		case <-proc.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for ctx.Err() == nil {
		stream, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: extproc.ServiceName}, grpc.WaitForReady(true))
		if err != nil {
			continue
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				break // reconnect: the server may not have been up yet
			}
			if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				return
			}
		}
	}
	t.Fatalf("corsgate never reported %s SERVING (exited: %v); its log is %s:\n%s",
		extproc.ServiceName, proc.exited(), logPath, readFile(logPath))
}

// process is a child process that dies with the test binary: it is started
// from a goroutine locked to its OS thread with Pdeathsig, so that even a
// test binary killed by `go test -timeout` leaves nothing behind (the kernel
// signals on the death of the starting thread, hence the lock; see
// https://go.dev/issue/27505).
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's error, valid after done
}

func startProcess(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, done: make(chan struct{})}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread ends with the process
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to shut down gracefully and kills it if it does not.
// A graceful stop that fails is reported: corsgate must shut down cleanly.
func (p *process) stop(t *testing.T, name string) {
	if p.exited() {
		t.Errorf("%s exited before the test ended: %v", name, p.err)
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		var exit *exec.ExitError
		if p.err != nil && !errors.As(p.err, &exit) {
			t.Errorf("%s: %v", name, p.err)
		} else if p.err != nil {
			t.Errorf("%s did not stop cleanly on SIGTERM: %v", name, p.err)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within 30s of SIGTERM and was killed", name)
	}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	const max = 8 << 10
	if len(b) > max {
		return "...\n" + string(b[len(b)-max:])
	}
	return string(b)
}
