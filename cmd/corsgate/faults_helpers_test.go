package main_test

// Helpers of the Kubernetes-mode fault tests (faults_test.go): a control
// plane whose API server can be stopped and started again with the same
// address and certificates, a TCP proxy that partitions one corsgate from
// it, the binary in Kubernetes mode, and a load recorder that keeps every
// answer Envoy would have given during a fault.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/test/envoystandin"
	"github.com/corsgate/corsgate/test/envtesting"
	"github.com/corsgate/corsgate/test/gen"
)

// lockedBuffer collects a child process's output; the test reads it while
// the process writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var faultScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// controlPlaneTimeout bounds each start and stop of etcd and kube-apiserver;
// envtest's 20 s default is tight on a loaded 2-core machine.
const controlPlaneTimeout = 60 * time.Second

// apiServerStopTimeout is how long Stop waits after SIGTERM before SIGKILL.
// With clients watching, kube-apiserver drains for up to a minute; a test
// that loses its API server kills it after this, as a failed node would.
const apiServerStopTimeout = 3 * time.Second

// stopAPIServer stops env's API server and waits until its port refuses
// connections, so that a Start after it can bind the same port.
func stopAPIServer(t *testing.T, env *envtest.Environment) {
	t.Helper()
	api := env.ControlPlane.APIServer
	if err := api.Stop(); err != nil && !strings.Contains(err.Error(), "timeout waiting for process") {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(api.SecureServing.Address, api.SecureServing.Port)
	waitFor(t, 30*time.Second, "the stopped API server's port to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// startControlPlane starts etcd and a kube-apiserver with the CorsPolicy CRD.
// The API server's certificate directory is the test's own, not a fresh
// temporary one: envtest regenerates the serving CA for a fresh directory on
// every Start, and corsgate's kubeconfig would then no longer trust the
// restarted server. The secure port is kept across restarts too.
func startControlPlane(t *testing.T, apiServerFlags map[string]string) *envtest.Environment {
	t.Helper()
	api := &envtest.APIServer{CertDir: t.TempDir()}
	for k, v := range apiServerFlags {
		api.Configure().Set(k, v)
	}
	return envtesting.New(t, envtesting.Options{
		Scheme: faultScheme, APIServer: api, StartTimeout: controlPlaneTimeout, StopTimeout: apiServerStopTimeout,
	}).Env
}

// secondAPIServer starts another kube-apiserver on env's etcd: a client of
// it can change objects while env's own API server is down.
func secondAPIServer(t *testing.T, env *envtest.Environment) client.Client {
	t.Helper()
	plane := &envtest.ControlPlane{
		APIServer: &envtest.APIServer{CertDir: t.TempDir(), EtcdURL: env.ControlPlane.Etcd.URL,
			StartTimeout: controlPlaneTimeout, StopTimeout: controlPlaneTimeout},
		Etcd: env.ControlPlane.Etcd,
	}
	if err := plane.APIServer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.APIServer.Stop() })
	user, err := plane.AddUser(envtest.User{Name: "second-writer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(user.Config(), client.Options{Scheme: faultScheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// adminClient is a client of env's API server.
func adminClient(t *testing.T, env *envtest.Environment) client.Client {
	t.Helper()
	c, err := client.New(env.Config, client.Options{Scheme: faultScheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kubeconfig writes a kubeconfig for a system:masters user of env's API
// server; via, if set, replaces the server's host:port (a proxy in front of
// it; the serving certificate is valid for 127.0.0.1 on any port).
func kubeconfig(t *testing.T, env *envtest.Environment, via string) string {
	t.Helper()
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "corsgate", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := user.Config()
	server := apiServerAddr(t, cfg)
	if via != "" {
		server = via
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: "https://" + server, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["corsgate"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "corsgate", Namespace: "default"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func apiServerAddr(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	if u, err := url.Parse(cfg.Host); err == nil && u.Host != "" {
		return u.Host
	}
	return cfg.Host
}

// policy is a CorsPolicy in "default" that allows origin to PUT on host.
func policy(name, host, origin string) *v1alpha1.CorsPolicy {
	p := gen.CorsPolicy(name, gen.WithHosts(host), gen.WithOrigins(origin), gen.WithMethods("PUT"))
	// The API server assigns these.
	p.UID, p.Generation, p.CreationTimestamp = "", 0, metav1.Time{}
	return p
}

// setOrigin changes a policy's allowed origin through c.
func setOrigin(t *testing.T, c client.Client, name, origin string) {
	t.Helper()
	var p v1alpha1.CorsPolicy
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	p.Spec.AllowOrigins = []string{origin}
	if err := c.Update(context.Background(), &p); err != nil {
		t.Fatal(err)
	}
}

// kubeCorsgate is the binary in Kubernetes mode.
type kubeCorsgate struct {
	cmd    *exec.Cmd
	addr   string // ext_proc gRPC
	probes string // /healthz, /readyz
	out    *lockedBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // its exit, once done is closed
}

// startKubeCorsgate runs the binary against kubeconfig, without waiting for
// anything. Host ownership is Open: these tests are about the API server,
// and CorsHostGrants would only add objects to every scenario.
func startKubeCorsgate(t *testing.T, kubeconfig string, args ...string) *kubeCorsgate {
	t.Helper()
	return runKubeCorsgate(t, kubeconfig, append([]string{"--host-ownership", "Open"}, args...)...)
}

// runKubeCorsgate runs the binary against kubeconfig on free ports with its
// defaults and args, without waiting for anything; it is killed when the
// test ends.
func runKubeCorsgate(t *testing.T, kubeconfig string, args ...string) *kubeCorsgate {
	t.Helper()
	s := &kubeCorsgate{addr: freePort(t), probes: freePort(t), out: &lockedBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(binary, append([]string{"--grpc-bind-address", s.addr, "--metrics-bind-address", "0",
		"--health-probe-bind-address", s.probes}, args...)...)
	s.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("corsgate %s output:\n%s", s.addr, s.out)
		}
	})
	return s
}

func (s *kubeCorsgate) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// health is the gRPC health of the ext_proc service, or an error if the
// server cannot be asked.
func (s *kubeCorsgate) health(conn *grpc.ClientConn) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.ext_proc.v3.ExternalProcessor"})
	if err != nil {
		return 0, err
	}
	return r.Status, nil
}

// readyz is the HTTP status of /readyz, or 0 if nothing answers.
func (s *kubeCorsgate) readyz() int {
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get("http://" + s.probes + "/readyz")
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// waitFor polls cond every 50 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for deadline := start.Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
	}
	return time.Since(start)
}

// plainConn is a gRPC connection to addr, closed at the end of the test.
func plainConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// answer is what a browser sees of a preflight: the status and
// Access-Control-Allow-Origin. Through the stand-in's upstream (405 to
// OPTIONS with its own "*"), the three outcomes differ: 204 and the origin
// (allowed), 403 and nothing (refused at the edge), 405 and "*" (no policy:
// the upstream answered).
type answer struct {
	status int
	acao   string
}

func (a answer) String() string { return fmt.Sprintf("%d %q", a.status, a.acao) }

var (
	noPolicy = answer{405, "*"}
	refused  = answer{403, ""}
)

func allowed(origin string) answer { return answer{204, origin} }

// ask is one preflight the load sends again and again.
type ask struct{ host, origin string }

// exchange is one preflight sent during a test and what it got.
type exchange struct {
	ask        int // index into load.asks
	start, end time.Time
	got        answer
	err        error // the harness failed (not an Envoy answer)
}

// load sends the asks round-robin from a few goroutines through sim until
// stopped, and keeps every exchange.
type load struct {
	asks []ask
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	ex   []exchange
}

func startLoad(sim *envoystandin.Sim, workers int, asks ...ask) *load {
	l := &load{asks: asks, stop: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				k := i % len(asks)
				x := exchange{ask: k, start: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				res, err := sim.Do(ctx, envoystandin.Request{Method: "OPTIONS", Authority: asks[k].host, Path: "/",
					Headers: envoystandin.NewHeaders("origin", asks[k].origin, "access-control-request-method", "PUT")}, upstream)
				cancel()
				x.end, x.err = time.Now(), err
				if err == nil {
					x.got = answer{res.Status, res.Headers.Get("access-control-allow-origin")}
				}
				l.mu.Lock()
				l.ex = append(l.ex, x)
				l.mu.Unlock()
				time.Sleep(5 * time.Millisecond) // leave the CPU to the control plane
			}
		})
	}
	return l
}

// finish stops the load and returns every exchange.
func (l *load) finish() []exchange {
	close(l.stop)
	l.wg.Wait()
	return l.ex
}

// checkTransition asserts that every exchange got the before or the after
// answer of its ask; that every exchange started in [frozenFrom, frozenTo)
// got the before answer; and that no exchange got a before answer once an
// exchange of the same ask had finished with the after answer (the table
// moves forward only). It returns how many exchanges got each.
func checkTransition(t *testing.T, ex []exchange, asks []ask, before, after []answer, frozenFrom, frozenTo time.Time) (nBefore, nAfter, nFrozen int) {
	t.Helper()
	firstAfter := make([]time.Time, len(asks))
	wrong := 0
	for _, x := range ex {
		if x.err == nil && x.got == after[x.ask] && before[x.ask] != after[x.ask] && (firstAfter[x.ask].IsZero() || x.end.Before(firstAfter[x.ask])) {
			firstAfter[x.ask] = x.end
		}
	}
	for _, x := range ex {
		a := asks[x.ask]
		frozen := !x.start.Before(frozenFrom) && x.start.Before(frozenTo)
		switch {
		case x.err != nil:
			wrong++
			if wrong <= 5 {
				t.Errorf("%s from %s at %s: %v", a.host, a.origin, x.start.Format("15:04:05.000"), x.err)
			}
		case frozen && x.got != before[x.ask]:
			wrong++
			if wrong <= 5 {
				t.Errorf("%s from %s at %s, during the fault: %s, want the last table's answer %s", a.host, a.origin, x.start.Format("15:04:05.000"), x.got, before[x.ask])
			}
		case x.got == before[x.ask]:
			nBefore++
			if frozen {
				nFrozen++
			}
			if !firstAfter[x.ask].IsZero() && x.start.After(firstAfter[x.ask]) && before[x.ask] != after[x.ask] {
				wrong++
				if wrong <= 5 {
					t.Errorf("%s from %s at %s: %s again after %s was served at %s", a.host, a.origin, x.start.Format("15:04:05.000"), x.got, after[x.ask], firstAfter[x.ask].Format("15:04:05.000"))
				}
			}
		case x.got == after[x.ask]:
			nAfter++
		default:
			wrong++
			if wrong <= 5 {
				t.Errorf("%s from %s at %s: %s, want %s or %s", a.host, a.origin, x.start.Format("15:04:05.000"), x.got, before[x.ask], after[x.ask])
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d exchanges got a wrong answer", wrong, len(ex))
	}
	return nBefore, nAfter, nFrozen
}

// tcpProxy forwards connections to a target until cut; while cut it holds
// no connection and resets every new one, as a partition between corsgate
// and its API server would look to corsgate.
type tcpProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { l.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *tcpProxy) addr() string { return p.l.Addr().String() }

func (p *tcpProxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, as an unreachable peer behind a firewall that rejects
		}
		c.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		p.drop(c)
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	p.drop(c)
	p.drop(up)
}

func (p *tcpProxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// setCut partitions (true) or heals (false); cutting closes every
// connection in flight, watches included.
func (p *tcpProxy) setCut(cut bool) {
	p.mu.Lock()
	p.cut = cut
	var open []net.Conn
	if cut {
		for c := range p.conns {
			open = append(open, c)
		}
	}
	p.mu.Unlock()
	for _, c := range open {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// etcdCompact compacts etcd's key space up to its current revision, through
// etcd's gRPC-JSON gateway (no etcd client library needed): every watch
// that resumes from an older revision then fails with "required revision
// has been compacted", which the API server passes on as 410 Gone (expired).
func etcdCompact(t *testing.T, etcd *url.URL) int64 {
	t.Helper()
	post := func(path string, body any, out any) {
		t.Helper()
		b, _ := json.Marshal(body)
		res, err := http.Post(etcd.String()+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("etcd %s: %s %s", path, res.Status, raw)
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("etcd %s: %v in %s", path, err, raw)
			}
		}
	}
	var status struct {
		Header struct {
			Revision json.Number `json:"revision"`
		} `json:"header"`
	}
	post("/v3/maintenance/status", struct{}{}, &status)
	rev, err := status.Header.Revision.Int64()
	if err != nil || rev == 0 {
		t.Fatalf("etcd revision %q: %v", status.Header.Revision, err)
	}
	post("/v3/kv/compaction", map[string]any{"revision": rev, "physical": true}, nil)
	return rev
}
