package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/test/envtesting"
	"github.com/corsgate/corsgate/test/gen"
)

// eventually polls cond until it holds; the controllers are asynchronous.
// The limit is a hang guard, not a performance assertion.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	eventuallyWithin(t, time.Minute, what, cond)
}

func eventuallyWithin(t testing.TB, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	envtesting.Eventually(t, limit, what, cond)
}

// served reports whether the served table allows origin on host.
func served(host, origin string) (bool, string) {
	e := store.Load().Lookup(host, "/")
	if e == nil {
		return false, "no policy for " + host
	}
	d := e.Policy.Decide(&cors.Request{Method: "GET", Origin: origin, HasOrigin: true})
	return d.Allowed, fmt.Sprintf("policy %s: %v", e.Key(), d.Reason)
}

func newPolicy(ns, name, host, origin string) *v1alpha1.CorsPolicy {
	return gen.CorsPolicy(name, gen.WithNamespace(ns), gen.WithHosts(host), gen.WithOrigins(origin))
}

func condition(t testing.TB, ns, name, typ string) (*metav1.Condition, *v1alpha1.CorsPolicy) {
	t.Helper()
	var p v1alpha1.CorsPolicy
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	return meta.FindStatusCondition(p.Status.Conditions, typ), &p
}

// statusIs waits for a condition with the given status and reason at the
// object's current generation, and returns its message.
func statusIs(t testing.TB, ns, name, typ string, status metav1.ConditionStatus, reason string) string {
	t.Helper()
	var msg string
	eventually(t, fmt.Sprintf("%s/%s %s=%s (%s)", ns, name, typ, status, reason), func() (bool, string) {
		c, p := condition(t, ns, name, typ)
		if c == nil {
			return false, "no condition"
		}
		msg = c.Message
		return c.Status == status && c.Reason == reason && p.Status.ObservedGeneration == p.Generation,
			fmt.Sprintf("%s %s %q (observed %d, generation %d)", c.Status, c.Reason, c.Message, p.Status.ObservedGeneration, p.Generation)
	})
	return msg
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := namespace(t)
	host := ns + ".lifecycle.example.com"
	p := newPolicy(ns, "api", host, "https://app.example.com")
	p.Spec.MaxAge = new(int32(9000)) // legal, with a warning
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "created policy served", func() (bool, string) { return served(host, "https://app.example.com") })
	statusIs(t, ns, "api", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonValid)
	statusIs(t, ns, "api", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	if _, obj := condition(t, ns, "api", v1alpha1.ConditionReady); len(obj.Status.Warnings) != 1 || !strings.Contains(obj.Status.Warnings[0], "spec.maxAge") {
		t.Errorf("warnings = %q; want one on spec.maxAge", obj.Status.Warnings)
	}

	// An edit the schema lets through but the engine refuses: the last valid
	// spec keeps serving, and the status says why and what to write.
	update(t, ns, "api", func(s *v1alpha1.CorsPolicySpec) {
		s.AllowOrigins, s.AllowCredentials = []string{"https://*.github.io"}, true
	})
	msg := statusIs(t, ns, "api", v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonInvalid)
	if !strings.Contains(msg, "spec.allowOrigins[0]") || !strings.Contains(msg, `public suffix "github.io"`) || !strings.Contains(msg, "list the sites you trust") {
		t.Errorf("Invalid message %q should name the field and what to write", msg)
	}
	statusIs(t, ns, "api", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServingLastValid)
	if ok, why := served(host, "https://app.example.com"); !ok {
		t.Fatalf("last valid spec no longer served: %s", why)
	}

	update(t, ns, "api", func(s *v1alpha1.CorsPolicySpec) {
		s.AllowOrigins, s.AllowCredentials = []string{"https://new.example.com"}, false
	})
	eventually(t, "fixed policy served", func() (bool, string) { return served(host, "https://new.example.com") })
	statusIs(t, ns, "api", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonValid)
	statusIs(t, ns, "api", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)

	if err := k8s.Delete(ctx, &v1alpha1.CorsPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted policy gone from the table", func() (bool, string) {
		return store.Load().Lookup(host, "/") == nil, "still served"
	})
}

func TestNeverValidServesNothing(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	host := ns + ".never.example.com"
	bad := newPolicy(ns, "bad", host, "https://app.example.com")
	// Legal for the schema, refused by the engine: with credentials, a regex
	// that matches arbitrary origins.
	bad.Spec.AllowOriginRegexes, bad.Spec.AllowCredentials = []string{`https://.*\.example\.com.*`}, true
	if err := k8s.Create(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	msg := statusIs(t, ns, "bad", v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonInvalid)
	if !strings.Contains(msg, `spec.allowOriginRegexes[0]`) || !strings.Contains(msg, "anchor it to your domain") {
		t.Errorf("message %q", msg)
	}
	statusIs(t, ns, "bad", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotServing)
	if e := store.Load().Lookup(host, "/"); e != nil {
		t.Errorf("never-valid policy served as %s", e.Key())
	}
}

func TestConflictingClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := namespace(t)
	host := ns + ".conflict.example.com"
	if err := k8s.Create(ctx, newPolicy(ns, "first", host, "https://first.example.com")); err != nil {
		t.Fatal(err)
	}
	statusIs(t, ns, "first", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	// Creation timestamps have one-second resolution: make "second" younger.
	time.Sleep(1100 * time.Millisecond)
	if err := k8s.Create(ctx, newPolicy(ns, "second", host, "https://second.example.com")); err != nil {
		t.Fatal(err)
	}
	msg := statusIs(t, ns, "second", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonConflicted)
	if !strings.Contains(msg, host) || !strings.Contains(msg, ns+"/first") {
		t.Errorf("loser's message %q should name the host and the winner", msg)
	}
	statusIs(t, ns, "first", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	if ok, why := served(host, "https://first.example.com"); !ok {
		t.Errorf("winner not served: %s", why)
	}
}

func TestThousandAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := namespace(t)
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- k8s.Create(ctx, newPolicy(ns, fmt.Sprintf("p%04d", i), fmt.Sprintf("h%d.%s.bulk.example.com", i, ns), "https://app.example.com"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "all 1,000 served", func() (bool, string) {
		missing := 0
		for i := range n {
			if store.Load().Lookup(fmt.Sprintf("h%d.%s.bulk.example.com", i, ns), "/") == nil {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d not served", missing)
	})
	// Status writes go through the client's rate limiter (--kube-api-qps).
	eventuallyWithin(t, 5*time.Minute, "all 1,000 Ready", func() (bool, string) {
		var list v1alpha1.CorsPolicyList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, p := range list.Items {
			if meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady) && p.Status.ObservedGeneration == p.Generation {
				ready++
			}
		}
		return ready == n, fmt.Sprintf("%d of %d ready", ready, len(list.Items))
	})
}

// update changes a policy's spec, retrying on write conflicts with the
// status writer.
func update(t testing.TB, ns, name string, change func(*v1alpha1.CorsPolicySpec)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var p v1alpha1.CorsPolicy
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
			return err
		}
		change(&p.Spec)
		return k8s.Update(context.Background(), &p)
	})
	if err != nil {
		t.Fatal(err)
	}
}
