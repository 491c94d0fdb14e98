package controllers_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/controllers"
	"github.com/corsgate/corsgate/internal/table"
	"github.com/corsgate/corsgate/test/envtesting"
)

// The controllers run against a real kube-apiserver and etcd (envtest);
// `make test` builds them into bin/k8s and sets KUBEBUILDER_ASSETS.
var (
	k8s     client.Client
	store   = &table.Store{}
	results = &controllers.Results{}
	builds  = make(chan struct{}, 1)
)

func TestMain(m *testing.M) {
	envtesting.SetLogger()
	cluster, err := envtesting.Start(envtesting.Options{
		GatewayAPI: envtesting.GatewaysAndRoutes,
		QPS:        50, Burst: 100, // as the binary's --kube-api-qps/--kube-api-burst defaults
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
	scheme := envtesting.Scheme()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	changed := make(chan event.TypedGenericEvent[*v1alpha1.CorsPolicy], 1024)
	if err := mgr.Add(&controllers.TableBuilder{
		Cache: mgr.GetCache(), Store: store, Results: results, Changed: changed, Log: ctrl.Log.WithName("table"),
		OnServe: func(*table.Table, time.Duration) {
			select {
			case builds <- struct{}{}:
			default:
			}
		},
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := (&controllers.StatusWriter{Client: mgr.GetClient(), Results: results, Recorder: mgr.GetEventRecorder("corsgate")}).SetupWithManager(mgr, changed); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	// Tests read and write through an uncached client, so that what they
	// see is the API server's state, not the manager cache's.
	k8s = cluster.Client
	<-store.Ready()
	code := m.Run()
	cancel()
	<-done
	return code
}

// namespace creates a fresh namespace for one test.
func namespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}
