package controllers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/controllers"
	"github.com/corsgate/corsgate/internal/table"
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
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds kube-apiserver and etcd into bin/k8s")
		os.Exit(1)
	}
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	env := &envtest.Environment{
		CRDDirectoryPaths:     append([]string{filepath.Join("..", "config", "crd", "bases")}, gatewayAPICRDs()...),
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err == nil {
		cfg.QPS, cfg.Burst = 50, 100 // as the binary's --kube-api-qps/--kube-api-burst defaults
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		os.Exit(1)
	}
	code := run(cfg, m)
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

func run(cfg *rest.Config, m *testing.M) int {
	restConfig = cfg
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	_ = gwapiv1.Install(scheme)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	changed := make(chan event.TypedGenericEvent[*v1alpha1.CorsPolicy], 1024)
	if err := mgr.Add(&controllers.TableBuilder{
		Cache: mgr.GetCache(), Store: store, Results: results, Changed: changed, Log: ctrl.Log.WithName("table"),
		OnBuild: func(*table.Table, time.Duration) {
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
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-store.Ready()
	code := m.Run()
	cancel()
	<-done
	return code
}

func zapLevel() zapcore.Level {
	if os.Getenv("CORSGATE_TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel // keep test output readable
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
