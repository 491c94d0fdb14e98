package main_test

// Tenancy through the built binary (issue 20): corsgate in Kubernetes mode
// with its defaults (--host-ownership=Enforce, --gateway-classes=eg), on a
// real kube-apiserver with the Gateway API CRDs, behind the Envoy stand-in.
// The test plays a conformant Gateway controller: it marks Gateways
// Accepted at their generation and writes HTTPRoute status.parents at the
// route's generation, Accepted only where a listener's allowedRoutes admit
// the route, as a real controller would. One control plane and one corsgate
// serve every case; each case has its own hosts (fN.example.com).
//
// The victim ("payments") owns its host through a CorsHostGrant and allows
// only https://pay.example.com. The attacker ("orders") has what a team
// usually has: its namespace, CorsPolicies and HTTPRoutes, and its origin is
// https://evil.example. For every finding of the issue the attacker's origin
// must get no Access-Control-Allow-Origin (preflight and actual request),
// the victim's origin keeps its grant where its policy covers the path, and
// the attacker's policy status says why.
//
// The cases that held before the fix keep a test each. Those already tested
// elsewhere:
//   - ungranted host, hosts: policy: TestHostOwnershipStopsTheAttack
//     (ownership_test.go, this binary), controllers/hostgrant
//     TestUngrantedHostThenGranted
//   - empty hosts (every host): controllers/hostgrant TestEveryHostGrant
//   - withdrawn or narrowed grant: controllers/hostgrant
//     TestGrantNarrowedThenDeleted
//   - label selectors: controllers/hostgrant TestSelectorFollowsNamespaceLabels
//   - a second prefix grant of one host: controllers/hostgrant
//     TestPrefixesOfOneHost
//   - cross-namespace targetRefs: controllers TestCrossNamespaceTargetRefRefused
//   - routes no controller accepted: controllers TestRouteNotAcceptedIsNotServed
//   - stale route generations: controllers TestRouteHostnamesChangeScope
//
// Tested here, through the binary, because only unit tests covered them:
// a wildcard parent, upper case, ports and trailing dots in hosts
// (held/host spellings), and forged route status against allowedRoutes
// (held/forged route status).

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/test/envoystandin"
	"github.com/corsgate/corsgate/test/envtesting"
	"github.com/corsgate/corsgate/test/gen"
)

const (
	evil     = "https://evil.example"
	pay      = "https://pay.example.com"
	victimNS = "payments"
	// attackerNS sorts before victimNS: where two claims are equally old,
	// namespace order would favour the attacker, so the precedence cases
	// below make the victim's claim strictly older.
	attackerNS = "orders"
	// Gateway controllers this test plays, by GatewayClass.
	egController    = "example.com/gateway-controller"
	rogueController = "example.net/rogue-controller"
)

var tenancyScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := gwapiv1.Install(s); err != nil {
		panic(err)
	}
	return s
}()

// tenancy is the shared control plane, corsgate and stand-in.
type tenancy struct {
	c       client.Client
	kubectl string // path
	kc      string // kubeconfig
	sim     *envoystandin.Sim
	cg      *kubeCorsgate
}

func TestTenancy(t *testing.T) {
	t.Parallel()
	tn := startTenancy(t)

	t.Run("1 route for the victim's host on a shared listener", func(t *testing.T) {
		t.Parallel()
		host := tn.victim(t, "f1")
		// A shared Gateway: a wildcard listener and one for exactly the
		// victim's host, both admitting routes from every namespace.
		tn.gateway(t, "infra", "edge-f1", "eg", listener("wild", "*.f1.example.com", gwapiv1.NamespacesFromAll),
			listener("exact", host, gwapiv1.NamespacesFromAll))
		tn.route(t, attackerNS, "steal-f1", "infra/edge-f1", []string{host}, "transfers=/v1/transfers")
		tn.apply(t, corsPolicy(attackerNS, "steal-f1", routeRef("steal-f1", ""), evil))
		tn.settle(t, attackerNS, "steal-f1", true)

		tn.refused(t, host, "/v1/transfers/42", evil, quiet)
		tn.allowed(t, host, "/v1/transfers/42", pay, quiet)
		tn.status(t, attackerNS, "steal-f1", notGranted(host, "/v1/transfers"))
		tn.reasonColumn(t, attackerNS, "steal-f1", v1alpha1.ReasonHostNotGranted)
	})

	t.Run("2 the victim's exact match, on a route the Gateway gives the victim", func(t *testing.T) {
		t.Parallel()
		host := tn.victim(t, "f2")
		tn.gateway(t, "infra", "edge-f2", "eg", listener("wild", "*.f2.example.com", gwapiv1.NamespacesFromAll))
		victimRoute := tn.route(t, victimNS, "app-f2", "infra/edge-f2", []string{host}, "api=/v1")
		tn.newerThan(t, victimRoute)
		tn.route(t, attackerNS, "copy-f2", "infra/edge-f2", []string{host}, "api=/v1")
		tn.apply(t, corsPolicy(attackerNS, "copy-f2", routeRef("copy-f2", ""), evil))
		tn.settle(t, attackerNS, "copy-f2", true)

		tn.refused(t, host, "/v1/orders", evil, quiet)
		tn.allowed(t, host, "/v1/orders", pay, quiet)
		tn.status(t, attackerNS, "copy-f2", notGranted(host, "/v1"))
		tn.status(t, victimNS, "api-f2", want{accepted: "True/Valid", ready: "True/Serving"})
	})

	t.Run("2b both granted: the older claim wins across namespaces", func(t *testing.T) {
		t.Parallel()
		// The platform granted shared.f2b to both teams. The victim's
		// hosts: policy is older than the attacker's route; attachment rank
		// (route beats hosts) orders one namespace's policies only.
		host := "shared.f2b.example.com"
		tn.apply(t, grant("both-f2b", []string{victimNS, attackerNS}, []string{host}))
		tn.apply(t, corsPolicy(victimNS, "api-f2b", hostsSel([]string{host}, "/v1"), pay))
		tn.settle(t, victimNS, "api-f2b", false)
		tn.allowed(t, host, "/v1/orders", pay, quiet)
		tn.gateway(t, "infra", "edge-f2b", "eg", listener("wild", "*.f2b.example.com", gwapiv1.NamespacesFromAll))
		tn.newerThan(t, tn.policy(t, victimNS, "api-f2b"))
		tn.route(t, attackerNS, "copy-f2b", "infra/edge-f2b", []string{host}, "api=/v1")
		tn.apply(t, corsPolicy(attackerNS, "copy-f2b", routeRef("copy-f2b", ""), evil))
		tn.settle(t, attackerNS, "copy-f2b", true)

		tn.refused(t, host, "/v1/orders", evil, quiet)
		tn.allowed(t, host, "/v1/orders", pay, quiet)
		tn.status(t, attackerNS, "copy-f2b", want{accepted: "True/", ready: "False/Conflicted", readyContains: []string{victimNS + "/api-f2b"}})
		tn.status(t, victimNS, "api-f2b", want{accepted: "True/Valid", ready: "True/Serving"})
	})

	t.Run("3 route without hostnames inherits every subdomain", func(t *testing.T) {
		t.Parallel()
		host := tn.victim(t, "f3")
		own := "orders.f3.example.com"
		tn.apply(t, grant("orders-f3", []string{attackerNS}, []string{own}))
		tn.gateway(t, "infra", "edge-f3", "eg", listener("wild", "*.f3.example.com", gwapiv1.NamespacesFromAll))
		tn.route(t, victimNS, "app-f3", "infra/edge-f3", []string{host}, "api=/v1")
		// No hostnames and a rule without matches: *.f3.example.com under /.
		tn.route(t, attackerNS, "wild-f3", "infra/edge-f3", nil, "all")
		tn.apply(t, corsPolicy(attackerNS, "wild-f3", routeRef("wild-f3", ""), evil))
		tn.settle(t, attackerNS, "wild-f3", true)

		tn.refused(t, host, "/account", evil, quiet) // a path the victim's policy does not list
		tn.refused(t, host, "/v1/transfers", evil, quiet)
		tn.allowed(t, host, "/v1/transfers", pay, quiet)
		// The granted part is served: the attacker's own host.
		tn.allowed(t, own, "/anything", evil, quiet)
		tn.status(t, attackerNS, "wild-f3", want{accepted: "True/PartiallyGranted", ready: "True/PartiallyGranted",
			acceptedContains: []string{"*.f3.example.com"}})
		tn.reasonColumn(t, attackerNS, "wild-f3", "PartiallyGranted")
	})

	t.Run("4 a Gateway of the attacker's own for the victim's host", func(t *testing.T) {
		t.Parallel()
		host := tn.victim(t, "f4")
		tn.gateway(t, attackerNS, "own-f4", "eg", listener("pay", host, gwapiv1.NamespacesFromSame))
		tn.route(t, attackerNS, "steal-f4", attackerNS+"/own-f4", []string{host}, "transfers=/v1/transfers")
		tn.apply(t, corsPolicy(attackerNS, "route-f4", routeRef("steal-f4", ""), evil))
		tn.apply(t, corsPolicy(attackerNS, "gateway-f4", gatewayRef("own-f4"), evil))
		tn.settle(t, attackerNS, "route-f4", true)
		tn.settle(t, attackerNS, "gateway-f4", true)

		tn.refused(t, host, "/v1/transfers/42", evil, quiet)
		tn.refused(t, host, "/", evil, quiet)
		tn.allowed(t, host, "/v1/transfers/42", pay, quiet)
		tn.status(t, attackerNS, "route-f4", notGranted(host, "/v1/transfers"))
		tn.status(t, attackerNS, "gateway-f4", notGranted(host, "/"))
	})

	t.Run("4b a Gateway of a class corsgate is not wired into", func(t *testing.T) {
		t.Parallel()
		// The attacker is granted this host: only the GatewayClass keeps
		// the policy off the edge corsgate serves.
		own := "orders.f4b.example.com"
		tn.apply(t, grant("orders-f4b", []string{attackerNS}, []string{own}))
		tn.gateway(t, attackerNS, "rogue-f4b", "rogue", listener("own", own, gwapiv1.NamespacesFromSame))
		tn.apply(t, corsPolicy(attackerNS, "rogue-f4b", gatewayRef("rogue-f4b"), evil))
		tn.settle(t, attackerNS, "rogue-f4b", true)

		tn.refused(t, own, "/", evil, quiet)
		tn.status(t, attackerNS, "rogue-f4b", want{ready: "False/", ancestors: "False/TargetNotFound", ancestorContains: []string{"GatewayClass"}})
	})

	t.Run("5 rule-level attachment to a copy of the victim's route", func(t *testing.T) {
		t.Parallel()
		host := tn.victim(t, "f5")
		tn.gateway(t, "infra", "edge-f5", "eg", listener("wild", "*.f5.example.com", gwapiv1.NamespacesFromAll))
		victimRoute := tn.route(t, victimNS, "app-f5", "infra/edge-f5", []string{host}, "api=/v1")
		tn.apply(t, corsPolicy(victimNS, "app-f5", routeRef("app-f5", ""), pay))
		tn.newerThan(t, victimRoute)
		tn.route(t, attackerNS, "copy-f5", "infra/edge-f5", []string{host}, "api=/v1")
		tn.apply(t, corsPolicy(attackerNS, "copy-f5", routeRef("copy-f5", "api"), evil))
		tn.settle(t, attackerNS, "copy-f5", true)

		tn.refused(t, host, "/v1/transfers", evil, quiet)
		tn.allowed(t, host, "/v1/transfers", pay, quiet)
		tn.status(t, attackerNS, "copy-f5", notGranted(host, "/v1"))
		tn.status(t, victimNS, "app-f5", want{accepted: "True/Valid", ready: "True/Serving"})
	})

	t.Run("5b both granted: an older route beats a newer rule-level policy", func(t *testing.T) {
		t.Parallel()
		host := "shared.f5b.example.com"
		tn.apply(t, grant("both-f5b", []string{victimNS, attackerNS}, []string{host}))
		tn.gateway(t, "infra", "edge-f5b", "eg", listener("wild", "*.f5b.example.com", gwapiv1.NamespacesFromAll))
		victimRoute := tn.route(t, victimNS, "app-f5b", "infra/edge-f5b", []string{host}, "api=/v1")
		tn.apply(t, corsPolicy(victimNS, "app-f5b", routeRef("app-f5b", ""), pay))
		tn.settle(t, victimNS, "app-f5b", true)
		tn.newerThan(t, victimRoute)
		tn.route(t, attackerNS, "copy-f5b", "infra/edge-f5b", []string{host}, "api=/v1")
		tn.apply(t, corsPolicy(attackerNS, "copy-f5b", routeRef("copy-f5b", "api"), evil))
		tn.settle(t, attackerNS, "copy-f5b", true)

		tn.refused(t, host, "/v1/transfers", evil, quiet)
		tn.allowed(t, host, "/v1/transfers", pay, quiet)
		tn.status(t, attackerNS, "copy-f5b", want{accepted: "True/", ready: "False/Conflicted", readyContains: []string{victimNS + "/app-f5b"}})
		tn.status(t, victimNS, "app-f5b", want{accepted: "True/Valid", ready: "True/Serving"})
	})

	t.Run("6 path delegation: blog takes the shop's path through a route", func(t *testing.T) {
		t.Parallel()
		host := "www.f6.example.com"
		shop := "https://shop.example.com"
		tn.apply(t, grant("blog-f6", []string{"blog"}, []string{host}, "/blog"))
		tn.apply(t, grant("shop-f6", []string{"shop"}, []string{host}, "/shop"))
		tn.apply(t, corsPolicy("shop", "shop-f6", hostsSel([]string{host}, "/shop"), shop))
		tn.gateway(t, "infra", "edge-f6", "eg", listener("www", host, gwapiv1.NamespacesFromAll))
		tn.route(t, "blog", "take-f6", "infra/edge-f6", []string{host}, "checkout=/shop/checkout")
		tn.apply(t, corsPolicy("blog", "take-f6", routeRef("take-f6", ""), evil))
		tn.settle(t, "blog", "take-f6", true)

		tn.refused(t, host, "/shop/checkout", evil, quiet)
		tn.allowed(t, host, "/shop/checkout", shop, quiet)
		tn.status(t, "blog", "take-f6", notGranted(host, "/shop/checkout"))
	})

	t.Run("6b a rule without matches serves the granted prefix only", func(t *testing.T) {
		t.Parallel()
		host := "www.f6b.example.com"
		blog, shop := "https://blog.example.com", "https://shop.example.com"
		tn.apply(t, grant("blog-f6b", []string{"blog"}, []string{host}, "/blog"))
		tn.apply(t, grant("shop-f6b", []string{"shop"}, []string{host}, "/shop"))
		tn.apply(t, corsPolicy("shop", "shop-f6b", hostsSel([]string{host}, "/shop"), shop))
		tn.gateway(t, "infra", "edge-f6b", "eg", listener("www", host, gwapiv1.NamespacesFromAll))
		tn.route(t, "blog", "all-f6b", "infra/edge-f6b", []string{host}, "all")
		tn.apply(t, corsPolicy("blog", "all-f6b", routeRef("all-f6b", ""), blog))
		tn.settle(t, "blog", "all-f6b", true)

		tn.allowed(t, host, "/blog/post", blog, quiet)
		tn.refused(t, host, "/about", blog, quiet) // no grant covers /
		tn.refused(t, host, "/shop/cart", blog, quiet)
		tn.allowed(t, host, "/shop/cart", shop, quiet)
		tn.status(t, "blog", "all-f6b", want{accepted: "True/PartiallyGranted", ready: "True/PartiallyGranted", acceptedContains: []string{host}})
	})

	t.Run("7 a cut-off DryRun or Forward policy cannot switch off the victim's enforcement", func(t *testing.T) {
		t.Parallel()
		host := tn.victim(t, "f7")
		tn.gateway(t, "infra", "edge-f7", "eg", listener("wild", "*.f7.example.com", gwapiv1.NamespacesFromAll))
		tn.route(t, attackerNS, "dry-f7", "infra/edge-f7", []string{host}, "transfers=/v1/transfers")
		tn.route(t, attackerNS, "fwd-f7", "infra/edge-f7", []string{host}, "accounts=/v1/accounts")
		// Neither allows evil.example: each hands the victim's requests to
		// its upstream, which reflects any origin with credentials.
		tn.apply(t, corsPolicy(attackerNS, "dry-f7", routeRef("dry-f7", "")+", mode: DryRun", "https://orders.example.com"))
		tn.apply(t, corsPolicy(attackerNS, "fwd-f7", routeRef("fwd-f7", "")+", unmatchedPreflight: Forward", "https://orders.example.com"))
		tn.settle(t, attackerNS, "dry-f7", true)
		tn.settle(t, attackerNS, "fwd-f7", true)

		for _, path := range []string{"/v1/transfers/42", "/v1/accounts/7"} {
			tn.refused(t, host, path, evil, reflecting)
			tn.allowed(t, host, path, pay, reflecting)
		}
		tn.status(t, attackerNS, "dry-f7", notGranted(host, "/v1/transfers"))
		tn.status(t, attackerNS, "fwd-f7", notGranted(host, "/v1/accounts"))
	})

	t.Run("8 a /blog/ grant never covers /blog", func(t *testing.T) {
		t.Parallel()
		// Without the Gateway API: hosts: policies only.
		host := "www.f8.example.com"
		web, blog := "https://web.example.com", "https://blog.example.com"
		tn.apply(t, grant("web-f8", []string{"web"}, []string{host}))
		tn.apply(t, grant("blog-f8", []string{"blog"}, []string{host}, "/blog/"))
		tn.apply(t, corsPolicy("web", "site-f8", hostsSel([]string{host}), web))
		tn.apply(t, corsPolicy("blog", "slash-f8", hostsSel([]string{host}, "/blog/"), evil))
		// Strictly under the grant's prefix: still admitted.
		tn.apply(t, corsPolicy("blog", "posts-f8", hostsSel([]string{host}, "/blog/posts"), blog))
		tn.settle(t, "blog", "slash-f8", false)
		tn.settle(t, "blog", "posts-f8", false)

		for _, path := range []string{"/blog", "/blog/", "/blog/about"} {
			tn.refused(t, host, path, evil, quiet)
			tn.allowed(t, host, path, web, quiet)
		}
		tn.allowed(t, host, "/blog/posts/1", blog, quiet)
		tn.status(t, "blog", "slash-f8", want{accepted: "False/HostNotGranted", ready: "False/HostNotGranted",
			acceptedContains: []string{host, "/blog", "kubectl apply"}})
		tn.status(t, "blog", "posts-f8", want{accepted: "True/Valid", ready: "True/Serving"})
	})

	t.Run("held/host spellings", func(t *testing.T) {
		t.Parallel()
		host := tn.victim(t, "h1")
		for i, claim := range []string{"PAYMENTS.H1.EXAMPLE.COM", "*.h1.example.com", host + ":443", host + "."} {
			name := fmt.Sprintf("spelling-%d", i)
			out, err := tn.run(corsPolicy(attackerNS, name, hostsSel([]string{claim}, "/v1/transfers"), evil), "apply", "-f", "-")
			if err != nil {
				// Refused by the API server (the CRD's host pattern).
				t.Logf("hosts [%s] refused at apply: %s", claim, strings.TrimSpace(out))
				if !strings.Contains(out, "spec.hosts") {
					t.Errorf("apply of hosts [%s] failed, but not on spec.hosts: %v\n%s", claim, err, out)
				}
				continue
			}
			tn.settle(t, attackerNS, name, false)
			tn.status(t, attackerNS, name, want{accepted: "False/HostNotGranted", ready: "False/HostNotGranted"})
		}
		for _, authority := range []string{host, strings.ToUpper(host), host + ":443", host + ".", "x.h1.example.com"} {
			tn.refused(t, authority, "/v1/transfers/42", evil, quiet)
		}
		tn.allowed(t, host, "/v1/transfers/42", pay, quiet)
	})

	t.Run("held/forged route status", func(t *testing.T) {
		t.Parallel()
		// The attacker is granted its host; the listener admits routes of
		// its own namespace only. The attacker writes Accepted=True into its
		// route's status itself: corsgate checks allowedRoutes, not the
		// forged status alone.
		own := "orders.h2.example.com"
		tn.apply(t, grant("orders-h2", []string{attackerNS}, []string{own}))
		tn.gateway(t, "infra", "edge-h2", "eg", listener("wild", "*.h2.example.com", gwapiv1.NamespacesFromSame))
		r := tn.route(t, attackerNS, "forged-h2", "infra/edge-h2", []string{own}, "all")
		if c := meta.FindStatusCondition(r.Status.Parents[0].Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionFalse {
			t.Fatalf("the Gateway controller accepted a route its listener does not admit: %+v", r.Status.Parents)
		}
		tn.routeStatus(t, attackerNS, "forged-h2", func(*gwapiv1.HTTPRoute, *gwapiv1.Gateway) bool { return true })
		tn.apply(t, corsPolicy(attackerNS, "forged-h2", routeRef("forged-h2", ""), evil))
		tn.settle(t, attackerNS, "forged-h2", true)

		tn.refused(t, own, "/", evil, quiet)
		tn.status(t, attackerNS, "forged-h2", want{ready: "False/", ancestors: "False/TargetNotFound"})
	})
}

// startTenancy starts the control plane with the corsgate and Gateway API
// CRDs, the namespaces and GatewayClasses, and corsgate with its defaults.
func startTenancy(t *testing.T) *tenancy {
	t.Helper()
	cluster := envtesting.New(t, envtesting.Options{
		GatewayAPI: envtesting.GatewayClassesGatewaysAndRoutes, Scheme: tenancyScheme, StopTimeout: apiServerStopTimeout,
	})
	env, c := cluster.Env, cluster.Client
	tn := &tenancy{c: c, kubectl: cluster.KubectlPath(), kc: kubeconfig(t, env, "")}
	ctx := context.Background()
	for _, ns := range []string{victimNS, attackerNS, "infra", "blog", "shop", "web"} {
		tn.kubectlOK(t, "", "create", "namespace", ns)
	}
	for class, ctl := range map[string]string{"eg": egController, "rogue": rogueController} {
		gc := &gwapiv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: class}, Spec: gwapiv1.GatewayClassSpec{ControllerName: gwapiv1.GatewayController(ctl)}}
		if err := c.Create(ctx, gc); err != nil {
			t.Fatal(err)
		}
		gc.Status.Conditions = gen.AcceptedAt(gc.Generation)
		if err := c.Status().Update(ctx, gc); err != nil {
			t.Fatal(err)
		}
	}

	// The binary with its defaults: no --host-ownership, no --gateway-classes.
	s := runKubeCorsgate(t, tn.kc, "--leader-elect", "--leader-election-namespace", "default")
	conn := plainConn(t, s.addr)
	waitFor(t, 2*time.Minute, "corsgate SERVING", func() bool {
		st, err := s.health(conn)
		return err == nil && st == healthpb.HealthCheckResponse_SERVING
	})
	tn.cg, tn.sim = s, envoy(t, s.addr)
	return tn
}

// victim sets up the victim of case id: payments.<id>.example.com granted
// to the victim's namespace, and its hosts: policy for /v1 allowing its own
// app with credentials, served. It returns the host.
func (tn *tenancy) victim(t *testing.T, id string) string {
	t.Helper()
	host := "payments." + id + ".example.com"
	tn.apply(t, grant("payments-"+id, []string{victimNS}, []string{host}))
	tn.apply(t, corsPolicy(victimNS, "api-"+id, hostsSel([]string{host}, "/v1"), pay))
	tn.allowed(t, host, "/v1", pay, quiet)
	return host
}

func (tn *tenancy) run(stdin string, args ...string) (string, error) {
	cmd := exec.Command(tn.kubectl, append([]string{"--kubeconfig", tn.kc}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (tn *tenancy) kubectlOK(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := tn.run(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s\n%s", strings.Join(args, " "), err, out, stdin)
	}
	return out
}

func (tn *tenancy) apply(t *testing.T, yaml string) {
	t.Helper()
	tn.kubectlOK(t, yaml, "apply", "-f", "-")
}

func quote(list []string) string {
	b, _ := json.Marshal(list)
	return string(b)
}

// corsPolicy is a CorsPolicy allowing origin to PUT with credentials; sel
// is the rest of the spec, in YAML flow style.
func corsPolicy(ns, name, sel, origin string) string {
	return fmt.Sprintf("apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\nmetadata: {namespace: %s, name: %s}\n"+
		"spec: {%s, allowOrigins: [%q], allowMethods: [PUT], allowCredentials: true}\n", ns, name, sel, origin)
}

func hostsSel(hosts []string, prefixes ...string) string {
	s := "hosts: " + quote(hosts)
	if len(prefixes) > 0 {
		s += ", pathPrefixes: " + quote(prefixes)
	}
	return s
}

func routeRef(name, section string) string {
	s := "group: gateway.networking.k8s.io, kind: HTTPRoute, name: " + name
	if section != "" {
		s += ", sectionName: " + section
	}
	return "targetRefs: [{" + s + "}]"
}

func gatewayRef(name string) string {
	return "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: " + name + "}]"
}

func grant(name string, namespaces, hosts []string, prefixes ...string) string {
	spec := "namespaces: " + quote(namespaces) + ", hosts: " + quote(hosts)
	if len(prefixes) > 0 {
		spec += ", pathPrefixes: " + quote(prefixes)
	}
	return fmt.Sprintf("apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsHostGrant\nmetadata: {name: %s}\nspec: {%s}\n", name, spec)
}

func listener(name, host string, from gwapiv1.FromNamespaces) gwapiv1.Listener {
	l := gwapiv1.Listener{Name: gwapiv1.SectionName(name), Port: 80, Protocol: gwapiv1.HTTPProtocolType,
		AllowedRoutes: &gwapiv1.AllowedRoutes{Namespaces: &gwapiv1.RouteNamespaces{From: new(from)}}}
	if host != "" {
		l.Hostname = new(gwapiv1.Hostname(host))
	}
	return l
}

// gateway creates a Gateway and accepts it at its generation, as the
// controller of its class would.
func (tn *tenancy) gateway(t *testing.T, ns, name, class string, listeners ...gwapiv1.Listener) {
	t.Helper()
	gw := &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gwapiv1.GatewaySpec{GatewayClassName: gwapiv1.ObjectName(class), Listeners: listeners}}
	if err := tn.c.Create(context.Background(), gw); err != nil {
		t.Fatal(err)
	}
	gw.Status.Conditions = gen.AcceptedAt(gw.Generation)
	if err := tn.c.Status().Update(context.Background(), gw); err != nil {
		t.Fatal(err)
	}
}

// route creates an HTTPRoute under parent ("namespace/name") with one rule
// per "name=/prefix" ("name" alone: no matches, which the CRD defaults to
// PathPrefix /), and writes its status as the Gateway controller would.
func (tn *tenancy) route(t *testing.T, ns, name, parent string, hostnames []string, rules ...string) *gwapiv1.HTTPRoute {
	t.Helper()
	pns, pname, _ := strings.Cut(parent, "/")
	r := &gwapiv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	r.Spec.ParentRefs = []gwapiv1.ParentReference{{Name: gwapiv1.ObjectName(pname), Namespace: new(gwapiv1.Namespace(pns))}}
	for _, h := range hostnames {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gwapiv1.Hostname(h))
	}
	for _, rule := range rules {
		rname, prefix, ok := strings.Cut(rule, "=")
		hr := gwapiv1.HTTPRouteRule{Name: new(gwapiv1.SectionName(rname)),
			BackendRefs: []gwapiv1.HTTPBackendRef{{BackendRef: gwapiv1.BackendRef{BackendObjectReference: gwapiv1.BackendObjectReference{Name: "app", Port: new(gwapiv1.PortNumber(8080))}}}}}
		if ok {
			hr.Matches = []gwapiv1.HTTPRouteMatch{{Path: &gwapiv1.HTTPPathMatch{Type: new(gwapiv1.PathMatchPathPrefix), Value: new(prefix)}}}
		}
		r.Spec.Rules = append(r.Spec.Rules, hr)
	}
	if err := tn.c.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return tn.routeStatus(t, ns, name, admitted)
}

// admitted is the Gateway controller's verdict: a listener of gw (of the
// parentRef's sectionName, if any) admits route's namespace.
func admitted(route *gwapiv1.HTTPRoute, gw *gwapiv1.Gateway) bool {
	for _, l := range gw.Spec.Listeners {
		from := gwapiv1.NamespacesFromSame
		if l.AllowedRoutes != nil && l.AllowedRoutes.Namespaces != nil && l.AllowedRoutes.Namespaces.From != nil {
			from = *l.AllowedRoutes.Namespaces.From
		}
		if from == gwapiv1.NamespacesFromAll || from == gwapiv1.NamespacesFromSame && gw.Namespace == route.Namespace {
			return true
		}
	}
	return false
}

// routeStatus writes route's status.parents at its generation: Accepted
// where accept says so, by the controller of each parent's class.
func (tn *tenancy) routeStatus(t *testing.T, ns, name string, accept func(*gwapiv1.HTTPRoute, *gwapiv1.Gateway) bool) *gwapiv1.HTTPRoute {
	t.Helper()
	ctx := context.Background()
	var r gwapiv1.HTTPRoute
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := tn.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r); err != nil {
			return err
		}
		r.Status.Parents = nil
		for _, pr := range r.Spec.ParentRefs {
			var gw gwapiv1.Gateway
			if err := tn.c.Get(ctx, client.ObjectKey{Namespace: string(ptr.Deref(pr.Namespace, gwapiv1.Namespace(ns))), Name: string(pr.Name)}, &gw); err != nil {
				return err
			}
			ctl := egController
			if gw.Spec.GatewayClassName != "eg" {
				ctl = rogueController
			}
			conds := gen.AcceptedAt(r.Generation)
			if !accept(&r, &gw) {
				conds[0].Status, conds[0].Reason, conds[0].Message = metav1.ConditionFalse, "NotAllowedByListeners", "no listener admits the route's namespace"
			}
			r.Status.Parents = append(r.Status.Parents, gwapiv1.RouteParentStatus{ParentRef: pr, ControllerName: gwapiv1.GatewayController(ctl), Conditions: conds})
		}
		return tn.c.Status().Update(ctx, &r)
	})
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

func (tn *tenancy) policy(t *testing.T, ns, name string) *v1alpha1.CorsPolicy {
	t.Helper()
	var p v1alpha1.CorsPolicy
	if err := tn.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// newerThan returns once an object created now would be strictly younger
// than obj: creation timestamps have one-second resolution, and where two
// claims are equally old the namespace name decides.
func (tn *tenancy) newerThan(t *testing.T, obj metav1.Object) {
	t.Helper()
	created := obj.GetCreationTimestamp().Time
	waitFor(t, 10*time.Second, "a creation second after "+obj.GetName()+"'s", func() bool { return time.Now().After(created.Add(time.Second)) })
}

// settle waits until the policy's status describes its current generation
// (and, for a targetRefs policy, lists its ancestors): the build that wrote
// it is the table being served.
func (tn *tenancy) settle(t *testing.T, ns, name string, targetRefs bool) {
	t.Helper()
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for {
		p := tn.policy(t, ns, name)
		last = summary(p)
		a := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionAccepted)
		r := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		if p.Status.ObservedGeneration == p.Generation && a != nil && r != nil && a.ObservedGeneration == p.Generation &&
			r.ObservedGeneration == p.Generation && (!targetRefs || len(p.Status.Ancestors) > 0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s: status never described generation %d; last: %s\ncorsgate output:\n%s", ns, name, p.Generation, last, tn.cg.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// summary is a policy's conditions and ancestors, for failure messages.
func summary(p *v1alpha1.CorsPolicy) string {
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d observed %d;", p.Generation, p.Status.ObservedGeneration)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s/%s (gen %d) %q;", c.Type, c.Status, c.Reason, c.ObservedGeneration, c.Message)
	}
	for _, a := range p.Status.Ancestors {
		for _, c := range a.Conditions {
			fmt.Fprintf(&b, " ancestor %s/%s %s=%s/%s %q;", ptr.Deref(a.AncestorRef.Namespace, ""), a.AncestorRef.Name, c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return b.String()
}

// want is a policy status: "Status/Reason" of a condition ("False/" for
// any reason), messages that must contain strings, and the Accepted
// condition of every corsgate entry in status.ancestors.
type want struct {
	accepted, ready, ancestors                        string
	acceptedContains, readyContains, ancestorContains []string
}

// notGranted is the status of a targetRefs policy of which no part is
// granted: the Accepted condition names the host and prefix and the grant
// to create, and so does every ancestor.
func notGranted(host, prefix string) want {
	return want{accepted: "False/HostNotGranted", ready: "False/HostNotGranted", ancestors: "False/HostNotGranted",
		acceptedContains: []string{host, prefix, "kubectl apply"}}
}

func condMatches(c *metav1.Condition, want string, contains []string) bool {
	if want == "" {
		return true
	}
	if c == nil {
		return false
	}
	status, reason, _ := strings.Cut(want, "/")
	if string(c.Status) != status || reason != "" && c.Reason != reason {
		return false
	}
	for _, s := range contains {
		if !strings.Contains(c.Message, s) {
			return false
		}
	}
	return true
}

// status waits for the policy's status to be w; the table has already been
// built (settle), so this waits for the status writer only.
func (tn *tenancy) status(t *testing.T, ns, name string, w want) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		p := tn.policy(t, ns, name)
		last = summary(p)
		ok := condMatches(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionAccepted), w.accepted, w.acceptedContains) &&
			condMatches(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady), w.ready, w.readyContains)
		if w.ancestors != "" {
			n := 0
			for _, a := range p.Status.Ancestors {
				if a.ControllerName != v1alpha1.ControllerName {
					continue
				}
				n++
				ok = ok && condMatches(meta.FindStatusCondition(a.Conditions, "Accepted"), w.ancestors, w.ancestorContains)
			}
			ok = ok && n > 0
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s/%s status: want Accepted %q %q, Ready %q %q, ancestors %q %q; got %s", ns, name,
				w.accepted, w.acceptedContains, w.ready, w.readyContains, w.ancestors, w.ancestorContains, last)
			return
		}
	}
}

// reasonColumn checks `kubectl get corspolicies` shows the Ready reason.
func (tn *tenancy) reasonColumn(t *testing.T, ns, name, reason string) {
	t.Helper()
	out := tn.kubectlOK(t, "", "get", "corspolicies", "-n", ns, name)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "REASON") || !strings.Contains(lines[1], reason) {
		t.Errorf("kubectl get corspolicies -n %s %s should show a REASON column with %s:\n%s", ns, name, reason, out)
	}
}

// Upstreams. quiet sets no CORS headers, so any Access-Control-Allow-Origin
// a browser sees came from corsgate. reflecting is the victim's upstream in
// finding 7: it reflects any origin, with credentials, as many apps do.
var (
	quiet = envoystandin.Upstream{Handler: func(_ context.Context, r *envoystandin.UpstreamRequest) (*envoystandin.UpstreamResponse, error) {
		if r.Method == "OPTIONS" {
			return &envoystandin.UpstreamResponse{Status: 405}, nil
		}
		return &envoystandin.UpstreamResponse{Status: 200, Body: []byte(`{}`)}, nil
	}}
	reflecting = envoystandin.Upstream{Handler: func(_ context.Context, r *envoystandin.UpstreamRequest) (*envoystandin.UpstreamResponse, error) {
		h := envoystandin.NewHeaders("access-control-allow-origin", r.Headers.Get("origin"), "access-control-allow-credentials", "true")
		if r.Method == "OPTIONS" {
			return &envoystandin.UpstreamResponse{Status: 204, Headers: append(h, envoystandin.NewHeaders("access-control-allow-methods", "PUT")...)}, nil
		}
		return &envoystandin.UpstreamResponse{Status: 200, Headers: h, Body: []byte(`{}`)}, nil
	}}
)

// browserSees is what a browser sees of a preflight (PUT) and of an actual
// GET from origin: the status and Access-Control-Allow-Origin of each.
func (tn *tenancy) browserSees(authority, path, origin string, up envoystandin.Upstream) (pre, act answer, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := tn.sim.Do(ctx, envoystandin.Request{Method: "OPTIONS", Authority: authority, Path: path,
		Headers: envoystandin.NewHeaders("origin", origin, "access-control-request-method", "PUT")}, up)
	if err != nil {
		return pre, act, err
	}
	pre = answer{res.Status, res.Headers.Get("access-control-allow-origin")}
	res, err = tn.sim.Do(ctx, envoystandin.Request{Method: "GET", Authority: authority, Path: path,
		Headers: envoystandin.NewHeaders("origin", origin)}, up)
	if err != nil {
		return pre, act, err
	}
	return pre, answer{res.Status, res.Headers.Get("access-control-allow-origin")}, nil
}

// expect waits until the preflight and the actual request from origin get
// what ok says, and reports the last answers when they never do.
func (tn *tenancy) expect(t *testing.T, what, authority, path, origin string, up envoystandin.Upstream, ok func(pre, act answer) bool) {
	t.Helper()
	var pre, act answer
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		pre, act, err = tn.browserSees(authority, path, origin, up)
		if err == nil && ok(pre, act) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s%s from %s: want %s; got preflight %s, actual %s (error %v)", authority, path, origin, what, pre, act, err)
			return
		}
	}
}

// refused: origin gets no Access-Control-Allow-Origin, preflight or actual.
func (tn *tenancy) refused(t *testing.T, authority, path, origin string, up envoystandin.Upstream) {
	t.Helper()
	tn.expect(t, "no Access-Control-Allow-Origin", authority, path, origin, up, func(pre, act answer) bool {
		return pre.acao == "" && act.acao == ""
	})
}

// allowed: the edge answers the preflight (204) and both carry origin.
func (tn *tenancy) allowed(t *testing.T, authority, path, origin string, up envoystandin.Upstream) {
	t.Helper()
	tn.expect(t, "Access-Control-Allow-Origin "+origin, authority, path, origin, up, func(pre, act answer) bool {
		return pre == allowed(origin) && act.acao == origin
	})
}
