// Package envtesting starts a real kube-apiserver and etcd for the tests
// (controller-runtime's envtest, built into bin/k8s by `make test`, which
// sets KUBEBUILDER_ASSETS): the product's CRDs from config/crd/bases
// installed, optionally the Gateway API's, an uncached client with the
// scheme, kubeconfigs and the pinned kubectl for users of it, and Eventually
// to wait for what the controllers do asynchronously.
//
//	c := envtesting.New(t, envtesting.Options{GatewayAPI: envtesting.GatewaysAndRoutes})
//	admin := c.User(t, "admin", "system:masters")
//	admin.Kubectl(t, manifest, "apply", "-f", "-")
//
// It is test tooling: nothing in the product imports it.
package envtesting

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
)

// The Gateway API CRDs (the standard channel of the module in go.mod), by
// resource name, for Options.GatewayAPI.
var (
	// GatewaysAndRoutes is what the controllers watch.
	GatewaysAndRoutes = []string{"gateways", "httproutes"}
	// GatewayClassesGatewaysAndRoutes adds the GatewayClasses that
	// --gateway-classes selects by.
	GatewayClassesGatewaysAndRoutes = []string{"gatewayclasses", "gateways", "httproutes"}
)

// Options says what the control plane starts with. The zero value is the
// product's CRDs and nothing else.
type Options struct {
	// Assets is the directory of kube-apiserver, etcd and kubectl; empty
	// is Assets().
	Assets string
	// NoCRDs starts an empty cluster: not even config/crd/bases.
	NoCRDs bool
	// GatewayAPI names the Gateway API CRDs to install, e.g.
	// GatewaysAndRoutes.
	GatewayAPI []string
	// CRDPaths are more CRD files or directories to install.
	CRDPaths []string
	// Scheme is the client's; nil is Scheme().
	Scheme *runtime.Scheme
	// APIServer replaces envtest's default kube-apiserver (flags, a fixed
	// certificate directory).
	APIServer *envtest.APIServer
	// StartTimeout bounds start-up; zero is two minutes, since envtest's
	// default 20 s is too short on a shared 2-core machine that is
	// compiling other packages. It measures nothing.
	StartTimeout time.Duration
	// StopTimeout bounds Stop; zero is envtest's default.
	StopTimeout time.Duration
	// QPS and Burst, if set, limit Config and so the Client (e.g. to the
	// binary's --kube-api-qps/--kube-api-burst defaults, 50 and 100).
	QPS   float32
	Burst int
}

// Cluster is a started control plane.
type Cluster struct {
	Env *envtest.Environment
	// Config is envtest's admin configuration; Client an uncached client
	// of it, so that tests see the API server's state, not a cache's.
	Config *rest.Config
	Client client.Client
	// Assets is the directory of kube-apiserver, etcd and kubectl.
	Assets string
	// Kubeconfig is a kubeconfig file for Config (envtest's admin).
	Kubeconfig string
	dir        string
}

// SetLogger gives controller-runtime (and envtest, which logs through it) a
// logger to stderr: errors only, to keep test output readable, or everything
// with CORSGATE_TEST_VERBOSE set.
func SetLogger() {
	level := zapcore.ErrorLevel
	if os.Getenv("CORSGATE_TEST_VERBOSE") != "" {
		level = zapcore.DebugLevel
	}
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
}

// Scheme is client-go's types, corsgate's API and the Gateway API v1.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	_ = gwapiv1.Install(s)
	return s
}

// Start starts a control plane; for a TestMain. The caller stops it.
func Start(o Options) (*Cluster, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets := o.Assets
	if assets == "" {
		if assets, err = Assets(); err != nil {
			return nil, err
		}
	}
	var crds []string
	if !o.NoCRDs {
		crds = append(crds, filepath.Join(root, "config", "crd", "bases"))
	}
	if len(o.GatewayAPI) > 0 {
		gw, err := GatewayAPICRDs(o.GatewayAPI...)
		if err != nil {
			return nil, err
		}
		crds = append(crds, gw...)
	}
	crds = append(crds, o.CRDPaths...)
	if o.StartTimeout == 0 {
		o.StartTimeout = 2 * time.Minute
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        crds,
		ErrorIfCRDPathMissing:    len(crds) > 0,
		ControlPlaneStartTimeout: o.StartTimeout,
		ControlPlaneStopTimeout:  o.StopTimeout,
	}
	if o.APIServer != nil {
		env.ControlPlane.APIServer = o.APIServer
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	if o.QPS != 0 {
		cfg.QPS, cfg.Burst = o.QPS, o.Burst
	}
	c := &Cluster{Env: env, Config: cfg, Assets: assets}
	fail := func(err error) (*Cluster, error) { return nil, errors.Join(err, c.Stop()) }
	scheme := o.Scheme
	if scheme == nil {
		scheme = Scheme()
	}
	if c.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return fail(err)
	}
	if c.dir, err = os.MkdirTemp("", "corsgate-envtest-"); err != nil {
		return fail(err)
	}
	c.Kubeconfig = filepath.Join(c.dir, "admin.kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, env.KubeConfig, 0o600); err != nil {
		return fail(err)
	}
	return c, nil
}

// New starts a control plane of the test's own, stopped at its end.
func New(t testing.TB, o Options) *Cluster {
	t.Helper()
	c, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Logf("stopping envtest: %v", err)
		}
	})
	return c
}

// Stop stops the control plane and removes the kubeconfigs.
func (c *Cluster) Stop() error {
	err := c.Env.Stop()
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
	return err
}

// User is a user of the API server, authenticated by a client certificate.
type User struct {
	Name string
	// Config is the user's client configuration; Kubeconfig a file of it.
	Config     *rest.Config
	Kubeconfig string
	kubectl    string
}

// AddUser adds a user in groups (e.g. "system:masters") and writes a
// kubeconfig for it.
func (c *Cluster) AddUser(name string, groups ...string) (*User, error) {
	u, err := c.Env.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, err
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(c.dir, name+"-*.kubeconfig")
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(kc); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &User{Name: name, Config: u.Config(), Kubeconfig: f.Name(), kubectl: c.KubectlPath()}, nil
}

// User is AddUser for a test.
func (c *Cluster) User(t testing.TB, name string, groups ...string) *User {
	t.Helper()
	u, err := c.AddUser(name, groups...)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Admin is envtest's admin user, as Config and Kubeconfig.
func (c *Cluster) Admin() *User {
	return &User{Name: "admin", Config: c.Config, Kubeconfig: c.Kubeconfig, kubectl: c.KubectlPath()}
}

// KubectlPath is the pinned kubectl next to kube-apiserver.
func (c *Cluster) KubectlPath() string { return filepath.Join(c.Assets, "kubectl") }

// Command is kubectl as the user, not started.
func (u *User) Command(args ...string) *exec.Cmd {
	return exec.Command(u.kubectl, append([]string{"--kubeconfig", u.Kubeconfig}, args...)...)
}

// Kubectl runs kubectl as the user with stdin and returns its combined
// output; it fails the test if kubectl fails.
func (u *User) Kubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := u.Command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Eventually polls cond every 20 ms until it holds. If it has not held
// within limit, a hang guard and not a performance assertion, it fails the
// test with what and the last value cond reported.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: never happened; last: %s", what, last)
}

// Assets is KUBEBUILDER_ASSETS, or else bin/k8s of the repository if
// `make envtest-assets` built it there.
func Assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	if root, err := RepoRoot(); err == nil {
		dir := filepath.Join(root, "bin", "k8s")
		if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds kube-apiserver, etcd and kubectl into bin/k8s")
}

// RepoRoot is the directory of corsgate's go.mod, found upwards from the
// working directory (a test's is its package's).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if module(filepath.Join(dir, "go.mod")) == "github.com/corsgate/corsgate" {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("envtesting: not inside the corsgate repository")
		}
		dir = parent
	}
}

func module(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if m, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
			return strings.TrimSpace(m)
		}
	}
	return ""
}

// GatewayAPICRDs are the files of the named Gateway API CRDs in the
// standard channel of the module go.mod pins.
func GatewayAPICRDs(resources ...string) ([]string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		return nil, fmt.Errorf("finding the Gateway API module (go list -m sigs.k8s.io/gateway-api): %v; run `go mod download`", err)
	}
	std := filepath.Join(dir, "config", "crd", "standard")
	files := make([]string, len(resources))
	for i, r := range resources {
		files[i] = filepath.Join(std, "gateway.networking.k8s.io_"+r+".yaml")
	}
	return files, nil
}

// FreeAddr returns a loopback address whose port was free a moment ago and
// that no other call in this test binary has returned: the kernel may hand
// a just-closed port out again, and two listeners of one corsgate (metrics
// and probes) on one port make it exit.
func FreeAddr(t testing.TB) string {
	t.Helper()
	givenAddrs.Lock()
	defer givenAddrs.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !givenAddrs.m[addr] {
			givenAddrs.m[addr] = true
			return addr
		}
	}
}

var givenAddrs = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}
