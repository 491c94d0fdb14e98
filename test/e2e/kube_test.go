//go:build e2e

package e2e_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/test/envtesting"
)

// cluster is a real kube-apiserver and etcd (envtest) with the CorsPolicy CRD
// installed, and an admin kubeconfig for corsgate and kubectl.
type cluster struct {
	kubeconfig string
	kubectlBin string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	user := envtesting.New(t, envtesting.Options{Assets: envtestAssets}).User(t, "e2e-admin", "system:masters")
	return &cluster{kubeconfig: user.Kubeconfig, kubectlBin: filepath.Join(envtestAssets, "kubectl")}
}

// kubectl runs kubectl against the cluster and returns its output.
func (c *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.kubectlBin, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
