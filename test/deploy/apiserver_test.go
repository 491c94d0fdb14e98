package deploy_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/corsgate/corsgate/test/envtesting"
)

// One kube-apiserver and etcd (envtest) for the whole package, started by the
// first test that needs it and stopped by TestMain.
var (
	envOnce sync.Once
	cluster *envtesting.Cluster
	envErr  error
)

func TestMain(m *testing.M) {
	// Failures reach the tests as errors and warnings; the library log adds
	// nothing.
	logf.SetLogger(logr.Discard())
	code := m.Run()
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}
	os.Exit(code)
}

// apiServer starts envtest with the CorsPolicy CRD (config/crd/bases) and the
// test's stand-in ServiceMonitor CRD installed for real, and the namespace
// corsgate-system created under the "restricted" Pod Security Standard.
func apiServer(t *testing.T) *rest.Config {
	t.Helper()
	envOnce.Do(func() {
		cluster, envErr = envtesting.Start(envtesting.Options{
			GatewayAPI: envtesting.GatewaysAndRoutes,
			CRDPaths:   []string{repoPath(t, "test", "deploy", "testdata", "crds")},
		})
		if envErr != nil {
			envErr = fmt.Errorf("%w (%s)", envErr, missingTools)
			return
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: releaseNamespace,
			Labels: map[string]string{
				"pod-security.kubernetes.io/enforce": "restricted",
				"pod-security.kubernetes.io/warn":    "restricted",
			},
		}}
		envErr = cluster.Client.Create(context.Background(), ns)
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	return cluster.Config
}

// warnings collects the API server's warning headers (Pod Security "warn",
// deprecated fields), which a normal apply only prints.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, message)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// newClient returns a client whose warnings land in the returned collector.
func newClient(t *testing.T) (client.Client, *warnings) {
	t.Helper()
	cfg := rest.CopyConfig(apiServer(t))
	w := &warnings{}
	cfg.WarningHandlerWithContext = w
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// dryRunApply sends every object through server-side apply with dryRun=All,
// which is what `kubectl apply --server-side --dry-run=server` does: full
// validation, defaulting and admission, unknown fields refused, nothing
// stored. Every object must be accepted without a warning.
func dryRunApply(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	c, w := newClient(t)
	for _, obj := range objs {
		err := c.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(obj.DeepCopy()),
			client.DryRunAll, client.FieldOwner("corsgate-deploy-test"), client.ForceOwnership)
		if err != nil {
			t.Errorf("%s refused: %v", key(obj), err)
		}
		if ws := w.take(); len(ws) > 0 {
			t.Errorf("%s accepted with warnings: %v", key(obj), ws)
		}
	}
}

// TestChartAcceptedByAPIServer: every toggle's rendered objects pass a real
// API server's validation and admission.
func TestChartAcceptedByAPIServer(t *testing.T) {
	t.Parallel()
	for _, tc := range toggles {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dryRunApply(t, mustRender(t, tc.values))
		})
	}
}

// TestKustomizeAcceptedByAPIServer: the kustomize builds (Namespace and CRD
// included; both already exist, so the apply is an update) pass too.
func TestKustomizeAcceptedByAPIServer(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"default", "prometheus"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			dryRunApply(t, kustomizeBuild(t, dir))
		})
	}
}

// TestPodMeetsRestrictedStandard creates (dry-run) a Pod from the rendered
// pod template in a namespace that enforces the "restricted" Pod Security
// Standard. Deployments are only warned about; a Pod is refused, which is the
// signal a cluster would give when the ReplicaSet creates it. The last row is
// the control: a weakened pod must be refused, proving the check is live.
func TestPodMeetsRestrictedStandard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		values  map[string]any
		wantErr string
	}{
		{desc: "defaults"},
		{desc: "TLS volume", values: map[string]any{"grpc": map[string]any{"tls": map[string]any{"enabled": true, "secretName": "corsgate-grpc-tls"}}}},
		{
			desc:    "privilege escalation allowed (control)",
			values:  map[string]any{"securityContext": map[string]any{"allowPrivilegeEscalation": true}},
			wantErr: "allowPrivilegeEscalation",
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var d appsv1.Deployment
			rendered{objs: mustRender(t, tc.values)}.typed(t, "Deployment", "corsgate", &d)
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "corsgate-pod-security", Namespace: releaseNamespace, Labels: d.Spec.Template.Labels},
				Spec:       d.Spec.Template.Spec,
			}
			c, w := newClient(t)
			err := c.Create(context.Background(), pod, client.DryRunAll)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("pod refused: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("pod admitted; want a refusal mentioning %s", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("refusal %q does not mention %s", err, tc.wantErr)
			}
			if ws := w.take(); tc.wantErr == "" && len(ws) > 0 {
				t.Errorf("pod admitted with warnings: %v", ws)
			}
		})
	}
}

// TestLeastPrivilege installs the chart's RBAC for real and asks the API
// server's authorizer (SubjectAccessReview) what corsgate's ServiceAccount
// may do: everything the controller needs, and nothing more.
func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t)
	ctx := context.Background()
	for _, obj := range mustRender(t, nil) {
		switch obj.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()), client.FieldOwner("corsgate-deploy-test"), client.ForceOwnership); err != nil {
				t.Fatalf("applying %s: %v", key(obj), err)
			}
		}
	}
	serviceAccount := "system:serviceaccount:" + releaseNamespace + ":corsgate"
	can := func(ctx context.Context, attrs authorizationv1.ResourceAttributes) (bool, error) {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               serviceAccount,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"},
			ResourceAttributes: &attrs,
		}}
		if err := c.Create(ctx, review); err != nil {
			return false, err
		}
		return review.Status.Allowed, nil
	}
	listPolicies := authorizationv1.ResourceAttributes{Group: "policy.corsgate.io", Resource: "corspolicies", Verb: "list"}
	// The authorizer reads RBAC objects from a cache; wait until it has ours.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return can(ctx, listPolicies)
	})
	if err != nil {
		t.Fatalf("%s never got to list CorsPolicies: %v", serviceAccount, err)
	}
	tests := []struct {
		desc  string
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{"watch CorsPolicies everywhere", authorizationv1.ResourceAttributes{Group: "policy.corsgate.io", Resource: "corspolicies", Verb: "watch"}, true},
		{"get a CorsPolicy", authorizationv1.ResourceAttributes{Namespace: "team-a", Group: "policy.corsgate.io", Resource: "corspolicies", Verb: "get"}, true},
		{"patch a CorsPolicy's status", authorizationv1.ResourceAttributes{Namespace: "team-a", Group: "policy.corsgate.io", Resource: "corspolicies", Subresource: "status", Verb: "patch"}, true},
		{"update a CorsPolicy's status", authorizationv1.ResourceAttributes{Namespace: "team-a", Group: "policy.corsgate.io", Resource: "corspolicies", Subresource: "status", Verb: "update"}, true},
		{"record an Event on a CorsPolicy", authorizationv1.ResourceAttributes{Namespace: "team-a", Group: "events.k8s.io", Resource: "events", Verb: "create"}, true},
		{"record a leader-election Event", authorizationv1.ResourceAttributes{Namespace: releaseNamespace, Resource: "events", Verb: "create"}, true},
		{"no core Events elsewhere", authorizationv1.ResourceAttributes{Namespace: "team-a", Resource: "events", Verb: "create"}, false},
		{"renew its Lease", authorizationv1.ResourceAttributes{Namespace: releaseNamespace, Group: "coordination.k8s.io", Resource: "leases", Verb: "update"}, true},
		{"create its Lease", authorizationv1.ResourceAttributes{Namespace: releaseNamespace, Group: "coordination.k8s.io", Resource: "leases", Verb: "create"}, true},
		{"no Leases elsewhere", authorizationv1.ResourceAttributes{Namespace: "kube-system", Group: "coordination.k8s.io", Resource: "leases", Verb: "update"}, false},
		{"no writes to a CorsPolicy's spec", authorizationv1.ResourceAttributes{Namespace: "team-a", Group: "policy.corsgate.io", Resource: "corspolicies", Verb: "update"}, false},
		{"no new CorsPolicies", authorizationv1.ResourceAttributes{Namespace: "team-a", Group: "policy.corsgate.io", Resource: "corspolicies", Verb: "create"}, false},
		{"no deleting CorsPolicies", authorizationv1.ResourceAttributes{Namespace: "team-a", Group: "policy.corsgate.io", Resource: "corspolicies", Verb: "delete"}, false},
		{"no Secrets, even its own namespace's", authorizationv1.ResourceAttributes{Namespace: releaseNamespace, Resource: "secrets", Verb: "get"}, false},
		{"no ConfigMaps", authorizationv1.ResourceAttributes{Namespace: releaseNamespace, Resource: "configmaps", Verb: "list"}, false},
		{"no Pods", authorizationv1.ResourceAttributes{Namespace: releaseNamespace, Resource: "pods", Verb: "list"}, false},
		{"no reading Events", authorizationv1.ResourceAttributes{Namespace: "team-a", Group: "events.k8s.io", Resource: "events", Verb: "list"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := can(context.Background(), tc.attrs)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("%s %+v: allowed = %v, want %v", serviceAccount, tc.attrs, got, tc.want)
			}
		})
	}
}

// Compile-time check that the collector satisfies client-go's interface.
var _ rest.WarningHandlerWithContext = (*warnings)(nil)
