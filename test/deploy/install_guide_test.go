package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/corsgate/corsgate/test/envtesting"
)

// The markers docs/install.md puts on the line before a fenced block: run
// the block's commands, or compare the block with what the last command
// printed.
const (
	markRun    = "<!-- tested: test/deploy/install_guide_test.go runs this block -->"
	markOutput = "<!-- tested: test/deploy/install_guide_test.go compares this with what the command above prints -->"
)

// guideBlock is one marked fenced block of the guide.
type guideBlock struct {
	line   int    // of the opening fence, for messages
	output bool   // markOutput: expected output; otherwise commands to run
	body   string // the block's content, without the fences
}

// guideBlocks reads the marked blocks of a Markdown file, in order.
func guideBlocks(t *testing.T, path string) []guideBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var blocks []guideBlock
	for i := 0; i < len(lines); i++ {
		mark := strings.TrimSpace(lines[i])
		if mark != markRun && mark != markOutput {
			if strings.HasPrefix(mark, "<!-- tested") {
				t.Fatalf("%s:%d: unknown marker %q", path, i+1, mark)
			}
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "```") {
			t.Fatalf("%s:%d: the marker is not followed by a fenced block", path, i+1)
		}
		// A block inside a list item is indented; its lines lose the
		// fence's indentation.
		fence := lines[i+1]
		indent := fence[:len(fence)-len(strings.TrimLeft(fence, " "))]
		if mark == markRun && strings.TrimPrefix(fence, indent+"```") != "sh" {
			t.Fatalf("%s:%d: a block to run must be ```sh", path, i+2)
		}
		b := guideBlock{line: i + 2, output: mark == markOutput}
		var body []string
		for i += 2; i < len(lines) && lines[i] != indent+"```"; i++ {
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: the block is never closed", path, b.line)
		}
		b.body = strings.Join(body, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

// heredoc matches the start of a here-document (<<'EOF', <<EOF, <<-EOF) and
// captures its delimiter.
var heredoc = regexp.MustCompile(`<<-?\s*'?"?([A-Za-z_]+)'?"?`)

// guideCommands splits a shell block into the commands a reader pastes one
// at a time: a line, with its backslash continuations and its here-document.
// Comment lines and blank lines are dropped.
func guideCommands(body string) []string {
	var cmds []string
	var cur []string
	end := "" // the here-document delimiter being read
	for line := range strings.SplitSeq(body, "\n") {
		switch {
		case end != "":
			cur = append(cur, line)
			if line == end {
				end = ""
			}
		case len(cur) == 0 && (strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#")):
			continue
		default:
			cur = append(cur, line)
			if m := heredoc.FindStringSubmatch(line); m != nil {
				end = m[1]
			}
		}
		if end == "" && !strings.HasSuffix(line, `\`) && len(cur) > 0 {
			cmds = append(cmds, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	if len(cur) > 0 {
		cmds = append(cmds, strings.Join(cur, "\n"))
	}
	return cmds
}

// TestInstallGuideCommands checks that guideCommands splits as a reader
// would: the test below is only as good as this.
func TestInstallGuideCommands(t *testing.T) {
	t.Parallel()
	got := guideCommands(`# a comment
kubectl create namespace a
helm install x charts/x \
  --namespace a   # trailing comment

kubectl apply -f - <<'EOF'
kind: X
# not a comment here
EOF
kubectl get x`)
	want := []string{
		"kubectl create namespace a",
		"helm install x charts/x \\\n  --namespace a   # trailing comment",
		"kubectl apply -f - <<'EOF'\nkind: X\n# not a comment here\nEOF",
		"kubectl get x",
	}
	if !slices.Equal(got, want) {
		t.Errorf("guideCommands =\n%q\nwant\n%q", got, want)
	}
}

// TestSameTable: the comparison ignores AGE and spacing, and keeps empty
// cells in their column.
func TestSameTable(t *testing.T) {
	t.Parallel()
	const doc = `NAME   HOSTS   TARGETS   READY   AGE
a      [x]               True    1m`
	for _, tc := range []struct {
		got string
		ok  bool
	}{
		{got: "NAME  HOSTS  TARGETS  READY  AGE\na     [x]             True   3s", ok: true},
		{got: "NAME  HOSTS  TARGETS  READY  AGE\na     [x]             False  3s"},
		// The same words, one column over: READY empty, True under TARGETS.
		{got: "NAME  HOSTS  TARGETS  READY  AGE\na     [x]    True           3s"},
		{got: "NAME  HOSTS  READY  AGE\na     [x]    True   3s"},
	} {
		if err := sameTable(tc.got, doc); (err == nil) != tc.ok {
			t.Errorf("sameTable(%q) = %v, want ok %v", tc.got, err, tc.ok)
		}
	}
}

// needsKubelet are the guide's commands that wait for what only a kubelet and
// kube-controller-manager do (run the pods, report them ready); envtest runs
// neither, so the test does their part instead: it starts the pod's container
// as the pod would run it, and waits for it to be ready.
var needsKubelet = map[string]bool{
	"kubectl -n corsgate-system rollout status deployment/corsgate": true,
}

// guideChecks are what some commands' output must show, beyond succeeding:
// the troubleshooting section's command must show the namespaces admitted,
// including the one the guide's helm upgrade adds.
var guideChecks = map[string][]string{
	"kubectl -n corsgate-system get networkpolicy corsgate": {`"kubernetes.io/metadata.name"`, `"envoy-gateway-system"`, `"edge"`},
}

// TestInstallGuide follows docs/install.md as written: it runs every marked
// command, in order, with the pinned kubectl and helm, against a new API
// server (envtest: kube-apiserver and etcd, nothing installed), and compares
// the marked outputs. The chart's CRDs come from helm install; the corsgate
// binary runs as the chart's Deployment runs it, with the chart's
// ServiceAccount, so the status the guide shows is written by corsgate under
// the chart's RBAC.
func TestInstallGuide(t *testing.T) {
	t.Parallel()
	blocks := guideBlocks(t, repoPath(t, "docs", "install.md"))
	helm, kubectl := tool(t, "helm"), tool(t, "k8s", "kubectl")

	// A cluster of its own: the guide starts from an empty one (its first
	// command creates corsgate-system, which the package's shared API server
	// already has).
	cluster := envtesting.New(t, envtesting.Options{NoCRDs: true})
	cfg := cluster.Config
	kcPath := cluster.User(t, "install-guide-admin", "system:masters").Kubeconfig
	home := t.TempDir()
	// The reader's shell: kubectl and helm on PATH, the cluster in
	// KUBECONFIG, a HOME of its own for helm's cache and config.
	path := filepath.Join(home, "bin")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"helm": helm, "kubectl": kubectl} {
		if err := os.Symlink(target, filepath.Join(path, name)); err != nil {
			t.Fatal(err)
		}
	}
	shellEnv := []string{"PATH=" + path + ":/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "KUBECONFIG=" + kcPath}

	var ran []string
	var last string // what the last command printed
	var pod *guidePod
	compared := 0
	for _, b := range blocks {
		if b.output {
			if len(ran) == 0 {
				t.Fatalf("docs/install.md:%d: an expected output before any command", b.line)
			}
			if err := sameTable(last, b.body); err != nil {
				t.Errorf("docs/install.md:%d: %q printed\n%s\nthe guide shows\n%s\n(%v)", b.line, ran[len(ran)-1], last, b.body, err)
			}
			compared++
			continue
		}
		for _, cmd := range guideCommands(b.body) {
			ran = append(ran, cmd)
			if !needsKubelet[cmd] && (strings.Contains(cmd, "rollout status") || strings.Contains(cmd, "wait --for=condition=Available")) {
				t.Fatalf("docs/install.md:%d: %q waits for pods, which envtest never runs: list it in needsKubelet", b.line, cmd)
			}
			if needsKubelet[cmd] {
				pod = startPod(t, cfg, repoRoot(t))
				last = ""
				continue
			}
			out, err := shell(t, shellEnv, cmd)
			if err != nil {
				msg := ""
				if pod != nil {
					msg = "\ncorsgate's output:\n" + pod.output()
				}
				t.Fatalf("docs/install.md:%d: %s\n%v\n%s%s", b.line, cmd, err, out, msg)
			}
			last = out
			for prefix, wants := range guideChecks {
				for _, want := range wants {
					if strings.HasPrefix(cmd, prefix) && !strings.Contains(out, want) {
						t.Errorf("docs/install.md:%d: %s\nprints no %s:\n%s", b.line, cmd, want, out)
					}
				}
			}
			// What helm prints after the install is the first thing a
			// reader sees: it must say where Envoy may run.
			if strings.HasPrefix(cmd, "helm install") && !strings.Contains(out, "networkPolicy.gatewayNamespaces") {
				t.Errorf("helm install does not say which namespaces may reach corsgate:\n%s", out)
			}
		}
	}

	// The guide must keep its tested steps: without these markers the test
	// would pass on a guide it no longer runs.
	all := strings.Join(ran, "\n")
	for _, step := range []string{"helm install corsgate charts/corsgate", "networkPolicy.gatewayNamespaces=", "kind: CorsHostGrant", "kind: CorsPolicy",
		"kubectl get corspolicies", "condition=Ready", "get networkpolicy corsgate"} {
		if !strings.Contains(all, step) {
			t.Errorf("docs/install.md no longer runs %q in a tested block", step)
		}
	}
	if pod == nil {
		t.Error("docs/install.md no longer waits for the rollout, so corsgate never ran")
	}
	if compared == 0 {
		t.Error("docs/install.md compares no output: the Ready status it shows is not checked")
	}
}

// shell runs one command of the guide with bash, from the repository root,
// as a reader's terminal would.
func shell(t *testing.T, env []string, cmd string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", cmd)
	c.Dir = repoRoot(t)
	c.Env = env
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// sameTable compares kubectl's table output with the guide's, cell by cell,
// leaving out the AGE column, which depends on when it ran. Cells are cut at
// the header's column starts, as kubectl aligns them, so an empty cell (a
// policy without targetRefs) stays a cell.
func sameTable(got, want string) error {
	g, w := tableCells(got), tableCells(want)
	if len(g) != len(w) {
		return fmt.Errorf("%d rows, the guide shows %d", len(g), len(w))
	}
	for i := range g {
		if !slices.Equal(g[i], w[i]) {
			return fmt.Errorf("row %d is %q, the guide shows %q", i+1, g[i], w[i])
		}
	}
	return nil
}

func tableCells(s string) [][]string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			lines = append(lines, sc.Text())
		}
	}
	if len(lines) == 0 {
		return nil
	}
	var starts []int
	for i, r := range lines[0] {
		if r != ' ' && (i == 0 || lines[0][i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	last := starts[len(starts)-1]
	dropAge := strings.TrimSpace(lines[0][last:]) == "AGE"
	rows := make([][]string, len(lines))
	for i, line := range lines {
		for j, start := range starts {
			end := len(line)
			if j+1 < len(starts) {
				end = min(starts[j+1], len(line))
			}
			cell := ""
			if start < len(line) {
				cell = strings.TrimSpace(line[start:end])
			}
			rows[i] = append(rows[i], cell)
		}
		if dropAge {
			rows[i] = rows[i][:len(starts)-1]
		}
	}
	return rows
}

// guidePod is corsgate running as one of the Deployment's pods.
type guidePod struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *guidePod) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *guidePod) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// startPod does what a kubelet does for one pod of the installed Deployment:
// it runs the container's command with the container's arguments (as stored
// in the API server), authenticated as the pod's ServiceAccount with a token
// the API server issues for it, and waits until the pod is ready. Only the
// listening addresses change: the pod's fixed ports become free loopback
// ports.
func startPod(t *testing.T, cfg *rest.Config, root string) *guidePod {
	t.Helper()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cs.AppsV1().Deployments(releaseNamespace).Get(ctx, releaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Deployment the guide installed: %v", err)
	}
	args, probe := podArgs(t, d)

	sa := d.Spec.Template.Spec.ServiceAccountName
	tr, err := cs.CoreV1().ServiceAccounts(releaseNamespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for ServiceAccount %s: %v", sa, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["pod"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: sa, Namespace: releaseNamespace}
	kc.CurrentContext = "pod"
	kcPath := filepath.Join(t.TempDir(), "pod-kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kcPath); err != nil {
		t.Fatal(err)
	}

	bin := filepath.Join(t.TempDir(), "corsgate")
	if out, err := exec.Command("go", "build", "-C", root, "-o", bin, "./cmd/corsgate").CombinedOutput(); err != nil {
		t.Fatalf("building cmd/corsgate: %v\n%s", err, out)
	}
	pod := &guidePod{}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"KUBECONFIG=" + kcPath, "HOME=" + t.TempDir()}
	cmd.Stdout, cmd.Stderr = pod, pod
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	// Ready: the probe server's /readyz, which the chart's readiness probe
	// stands for (the same readiness as the gRPC health service).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case err := <-done:
			t.Fatalf("corsgate exited (%v) before it was ready:\n%s", err, pod.output())
		default:
		}
		resp, err := http.Get("http://" + probe + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return pod
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("corsgate not ready after 2 minutes:\n%s", pod.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// podArgs is the corsgate container's arguments with its listening
// addresses moved to free loopback ports, and the probe address.
func podArgs(t *testing.T, d *appsv1.Deployment) ([]string, string) {
	t.Helper()
	i := slices.IndexFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == "corsgate" })
	if i < 0 {
		t.Fatalf("the Deployment has no corsgate container")
	}
	var args []string
	probe := ""
	for _, a := range d.Spec.Template.Spec.Containers[i].Args {
		name, _, ok := strings.Cut(a, "=")
		switch {
		case ok && (name == "--grpc-bind-address" || name == "--metrics-bind-address"):
			a = name + "=" + freeAddr(t)
		case ok && name == "--health-probe-bind-address":
			probe = freeAddr(t)
			a = name + "=" + probe
		}
		args = append(args, a)
	}
	if probe == "" {
		t.Fatalf("the container has no --health-probe-bind-address: %q", args)
	}
	return args, probe
}
