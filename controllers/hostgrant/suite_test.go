// Package hostgrant_test runs the controllers with host ownership on
// (--host-ownership=Enforce) against a real kube-apiserver and etcd
// (envtest). It has an API server of its own: the controllers package's
// suite runs with ownership off, and two status writers over one API server
// would overwrite each other's conditions.
package hostgrant_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/controllers"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
	"github.com/corsgate/corsgate/test/envtesting"
	"github.com/corsgate/corsgate/test/gen"
)

var (
	k8s         client.Client
	restConfig  *rest.Config
	kubectlUser *envtesting.User
	store       = &table.Store{}
)

func TestMain(m *testing.M) {
	envtesting.SetLogger()
	cluster, err := envtesting.Start(envtesting.Options{
		// The Gateway API CRDs too: the reconcile-to-serve benchmark's
		// background has policies attached to HTTPRoutes.
		GatewayAPI: envtesting.GatewaysAndRoutes,
		QPS:        50, Burst: 100, // as the binary's defaults
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := run(cluster, m)
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

func run(cluster *envtesting.Cluster, m *testing.M) int {
	cfg := cluster.Config
	restConfig = cfg
	kubectlUser = cluster.Admin()
	scheme := envtesting.Scheme()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	results := &controllers.Results{}
	changed := make(chan event.TypedGenericEvent[*v1alpha1.CorsPolicy], 1024)
	grantsChanged := make(chan event.TypedGenericEvent[*v1alpha1.CorsHostGrant], 1024)
	ownership := &controllers.HostOwnership{Changed: grantsChanged}
	if err := mgr.Add(&controllers.TableBuilder{
		Cache: mgr.GetCache(), Store: store, Results: results, Changed: changed, Log: ctrl.Log.WithName("table"),
		Ownership: ownership,
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := (&controllers.StatusWriter{Client: mgr.GetClient(), Results: results}).SetupWithManager(mgr, changed); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := (&controllers.GrantStatusWriter{Client: mgr.GetClient(), Ownership: ownership}).SetupWithManager(mgr, grantsChanged); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() { cancel(); <-done }()
	k8s = cluster.Client
	<-store.Ready()
	return m.Run()
}

// namespace creates a fresh namespace with labels for one test.
func namespace(t testing.TB, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "g-", Labels: labels}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func policy(t testing.TB, ns, name string, hosts, prefixes []string, origin string) {
	t.Helper()
	p := gen.CorsPolicy(name, gen.WithNamespace(ns), gen.WithHosts(hosts...), gen.WithPathPrefixes(prefixes...), gen.WithOrigins(origin))
	if err := k8s.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func createGrant(t testing.TB, name string, spec v1alpha1.CorsHostGrantSpec) {
	t.Helper()
	g := &v1alpha1.CorsHostGrant{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if err := k8s.Create(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), g) })
}

func updateGrant(t testing.TB, name string, change func(*v1alpha1.CorsHostGrantSpec)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var g v1alpha1.CorsHostGrant
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, &g); err != nil {
			return err
		}
		change(&g.Spec)
		return k8s.Update(context.Background(), &g)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds; the limit is a hang guard.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	envtesting.Eventually(t, time.Minute, what, cond)
}

// servedBy is the key of the policy the table serves for host and path,
// or "" when none does.
func servedBy(host, path string) string {
	if e := store.Load().Lookup(host, path); e != nil {
		return e.Key()
	}
	return ""
}

// decides waits until key's policy serves host and path and allows origin.
func decides(t testing.TB, key, host, path, origin string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s serving %s%s for %s", key, host, path, origin), func() (bool, string) {
		e := store.Load().Lookup(host, path)
		if e == nil {
			return false, "no policy"
		}
		d := e.Policy.Decide(&cors.Request{Method: "GET", Origin: origin, HasOrigin: true})
		return e.Key() == key && d.Allowed, fmt.Sprintf("policy %s, allowed %v", e.Key(), d.Allowed)
	})
}

// notServing waits until key's policy serves neither host nor path.
func notServing(t testing.TB, key, host, path string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s not serving %s%s", key, host, path), func() (bool, string) {
		got := servedBy(host, path)
		return got != key, "served by " + got
	})
}

// statusIs waits for a CorsPolicy condition at the current generation and
// returns its message.
func statusIs(t testing.TB, ns, name, typ string, status metav1.ConditionStatus, reason string, contains ...string) string {
	t.Helper()
	var msg string
	eventually(t, fmt.Sprintf("%s/%s %s=%s (%s) with %q", ns, name, typ, status, reason, contains), func() (bool, string) {
		var p v1alpha1.CorsPolicy
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(p.Status.Conditions, typ)
		if c == nil {
			return false, "no condition"
		}
		msg = c.Message
		for _, s := range contains {
			if !strings.Contains(c.Message, s) {
				return false, fmt.Sprintf("%s %s %q lacks %q", c.Status, c.Reason, c.Message, s)
			}
		}
		return c.Status == status && c.Reason == reason && p.Status.ObservedGeneration == p.Generation,
			fmt.Sprintf("%s %s %q", c.Status, c.Reason, c.Message)
	})
	return msg
}

// grantAdmits waits for a grant's status to list exactly keys.
func grantAdmits(t testing.TB, name string, keys ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("CorsHostGrant %s admitting %q", name, keys), func() (bool, string) {
		var g v1alpha1.CorsHostGrant
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, &g); err != nil {
			return false, err.Error()
		}
		return g.Status.ObservedGeneration == g.Generation && int(g.Status.AdmittedCount) == len(keys) &&
				strings.Join(g.Status.Admitted, ",") == strings.Join(keys, ","),
			fmt.Sprintf("generation %d observed %d, %d admitted: %q", g.Generation, g.Status.ObservedGeneration, g.Status.AdmittedCount, g.Status.Admitted)
	})
}
