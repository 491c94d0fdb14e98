package controllers_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/event"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/controllers"
	"github.com/corsgate/corsgate/internal/table"
	"github.com/corsgate/corsgate/test/envtesting"
)

// Without the Gateway API CRDs (a cluster of its own: the suite's has them),
// corsgate serves hosts policies as always, and a targetRefs policy serves
// nothing and says why.
func TestGatewayAPIAbsent(t *testing.T) {
	t.Parallel()
	cluster := envtesting.New(t, envtesting.Options{})
	cfg := cluster.Config
	scheme := envtesting.Scheme() // as the binary: the Gateway API known to the scheme, not served
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		// The suite's manager registered the same controller names.
		Controller: config.Controller{SkipNameValidation: new(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, res := &table.Store{}, &controllers.Results{}
	changed := make(chan event.TypedGenericEvent[*v1alpha1.CorsPolicy], 16)
	if err := mgr.Add(&controllers.TableBuilder{Cache: mgr.GetCache(), Store: st, Results: res, Changed: changed, Log: ctrl.Log.WithName("table")}); err != nil {
		t.Fatal(err)
	}
	if err := (&controllers.StatusWriter{Client: mgr.GetClient(), Results: res}).SetupWithManager(mgr, changed); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := cluster.Client
	if err := c.Create(ctx, newPolicy("default", "plain", "plain.example.com", "https://app.example.com")); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, attachedPolicy("default", "attached", "https://app.example.com", targetRef("HTTPRoute", "shop", ""))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hosts policy served without the Gateway API", func() (bool, string) {
		e := st.Load().Lookup("plain.example.com", "/")
		return e != nil && e.Name == "plain", "not served"
	})
	eventually(t, "targetRefs policy says the Gateway API is missing", func() (bool, string) {
		var p v1alpha1.CorsPolicy
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "attached"}, &p); err != nil {
			return false, err.Error()
		}
		ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != v1alpha1.ReasonNotServing || len(p.Status.Ancestors) != 1 {
			return false, "status " + fmtStatus(p.Status)
		}
		acc := meta.FindStatusCondition(p.Status.Ancestors[0].Conditions, "Accepted")
		return acc != nil && acc.Reason == "TargetNotFound" && strings.Contains(acc.Message, "Gateway API CRDs"), fmtStatus(p.Status)
	})
	if n := st.Load().Len(); n != 1 {
		t.Errorf("table holds %d entries; want the hosts policy only (a targetRefs policy must not fall back to every host)", n)
	}
}

func fmtStatus(s v1alpha1.CorsPolicyStatus) string {
	var b strings.Builder
	for _, c := range s.Conditions {
		b.WriteString(c.Type + "=" + string(c.Status) + "(" + c.Reason + ") ")
	}
	for _, a := range s.Ancestors {
		for _, c := range a.Conditions {
			b.WriteString("ancestor " + string(a.AncestorRef.Name) + " " + c.Type + "=" + string(c.Status) + "(" + c.Reason + "): " + c.Message + " ")
		}
	}
	return b.String()
}
