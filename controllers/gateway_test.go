package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/test/gen"
)

const gatewayController = "example.com/gateway-controller"

// createGateway creates a Gateway with listeners "name=hostname" (HTTP on
// 80, "" for no hostname), admitting routes from every namespace, and marks
// it accepted as its controller would.
func createGateway(t testing.TB, ns, name string, listeners ...string) *gwapiv1.Gateway {
	t.Helper()
	gw := &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: gwapiv1.GatewaySpec{GatewayClassName: "test"}}
	for _, l := range listeners {
		lname, host, _ := strings.Cut(l, "=")
		li := gwapiv1.Listener{Name: gwapiv1.SectionName(lname), Port: 80, Protocol: gwapiv1.HTTPProtocolType,
			AllowedRoutes: &gwapiv1.AllowedRoutes{Namespaces: &gwapiv1.RouteNamespaces{From: new(gwapiv1.NamespacesFromAll)}}}
		if host != "" {
			li.Hostname = new(gwapiv1.Hostname(host))
		}
		gw.Spec.Listeners = append(gw.Spec.Listeners, li)
	}
	if err := k8s.Create(context.Background(), gw); err != nil {
		t.Fatal(err)
	}
	gw.Status.Conditions = gen.AcceptedAt(gw.Generation)
	if err := k8s.Status().Update(context.Background(), gw); err != nil {
		t.Fatal(err)
	}
	return gw
}

// createRoute creates an HTTPRoute under parent (namespace/name) with
// hostnames and one rule per "name=/prefix", and, when accept is true,
// records the parent's acceptance in its status as a Gateway controller
// would.
func createRoute(t testing.TB, ns, name, parent string, hostnames []string, rules []string, accept bool) *gwapiv1.HTTPRoute {
	t.Helper()
	pns, pname, _ := strings.Cut(parent, "/")
	r := &gwapiv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	r.Spec.ParentRefs = []gwapiv1.ParentReference{{Name: gwapiv1.ObjectName(pname), Namespace: new(gwapiv1.Namespace(pns))}}
	for _, h := range hostnames {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gwapiv1.Hostname(h))
	}
	for _, rule := range rules {
		rname, prefix, _ := strings.Cut(rule, "=")
		r.Spec.Rules = append(r.Spec.Rules, gwapiv1.HTTPRouteRule{
			Name:        new(gwapiv1.SectionName(rname)),
			Matches:     []gwapiv1.HTTPRouteMatch{{Path: &gwapiv1.HTTPPathMatch{Type: new(gwapiv1.PathMatchPathPrefix), Value: new(prefix)}}},
			BackendRefs: []gwapiv1.HTTPBackendRef{{BackendRef: gwapiv1.BackendRef{BackendObjectReference: gwapiv1.BackendObjectReference{Name: "app", Port: new(gwapiv1.PortNumber(8080))}}}},
		})
	}
	if err := k8s.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	setRouteAccepted(t, ns, name, accept)
	return r
}

// setRouteAccepted writes the route's status.parents as its Gateway
// controller would: Accepted True or False at the current generation.
func setRouteAccepted(t testing.TB, ns, name string, accept bool) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var r gwapiv1.HTTPRoute
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &r); err != nil {
			return err
		}
		conds := gen.AcceptedAt(r.Generation)
		if !accept {
			conds[0].Status, conds[0].Reason = metav1.ConditionFalse, "NotAllowedByListeners"
		}
		r.Status.Parents = []gwapiv1.RouteParentStatus{{ParentRef: r.Spec.ParentRefs[0], ControllerName: gatewayController, Conditions: conds}}
		return k8s.Status().Update(context.Background(), &r)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func targetRef(kind, name, section string) gwapiv1.LocalPolicyTargetReferenceWithSectionName {
	r := gwapiv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
		Group: v1alpha1.GatewayGroup, Kind: gwapiv1.Kind(kind), Name: gwapiv1.ObjectName(name)}}
	if section != "" {
		r.SectionName = new(gwapiv1.SectionName(section))
	}
	return r
}

func attachedPolicy(ns, name, origin string, refs ...gwapiv1.LocalPolicyTargetReferenceWithSectionName) *v1alpha1.CorsPolicy {
	return gen.CorsPolicy(name, gen.WithNamespace(ns), gen.WithTargetRefs(refs...), gen.WithOrigins(origin))
}

// servedAt is the policy serving host and path ("" for none).
func servedAt(host, path string) string {
	if e := store.Load().Lookup(host, path); e != nil {
		return e.Key()
	}
	return ""
}

func waitServedBy(t testing.TB, host, path, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s%s served by %q", host, path, want), func() (bool, string) {
		got := servedAt(host, path)
		return got == want, "served by " + got
	})
}

// ancestorIs waits for the policy's corsgate entry in status.ancestors for
// gwNS/gwName (a Gateway, or the target itself when it does not exist) with Accepted=status and reason, and returns its
// message.
func ancestorIs(t testing.TB, ns, name, gwNS, gwName string, status metav1.ConditionStatus, reason string) string {
	t.Helper()
	var msg string
	eventually(t, fmt.Sprintf("%s/%s ancestor %s/%s Accepted=%s (%s)", ns, name, gwNS, gwName, status, reason), func() (bool, string) {
		var p v1alpha1.CorsPolicy
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
			return false, err.Error()
		}
		for _, a := range p.Status.Ancestors {
			if string(a.AncestorRef.Name) != gwName || a.AncestorRef.Namespace == nil || string(*a.AncestorRef.Namespace) != gwNS {
				continue
			}
			c := meta.FindStatusCondition(a.Conditions, "Accepted")
			if c == nil || a.ControllerName != v1alpha1.ControllerName || deref(a.AncestorRef.Group) != v1alpha1.GatewayGroup {
				return false, fmt.Sprintf("entry %+v", a)
			}
			msg = c.Message
			return c.Status == status && c.Reason == reason && c.ObservedGeneration == p.Generation, fmt.Sprintf("%s %s %q", c.Status, c.Reason, c.Message)
		}
		return false, fmt.Sprintf("no entry in %+v", p.Status.Ancestors)
	})
	return msg
}

func TestRouteAttachedHostnamesIntersected(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	infra := namespace(t)
	createGateway(t, infra, "edge", "http=*."+ns+".example.com")
	// shop.<ns>.example.org is outside every listener: the Gateway never
	// routes it to this route, so the policy must not claim it.
	createRoute(t, ns, "shop", infra+"/edge", []string{"shop." + ns + ".example.com", "shop." + ns + ".example.org"}, []string{"api=/api"}, true)
	if err := k8s.Create(context.Background(), attachedPolicy(ns, "cors", "https://app.example.com", targetRef("HTTPRoute", "shop", ""))); err != nil {
		t.Fatal(err)
	}
	host := "shop." + ns + ".example.com"
	waitServedBy(t, host, "/api/orders", ns+"/cors")
	for _, miss := range [][2]string{{host, "/"}, {host, "/apiary"}, {"shop." + ns + ".example.org", "/api"}, {"other." + ns + ".example.com", "/api"}} {
		if got := servedAt(miss[0], miss[1]); got != "" {
			t.Errorf("%s%s served by %s; the route does not serve it", miss[0], miss[1], got)
		}
	}
	ancestorIs(t, ns, "cors", infra, "edge", metav1.ConditionTrue, "Accepted")
	statusIs(t, ns, "cors", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	var p v1alpha1.CorsPolicy
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "cors"}, &p); err != nil {
		t.Fatal(err)
	}
	if a := p.Status.Ancestors; len(a) != 1 || deref(a[0].AncestorRef.Kind) != "Gateway" || a[0].ControllerName != v1alpha1.ControllerName {
		t.Errorf("status.ancestors %+v; want one entry, for the Gateway, by %s", a, v1alpha1.ControllerName)
	}
}

func TestRouteNotAcceptedIsNotServed(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	infra := namespace(t)
	createGateway(t, infra, "edge", "http=*."+ns+".example.com")
	createRoute(t, ns, "shop", infra+"/edge", []string{"shop." + ns + ".example.com"}, []string{"all=/"}, false)
	if err := k8s.Create(context.Background(), attachedPolicy(ns, "cors", "https://app.example.com", targetRef("HTTPRoute", "shop", ""))); err != nil {
		t.Fatal(err)
	}
	msg := ancestorIs(t, ns, "cors", infra, "edge", metav1.ConditionFalse, "TargetNotFound")
	if !strings.Contains(msg, "is not accepted by Gateway "+infra+"/edge") {
		t.Errorf("message %q should say the Gateway did not accept the route", msg)
	}
	statusIs(t, ns, "cors", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotServing)
	if got := servedAt("shop."+ns+".example.com", "/"); got != "" {
		t.Fatalf("served by %s although no Gateway accepted the route", got)
	}
	// The Gateway accepts it: a status change alone re-scopes the policy.
	setRouteAccepted(t, ns, "shop", true)
	waitServedBy(t, "shop."+ns+".example.com", "/", ns+"/cors")
	ancestorIs(t, ns, "cors", infra, "edge", metav1.ConditionTrue, "Accepted")
}

func TestRouteHostnamesChangeScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := namespace(t)
	infra := namespace(t)
	createGateway(t, infra, "edge", "http=*."+ns+".example.com")
	oldHost, newHost := "old."+ns+".example.com", "new."+ns+".example.com"
	createRoute(t, ns, "shop", infra+"/edge", []string{oldHost}, []string{"all=/"}, true)
	if err := k8s.Create(ctx, attachedPolicy(ns, "cors", "https://app.example.com", targetRef("HTTPRoute", "shop", ""))); err != nil {
		t.Fatal(err)
	}
	waitServedBy(t, oldHost, "/", ns+"/cors")

	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var r gwapiv1.HTTPRoute
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &r); err != nil {
			return err
		}
		r.Spec.Hostnames = []gwapiv1.Hostname{gwapiv1.Hostname(newHost)}
		return k8s.Update(ctx, &r)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Until the Gateway has looked at the new generation, its acceptance
	// is of the old hostnames: nothing is served.
	waitServedBy(t, oldHost, "/", "")
	if got := servedAt(newHost, "/"); got != "" {
		t.Errorf("new hostname served by %s before the Gateway accepted it", got)
	}
	setRouteAccepted(t, ns, "shop", true)
	waitServedBy(t, newHost, "/", ns+"/cors")
	if got := servedAt(oldHost, "/"); got != "" {
		t.Errorf("old hostname still served by %s", got)
	}
}

func TestCrossNamespaceTargetRefRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := namespace(t)
	other := namespace(t)
	createGateway(t, other, "edge", "http=*."+other+".example.com")
	createRoute(t, other, "shop", other+"/edge", []string{"shop." + other + ".example.com"}, []string{"all=/"}, true)

	// A targetRef has no namespace field (GEP-713: policies attach within
	// their namespace): the API server refuses one under strict field
	// validation, as kubectl applies.
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "CorsPolicy",
		"metadata": map[string]any{"namespace": ns, "name": "cross"},
		"spec": map[string]any{
			"allowOrigins": []any{"https://app.example.com"},
			"targetRefs":   []any{map[string]any{"group": v1alpha1.GatewayGroup, "kind": "HTTPRoute", "name": "shop", "namespace": other}},
		},
	}}
	err := k8s.Create(ctx, u.DeepCopy(), client.FieldValidation("Strict"))
	if err == nil || !strings.Contains(err.Error(), `unknown field "spec.targetRefs[0].namespace"`) {
		t.Fatalf("strict create: got %v, want the namespace field refused", err)
	}
	// Without strict validation the field is dropped, and the reference is
	// to shop in the policy's own namespace, which does not exist.
	if err := k8s.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	msg := ancestorIs(t, ns, "cross", ns, "shop", metav1.ConditionFalse, "TargetNotFound")
	if !strings.Contains(msg, "HTTPRoute "+ns+"/shop does not exist") {
		t.Errorf("message %q", msg)
	}
	statusIs(t, ns, "cross", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotServing)
	if got := servedAt("shop."+other+".example.com", "/"); got != "" {
		t.Errorf("another namespace's route served by %s", got)
	}
}

// GEP-713 precedence: rule beats route beats Gateway, whatever the age.
func TestAttachmentLevelsPrecedence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := namespace(t)
	host := "shop." + ns + ".example.com"
	createGateway(t, ns, "edge", "http="+host)
	createRoute(t, ns, "shop", ns+"/edge", []string{host}, []string{"all=/"}, true)
	levels := []struct{ name, kind, target, section string }{
		{"gateway-level", "Gateway", "edge", ""},
		{"route-level", "HTTPRoute", "shop", ""},
		{"rule-level", "HTTPRoute", "shop", "all"},
	}
	// Oldest first, so that age alone would keep the Gateway's policy.
	for _, l := range levels {
		if err := k8s.Create(ctx, attachedPolicy(ns, l.name, "https://"+l.name+".example.com", targetRef(l.kind, l.target, l.section))); err != nil {
			t.Fatal(err)
		}
		waitServedBy(t, host, "/cart", ns+"/"+l.name)
		time.Sleep(1100 * time.Millisecond) // creation timestamps have one-second resolution
	}
	ancestorIs(t, ns, "gateway-level", ns, "edge", metav1.ConditionFalse, "Conflicted")
	msg := statusIs(t, ns, "route-level", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonConflicted)
	if !strings.Contains(msg, ns+"/rule-level") || !strings.Contains(msg, "attached closer to the route") {
		t.Errorf("loser's message %q should name the winner and why", msg)
	}
	d := store.Load().Lookup(host, "/").Policy.Decide(&cors.Request{Method: "GET", Origin: "https://rule-level.example.com", HasOrigin: true})
	if !d.Allowed {
		t.Errorf("rule-level policy's origin refused: %v", d.Reason)
	}
	// Deleting the winner hands the claim down a level.
	if err := k8s.Delete(ctx, &v1alpha1.CorsPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rule-level"}}); err != nil {
		t.Fatal(err)
	}
	waitServedBy(t, host, "/", ns+"/route-level")
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
