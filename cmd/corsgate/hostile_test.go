package main_test

// Faults of file mode and of the gRPC server, each driven through the built
// binary the way they were first seen: a policy file rewritten in place, a
// policy file deleted, an empty policy folder, a health Watch open at
// SIGTERM, streams that never send a message, an oversized Origin, and a
// configuration error. Each test counts what Envoy would have answered.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// outputBuffer collects the binary's output; tests read it while it runs.
type outputBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *outputBuffer) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *outputBuffer) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// proc is the binary started with its HTTP endpoints on.
type proc struct {
	cmd     *exec.Cmd
	addr    string // gRPC
	metrics string
	probes  string
	out     *outputBuffer
	exited  chan struct{}
	err     error // the exit status, once exited is closed
}

// run starts the binary with args plus its three addresses, and waits for
// SERVING.
func run(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{addr: freePort(t), metrics: freePort(t), probes: freePort(t), out: &outputBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(binary, append([]string{"--grpc-bind-address", p.addr, "--metrics-bind-address", p.metrics,
		"--health-probe-bind-address", p.probes}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("corsgate output:\n%s", p.out)
		}
	})
	hc := healthpb.NewHealthClient(dial(t, p.addr))
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "envoy.service.ext_proc.v3.ExternalProcessor"})
		if err == nil && r.Status == healthpb.HealthCheckResponse_SERVING {
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("corsgate exited (%v) before serving; output:\n%s", p.err, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("corsgate never became SERVING (last error %v); output:\n%s", err, p.out)
		}
	}
}

// waitLog waits for a line of output with all of subs.
func (p *proc) waitLog(t *testing.T, subs ...string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for line := range strings.SplitSeq(p.out.String(), "\n") {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(line, s)
			}
			if all {
				return line
			}
		}
	}
	t.Fatalf("no output line with %q", subs)
	return ""
}

func getURL(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric reads one unlabelled gauge from /metrics; -1 when absent.
func (p *proc) metric(t *testing.T, name string) float64 {
	t.Helper()
	_, body := getURL(t, "http://"+p.metrics+"/metrics")
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

const policyDoc = `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata: {name: %s}
spec:
  hosts: [%s]
  allowOrigins: [https://one.example, https://two.example]
  allowMethods: [PUT]
  allowHeaders: [content-type, x-request-id]
  maxAge: 600
`

// answered sends a preflight from https://one.example for PUT and reports
// whether corsgate answered it with 204 at the edge, as the policy says.
func answered(t *testing.T, sim *envoystandin.Sim, host string) (bool, *envoystandin.Response) {
	res, err := sim.Do(context.Background(), envoystandin.Request{Method: "OPTIONS", Authority: host, Path: "/",
		Headers: envoystandin.NewHeaders("origin", "https://one.example", "access-control-request-method", "PUT",
			"access-control-request-headers", "content-type")}, upstream)
	if err != nil {
		t.Error(err)
		return false, nil
	}
	return res.Status == 204 && !res.UpstreamReached && len(res.Headers.Values("access-control-allow-origin")) == 1, res
}

// Finding 1: a policy file rewritten in place (truncated, then written in
// pieces 150 ms apart, as `cat > file` or an editor does) must never be
// served half-written: every preflight during and after the write is
// answered by the policy, none passes through to the upstream.
func TestTornWriteThroughTheBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	content := fmt.Sprintf(policyDoc, "api", "a.example")
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	p := run(t, "--policies", file)
	sim := envoy(t, p.addr)
	if ok, res := answered(t, sim, "a.example"); !ok {
		t.Fatalf("before the write: %+v, want 204 at the edge", res)
	}

	var total, wrong atomic.Int64
	var firstWrong, lastWrong atomic.Int64 // ns since start
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			ok, _ := answered(t, sim, "a.example")
			total.Add(1)
			if !ok {
				at := int64(time.Since(start))
				firstWrong.CompareAndSwap(0, at)
				lastWrong.Store(at)
				wrong.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	// The same policy rewritten: only the order of the fields changes, so
	// every complete version answers the same.
	next := strings.Replace(content, "  maxAge: 600\n", "", 1)
	next = strings.Replace(next, "spec:\n", "spec:\n  maxAge: 600\n", 1)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	pieces := 8
	size := (len(next) + pieces - 1) / pieces
	for i := 0; i < len(next); i += size {
		time.Sleep(150 * time.Millisecond)
		if _, err := f.WriteString(next[i:min(i+size, len(next))]); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	// Long enough for any settle interval up to 2 s, and the reload.
	time.Sleep(3 * time.Second)
	close(done)
	wg.Wait()
	t.Logf("torn write: %d of %d preflights not answered by the policy (from %v to %v after the truncation)",
		wrong.Load(), total.Load(), time.Duration(firstWrong.Load()).Round(time.Millisecond), time.Duration(lastWrong.Load()).Round(time.Millisecond))
	if wrong.Load() != 0 {
		t.Errorf("%d of %d preflights were not answered by the policy while its file was rewritten", wrong.Load(), total.Load())
	}
	if ok, res := answered(t, sim, "a.example"); !ok {
		t.Errorf("after the write: %+v, want 204", res)
	}
}

// Finding 2: deleting a policy file means the same in file and folder mode,
// and says so in the log, the metrics and /readyz. In a folder, the file's
// policies stop (named in the log) and the others serve; when the deletion
// leaves no policy at all (file mode, or the last file) the last table keeps
// serving and the source reports itself degraded.
func TestDeletedPolicyFileThroughTheBinary(t *testing.T) {
	t.Parallel()
	t.Run("folder", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(fmt.Sprintf(policyDoc, "a", "a.example")), 0o644)
		os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(fmt.Sprintf(policyDoc, "b", "b.example")), 0o644)
		p := run(t, "--policies", dir)
		sim := envoy(t, p.addr)
		if got := p.metric(t, "corsgate_policy_source_policies"); got != 2 {
			t.Fatalf("corsgate_policy_source_policies = %v before the deletion, want 2", got)
		}
		os.Remove(filepath.Join(dir, "b.yaml"))
		line := p.waitLog(t, "policy file removed", "b.yaml")
		if !strings.Contains(line, "default/b") {
			t.Errorf("the log line %q does not name the policy dropped", line)
		}
		if ok, _ := answered(t, sim, "b.example"); ok {
			t.Error("b.example is still answered by the deleted file's policy")
		}
		if ok, res := answered(t, sim, "a.example"); !ok {
			t.Errorf("a.example: %+v, want the other file's policy to keep serving", res)
		}
		for name, want := range map[string]float64{"corsgate_policy_source_policies": 1, "corsgate_policy_source_files": 1, "corsgate_policy_source_degraded": 0} {
			if got := p.metric(t, name); got != want {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
		os.Remove(filepath.Join(dir, "a.yaml"))
		p.waitLog(t, "reloading policies", "no CorsPolicy found")
		checkDegraded(t, p, sim, "a.example")
	})
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		file := filepath.Join(dir, "a.yaml")
		os.WriteFile(file, []byte(fmt.Sprintf(policyDoc, "a", "a.example")), 0o644)
		p := run(t, "--policies", file)
		sim := envoy(t, p.addr)
		os.Remove(file)
		p.waitLog(t, "reloading policies", "no longer exists")
		checkDegraded(t, p, sim, "a.example")
	})
}

// checkDegraded: the last table serves host, and the metrics and /readyz say
// that it is not what the source holds.
func checkDegraded(t *testing.T, p *proc, sim *envoystandin.Sim, host string) {
	t.Helper()
	if ok, res := answered(t, sim, host); !ok {
		t.Errorf("%s: %+v, want the last good policy to keep serving", host, res)
	}
	if got := p.metric(t, "corsgate_policy_source_degraded"); got != 1 {
		t.Errorf("corsgate_policy_source_degraded = %v, want 1", got)
	}
	code, body := getURL(t, "http://"+p.probes+"/readyz")
	if code != 200 || !strings.Contains(body, "degraded") || !strings.Contains(body, "last good policies keep serving") {
		t.Errorf("/readyz = %d %q, want 200 with the degraded reason", code, body)
	}
}

// Finding 3: an empty policy folder (a mis-mounted ConfigMap) is refused at
// start-up with a message that says what was expected, unless
// --allow-empty-policies says that empty is intended.
func TestEmptyFolderThroughTheBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--policies", dir, "--grpc-bind-address", freePort(t),
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0").CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("corsgate kept running on an empty folder; output:\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("exit: %v; want a non-zero exit", err)
	}
	for _, want := range []string{dir, "no CorsPolicy found", "kind: CorsPolicy", "--allow-empty-policies"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	p := run(t, "--policies", dir, "--allow-empty-policies")
	if got := p.metric(t, "corsgate_policy_source_policies"); got != 0 {
		t.Errorf("corsgate_policy_source_policies = %v, want 0", got)
	}
}

// Finding 5: an open grpc.health.v1 Watch (grpc-go's client-side health
// checking keeps one per connection) ends when shutdown starts, after a last
// NOT_SERVING, instead of holding SIGTERM for --grpc-shutdown-timeout; the
// shutdown and its duration are logged.
func TestShutdownWithAHealthWatchThroughTheBinary(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = 20 * time.Second
	p := run(t, "--policies", "testdata/design.yaml", "--grpc-shutdown-timeout", shutdownTimeout.String())
	watch, err := healthpb.NewHealthClient(dial(t, p.addr)).Watch(context.Background(),
		&healthpb.HealthCheckRequest{Service: "envoy.service.ext_proc.v3.ExternalProcessor"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch: %v %v, want SERVING", r, err)
	}
	began := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	var statuses []healthpb.HealthCheckResponse_ServingStatus
	var end error
	for {
		r, err := watch.Recv()
		if err != nil {
			end = err
			break
		}
		statuses = append(statuses, r.Status)
	}
	<-p.exited
	took := time.Since(began)
	t.Logf("SIGTERM with a health Watch open: exit after %v (shutdown timeout %v), Watch ended with %v after %v", took.Round(time.Millisecond), shutdownTimeout, status.Code(end), statuses)
	if took > shutdownTimeout/2 {
		t.Errorf("exit took %v: the Watch held the graceful stop", took)
	}
	if p.err != nil {
		t.Errorf("exit status %v, want 0", p.err)
	}
	if len(statuses) == 0 || statuses[len(statuses)-1] != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Watch saw %v before it ended, want NOT_SERVING last", statuses)
	}
	if status.Code(end) != codes.Unavailable {
		t.Errorf("Watch ended with %v, want UNAVAILABLE", end)
	}
	p.waitLog(t, "shutting down")
	p.waitLog(t, "ext_proc server stopped", "duration")
	p.waitLog(t, "corsgate stopped")
}

// Finding 6: streams that never send a message are not held forever (idle
// timeout), and streams beyond the cap are refused at once.
func TestIdleStreamsThroughTheBinary(t *testing.T) {
	t.Parallel()
	openIdle := func(t *testing.T, addr string, n int) []codes.Code {
		t.Helper()
		client := extprocv3.NewExternalProcessorClient(dial(t, addr))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.Cleanup(cancel)
		codesSeen := make([]codes.Code, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				stream, err := client.Process(ctx)
				if err == nil {
					_, err = stream.Recv()
				}
				codesSeen[i] = status.Code(err)
			})
		}
		wg.Wait()
		return codesSeen
	}
	count := func(cs []codes.Code) map[codes.Code]int {
		m := map[codes.Code]int{}
		for _, c := range cs {
			m[c]++
		}
		return m
	}
	t.Run("idle timeout", func(t *testing.T) {
		t.Parallel()
		p := run(t, "--policies", "testdata/design.yaml", "--grpc-stream-idle-timeout", "1s")
		began := time.Now()
		got := count(openIdle(t, p.addr, 1000))
		t.Logf("1000 streams that never send: %v after %v", got, time.Since(began).Round(time.Millisecond))
		if got[codes.DeadlineExceeded] != 1000 {
			t.Errorf("idle streams ended with %v, want 1000 DEADLINE_EXCEEDED", got)
		}
		if ok, res := answered(t, envoy(t, p.addr), "api.example.com"); res == nil || res.UpstreamReached || !ok && res.Status != 403 {
			t.Errorf("after the idle streams: %+v, want an answer at the edge", res)
		}
	})
	t.Run("cap on streams", func(t *testing.T) {
		t.Parallel()
		p := run(t, "--policies", "testdata/design.yaml", "--grpc-stream-idle-timeout", "2s", "--grpc-max-streams", "50")
		got := count(openIdle(t, p.addr, 200))
		t.Logf("200 streams that never send, cap 50: %v", got)
		if got[codes.DeadlineExceeded] != 50 || got[codes.ResourceExhausted] != 150 {
			t.Errorf("streams ended with %v, want 50 DEADLINE_EXCEEDED and 150 RESOURCE_EXHAUSTED", got)
		}
	})
}

// Finding 6, continued: a huge Origin is never allowed, and is answered at
// once; with --grpc-max-message-bytes set to what the Envoy in front can
// send, a larger message is refused by gRPC before it is decoded.
func TestOversizedOriginThroughTheBinary(t *testing.T) {
	t.Parallel()
	huge := "https://" + strings.Repeat("a", 1<<20) + ".example"
	preflight := func(sim *envoystandin.Sim) (*envoystandin.Response, error) {
		return sim.Do(context.Background(), envoystandin.Request{Method: "OPTIONS", Authority: "api.example.com", Path: "/v2/orders",
			Headers: envoystandin.NewHeaders("origin", huge, "access-control-request-method", "PUT")}, upstream)
	}
	t.Run("answered 403", func(t *testing.T) {
		t.Parallel()
		p := run(t, "--policies", "testdata/design.yaml")
		sim := envoy(t, p.addr)
		var wg sync.WaitGroup
		var worst atomic.Int64
		for range 16 {
			wg.Go(func() {
				began := time.Now()
				res, err := preflight(sim)
				took := time.Since(began)
				if int64(took) > worst.Load() {
					worst.Store(int64(took))
				}
				if err != nil || res.Status != 403 || res.UpstreamReached || len(res.Headers.Values("access-control-allow-origin")) != 0 {
					t.Errorf("1 MiB Origin: %+v %v, want 403 at the edge without CORS headers", res, err)
				}
			})
		}
		wg.Wait()
		t.Logf("16 concurrent 1 MiB Origins: slowest answered in %v", time.Duration(worst.Load()).Round(time.Millisecond))
	})
	t.Run("message bound", func(t *testing.T) {
		t.Parallel()
		p := run(t, "--policies", "testdata/design.yaml", "--grpc-max-message-bytes", "65536")
		res, err := preflight(envoy(t, p.addr))
		if err == nil && (res.Status == 204 || res.UpstreamReached && res.Status < 500) {
			t.Errorf("a message above --grpc-max-message-bytes: %+v, want the stream refused (Envoy fails the request)", res)
		}
	})
}

// Finding 7: a configuration error is one readable line at error level,
// without a Go stack trace.
func TestConfigurationErrorIsOneLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc string
		args []string
		want string
	}{
		{desc: "missing policy path", args: []string{"--policies", "/nonexistent/policies"}, want: "/nonexistent/policies"},
		{desc: "TLS key without certificate", args: []string{"--policies", "testdata/design.yaml", "--grpc-tls-key-file", "k.pem"}, want: "--grpc-tls-cert-file and --grpc-tls-key-file go together"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, binary, append(tc.args, "--grpc-bind-address", freePort(t), "--metrics-bind-address", "0",
				"--health-probe-bind-address", "0")...).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
				t.Fatalf("exit: %v; want a non-zero exit; output:\n%s", err, out)
			}
			// Other lines (policies loaded, say) may come first; the error is
			// one line of its own, and nothing is a stack trace.
			var errorLines []map[string]any
			for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
				if strings.TrimSpace(sc.Text()) == "" {
					continue
				}
				var entry map[string]any
				if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
					t.Fatalf("a line that is not a JSON log entry (a stack trace?): %q\n%s", sc.Text(), out)
				}
				if _, ok := entry["stacktrace"]; ok {
					t.Errorf("a Go stack trace in the output:\n%s", out)
				}
				if entry["level"] == "error" {
					errorLines = append(errorLines, entry)
				}
			}
			if len(errorLines) != 1 {
				t.Fatalf("%d error lines, want one:\n%s", len(errorLines), out)
			}
			if msg, _ := errorLines[0]["error"].(string); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q lacks %q", msg, tc.want)
			}
		})
	}
}
