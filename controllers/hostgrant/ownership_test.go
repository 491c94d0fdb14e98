package hostgrant_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
)

const (
	accepted = v1alpha1.ConditionAccepted
	ready    = v1alpha1.ConditionReady
	notGrant = v1alpha1.ReasonHostNotGranted
)

// TestUngrantedHostThenGranted: a policy for a host no grant gives its
// namespace is refused, and its status names the host, the namespace and
// the grant to create; running the command from the message serves it.
func TestUngrantedHostThenGranted(t *testing.T) {
	t.Parallel()
	ns := namespace(t, nil)
	host := ns + ".ungranted.example.com"
	policy(t, ns, "api", []string{host}, nil, "https://app.example.com")
	msg := statusIs(t, ns, "api", accepted, metav1.ConditionFalse, notGrant, host, `namespace "`+ns+`"`, "kubectl apply")
	statusIs(t, ns, "api", ready, metav1.ConditionFalse, notGrant, host)
	if got := servedBy(host, "/"); got != "" {
		t.Fatalf("ungranted policy served as %s", got)
	}

	// The message ends with a command for a cluster administrator: run it.
	m := regexp.MustCompile(`kubectl apply -f - <<< '(.*)'$`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no kubectl command in %q", msg)
	}
	start := time.Now()
	out, err := kubectl(m[1], "apply", "-f", "-")
	if err != nil {
		t.Fatalf("the grant the message suggests is refused: %v\n%s", err, out)
	}
	name := ns + "-" + host
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), &v1alpha1.CorsHostGrant{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	decides(t, ns+"/api", host, "/", "https://app.example.com")
	t.Logf("served %v after `kubectl apply` of the grant started", time.Since(start))
	statusIs(t, ns, "api", accepted, metav1.ConditionTrue, v1alpha1.ReasonValid)
	statusIs(t, ns, "api", ready, metav1.ConditionTrue, v1alpha1.ReasonServing)
	grantAdmits(t, name, ns+"/api")
}

// TestGrantNarrowedThenDeleted: what a grant stops covering is withdrawn,
// and the policy's status says why it stopped serving.
func TestGrantNarrowedThenDeleted(t *testing.T) {
	t.Parallel()
	ns := namespace(t, nil)
	host := ns + ".narrowed.example.com"
	grant := ns + "-narrowed"
	createGrant(t, grant, v1alpha1.CorsHostGrantSpec{Namespaces: []string{ns}, Hosts: []string{host, "other." + host}})
	policy(t, ns, "api", []string{host}, []string{"/v1"}, "https://app.example.com")
	decides(t, ns+"/api", host, "/v1/orders", "https://app.example.com")
	grantAdmits(t, grant, ns+"/api")

	// Narrowed to another path: /v1 is no longer covered.
	updateGrant(t, grant, func(s *v1alpha1.CorsHostGrantSpec) { s.PathPrefixes = []string{"/v2"} })
	notServing(t, ns+"/api", host, "/v1/orders")
	statusIs(t, ns, "api", ready, metav1.ConditionFalse, notGrant, "stopped serving", "deleted or narrowed", host)
	grantAdmits(t, grant)

	// Widened again, then deleted.
	updateGrant(t, grant, func(s *v1alpha1.CorsHostGrantSpec) { s.PathPrefixes = []string{"/v1"} })
	decides(t, ns+"/api", host, "/v1/orders", "https://app.example.com")
	statusIs(t, ns, "api", ready, metav1.ConditionTrue, v1alpha1.ReasonServing)
	// Narrowed by host this time.
	updateGrant(t, grant, func(s *v1alpha1.CorsHostGrantSpec) { s.Hosts = []string{"other." + host} })
	notServing(t, ns+"/api", host, "/v1/orders")
	statusIs(t, ns, "api", accepted, metav1.ConditionFalse, notGrant, "stopped serving")
	updateGrant(t, grant, func(s *v1alpha1.CorsHostGrantSpec) { s.Hosts = []string{host} })
	decides(t, ns+"/api", host, "/v1/orders", "https://app.example.com")

	start := time.Now()
	if err := k8s.Delete(context.Background(), &v1alpha1.CorsHostGrant{ObjectMeta: metav1.ObjectMeta{Name: grant}}); err != nil {
		t.Fatal(err)
	}
	notServing(t, ns+"/api", host, "/v1/orders")
	t.Logf("withdrawn %v after the Delete call started", time.Since(start))
	statusIs(t, ns, "api", ready, metav1.ConditionFalse, notGrant, "stopped serving", `namespace "`+ns+`"`)
}

// TestPrefixesOfOneHost: two namespaces granted different path prefixes of
// one host (Contour's HTTPProxy includes, as grants) each serve only their
// own, and neither can take the other's.
func TestPrefixesOfOneHost(t *testing.T) {
	t.Parallel()
	blog, shop := namespace(t, nil), namespace(t, nil)
	host := blog + ".www.example.com"
	createGrant(t, blog+"-blog", v1alpha1.CorsHostGrantSpec{Namespaces: []string{blog}, Hosts: []string{host}, PathPrefixes: []string{"/blog"}})
	createGrant(t, shop+"-shop", v1alpha1.CorsHostGrantSpec{Namespaces: []string{shop}, Hosts: []string{host}, PathPrefixes: []string{"/shop"}})
	policy(t, blog, "blog", []string{host}, []string{"/blog"}, "https://blog.example.com")
	policy(t, shop, "shop", []string{host}, []string{"/shop"}, "https://shop.example.com")
	// The shop team also tries the blog's prefix, older policies first or not.
	policy(t, shop, "grab", []string{host}, []string{"/blog/admin"}, "https://shop.example.com")
	decides(t, blog+"/blog", host, "/blog/post", "https://blog.example.com")
	decides(t, shop+"/shop", host, "/shop/cart", "https://shop.example.com")
	statusIs(t, shop, "grab", accepted, metav1.ConditionFalse, notGrant, `"/blog/admin"`, `namespace "`+shop+`"`)
	if got := servedBy(host, "/blog/admin/x"); got != blog+"/blog" {
		t.Errorf("/blog/admin/x served by %q, want %s/blog", got, blog)
	}
	if got := servedBy(host, "/"); got != "" {
		t.Errorf("/ served by %q: no grant covers it", got)
	}
	grantAdmits(t, blog+"-blog", blog+"/blog")
	grantAdmits(t, shop+"-shop", shop+"/shop")
}

// TestSelectorFollowsNamespaceLabels: a namespaceSelector grant admits a
// namespace when it is labelled and withdraws when the label goes.
func TestSelectorFollowsNamespaceLabels(t *testing.T) {
	t.Parallel()
	ns := namespace(t, nil)
	host := ns + ".labels.example.com"
	team := "team-" + ns
	createGrant(t, ns+"-by-label", v1alpha1.CorsHostGrantSpec{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"corsgate.io/team": team}},
		Hosts:             []string{"*." + host},
	})
	policy(t, ns, "api", []string{"eu." + host}, nil, "https://app.example.com")
	statusIs(t, ns, "api", accepted, metav1.ConditionFalse, notGrant, "eu."+host)

	label := func(value *string) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var n corev1.Namespace
			if err := k8s.Get(context.Background(), client.ObjectKey{Name: ns}, &n); err != nil {
				return err
			}
			if value == nil {
				delete(n.Labels, "corsgate.io/team")
			} else {
				if n.Labels == nil {
					n.Labels = map[string]string{}
				}
				n.Labels["corsgate.io/team"] = *value
			}
			return k8s.Update(context.Background(), &n)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	label(&team)
	decides(t, ns+"/api", "eu."+host, "/", "https://app.example.com")
	statusIs(t, ns, "api", accepted, metav1.ConditionTrue, v1alpha1.ReasonValid)
	grantAdmits(t, ns+"-by-label", ns+"/api")

	other := "someone-else"
	label(&other)
	notServing(t, ns+"/api", "eu."+host, "/")
	statusIs(t, ns, "api", ready, metav1.ConditionFalse, notGrant, "stopped serving", "namespaceSelector")
	label(&team)
	decides(t, ns+"/api", "eu."+host, "/", "https://app.example.com")
	label(nil)
	notServing(t, ns+"/api", "eu."+host, "/")
}

// TestEveryHostGrant: a policy without hosts selects every host and needs
// the platform team's every-host grant, by name, for its namespace.
func TestEveryHostGrant(t *testing.T) {
	t.Parallel()
	ns := namespace(t, nil)
	host := ns + ".anything.example.com"
	// A path no other test uses, so that the any-host policy decides it.
	path := "/" + ns
	policy(t, ns, "edge", nil, []string{path}, "https://platform.example.com")
	statusIs(t, ns, "edge", accepted, metav1.ConditionFalse, notGrant, "every host", "spec.hosts", `"allHosts":true`)
	if got := servedBy(host, path); got != "" {
		t.Fatalf("ungranted any-host policy served as %s", got)
	}

	// An ordinary grant of many hosts does not cover every host.
	createGrant(t, ns+"-wide", v1alpha1.CorsHostGrantSpec{Namespaces: []string{ns}, Hosts: []string{"*.example.com"}})
	statusIs(t, ns, "edge", accepted, metav1.ConditionFalse, notGrant, "every host")

	createGrant(t, "platform-"+ns, v1alpha1.CorsHostGrantSpec{Namespaces: []string{ns}, AllHosts: true})
	decides(t, ns+"/edge", host, path, "https://platform.example.com")
	decides(t, ns+"/edge", "unrelated.test", path, "https://platform.example.com")
	statusIs(t, ns, "edge", ready, metav1.ConditionTrue, v1alpha1.ReasonServing)
	grantAdmits(t, "platform-"+ns, ns+"/edge")
}

func kubectl(stdin string, args ...string) (string, error) {
	cmd := kubectlUser.Command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
