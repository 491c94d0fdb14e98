package compile_test

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/test/gen"
)

func hostGrant(name string, spec v1alpha1.CorsHostGrantSpec) v1alpha1.CorsHostGrant {
	return v1alpha1.CorsHostGrant{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1}, Spec: spec}
}

// TestOwnership checks which claims a grant covers: the CorsPolicy host
// syntax (a wildcard covers strict subdomains only, as in the Gateway API's
// hostname matching), path prefixes segment by segment, namespaces by name
// and by label, and the every-host grant.
func TestOwnership(t *testing.T) {
	t.Parallel()
	grants := []v1alpha1.CorsHostGrant{
		hostGrant("payments", v1alpha1.CorsHostGrantSpec{Namespaces: []string{"payments"}, Hosts: []string{"payments.example.com", "*.payments.example.com"}}),
		hostGrant("blog", v1alpha1.CorsHostGrantSpec{Namespaces: []string{"blog"}, Hosts: []string{"www.example.com"}, PathPrefixes: []string{"/blog"}}),
		hostGrant("shop", v1alpha1.CorsHostGrantSpec{Namespaces: []string{"shop"}, Hosts: []string{"www.example.com"}, PathPrefixes: []string{"/shop/"}}),
		hostGrant("blue", v1alpha1.CorsHostGrantSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}},
			Hosts:             []string{"blue.example.com"},
		}),
		hostGrant("platform-all-hosts", v1alpha1.CorsHostGrantSpec{Namespaces: []string{"edge"}, AllHosts: true}),
		// Refused by the CRD; ignored here too: an every-host grant must
		// carry its name, and admits namespaces by name only.
		hostGrant("sneaky", v1alpha1.CorsHostGrantSpec{Namespaces: []string{"sneaky"}, AllHosts: true}),
		hostGrant("platform-by-label", v1alpha1.CorsHostGrantSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}}, AllHosts: true,
		}),
	}
	nsLabels := map[string]map[string]string{"blue-1": {"team": "blue"}, "red-1": {"team": "red"}}
	for _, tc := range []struct {
		desc      string
		ns        string
		hosts     []string
		prefixes  []string
		uncovered []string // Claim.String() of each uncovered claim; nil: admitted
	}{
		{desc: "exact host granted", ns: "payments", hosts: []string{"payments.example.com"}},
		{desc: "host compared case-insensitively", ns: "payments", hosts: []string{"Payments.Example.COM"}},
		{desc: "subdomain under a granted wildcard", ns: "payments", hosts: []string{"eu.payments.example.com", "a.b.payments.example.com"}},
		{desc: "narrower wildcard under a granted wildcard", ns: "payments", hosts: []string{"*.eu.payments.example.com"}},
		{desc: "the attack: another team's host", ns: "orders", hosts: []string{"payments.example.com"}, prefixes: []string{"/v1/transfers"},
			uncovered: []string{`host "payments.example.com" under "/v1/transfers"`}},
		{desc: "a wildcard grant does not cover its parent", ns: "blog", hosts: []string{"example.com"},
			uncovered: []string{`host "example.com" under "/"`}},
		{desc: "an exact grant does not cover a wildcard claim", ns: "blog", hosts: []string{"*.www.example.com"}, prefixes: []string{"/blog"},
			uncovered: []string{`host "*.www.example.com" under "/blog"`}},
		{desc: "wider wildcard than granted", ns: "payments", hosts: []string{"*.example.com"},
			uncovered: []string{`host "*.example.com" under "/"`}},
		{desc: "delegated prefix", ns: "blog", hosts: []string{"www.example.com"}, prefixes: []string{"/blog", "/blog/admin"}},
		{desc: "a delegated prefix does not cover its sibling", ns: "blog", hosts: []string{"www.example.com"}, prefixes: []string{"/blogs"},
			uncovered: []string{`host "www.example.com" under "/blogs"`}},
		{desc: "a delegated prefix does not cover the whole host", ns: "blog", hosts: []string{"www.example.com"},
			uncovered: []string{`host "www.example.com" under "/"`}},
		{desc: "a prefix with a trailing slash covers below it only", ns: "shop", hosts: []string{"www.example.com"}, prefixes: []string{"/shop/cart", "/shop"},
			uncovered: []string{`host "www.example.com" under "/shop"`}},
		{desc: "one ungranted claim refuses the policy", ns: "payments", hosts: []string{"payments.example.com", "orders.example.com"},
			uncovered: []string{`host "orders.example.com" under "/"`}},
		{desc: "namespace selected by label", ns: "blue-1", hosts: []string{"blue.example.com"}},
		{desc: "namespace with other labels", ns: "red-1", hosts: []string{"blue.example.com"}, uncovered: []string{`host "blue.example.com" under "/"`}},
		{desc: "every host: any-host policy in the platform namespace", ns: "edge"},
		{desc: "every host: any host in the platform namespace", ns: "edge", hosts: []string{"payments.example.com"}},
		{desc: "an any-host policy needs the every-host grant", ns: "payments", uncovered: []string{`every host under "/"`}},
		{desc: "every-host grant without the platform- name is ignored", ns: "sneaky", hosts: []string{"payments.example.com"},
			uncovered: []string{`host "payments.example.com" under "/"`}},
		{desc: "every-host grant by label is ignored", ns: "blue-1", hosts: []string{"payments.example.com"},
			uncovered: []string{`host "payments.example.com" under "/"`}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			own := compile.NewOwnership()
			own.Reset(grants, nsLabels)
			obj := gen.CorsPolicy("p", gen.WithNamespace(tc.ns), gen.WithHosts(tc.hosts...), gen.WithPathPrefixes(tc.prefixes...), gen.WithOrigins("https://app.example.com"))
			entry, _, err := compile.Compile(obj)
			if err != nil {
				t.Fatal(err)
			}
			err = own.Admit(obj, &entry)
			var ng *compile.NotGrantedError
			switch {
			case tc.uncovered == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.uncovered == nil:
				return
			case !errors.As(err, &ng):
				t.Fatalf("admitted (err %v), want refused for %q", err, tc.uncovered)
			}
			var got []string
			for _, c := range ng.Uncovered {
				got = append(got, c.String())
			}
			if strings.Join(got, "; ") != strings.Join(tc.uncovered, "; ") {
				t.Errorf("uncovered:\n got %q\nwant %q", got, tc.uncovered)
			}
			if msg := err.Error(); !strings.Contains(msg, `namespace "`+tc.ns+`"`) || !strings.Contains(msg, "kubectl apply -f - <<<") {
				t.Errorf("message should name the namespace and the grant to create: %s", msg)
			}
		})
	}
}

// TestNotGrantedMessage pins the message a team reads in status: the host,
// the namespace, and a command that creates the grant that would admit it.
func TestNotGrantedMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		err  compile.NotGrantedError
		want string
	}{
		{
			desc: "one host under one prefix",
			err:  compile.NotGrantedError{Namespace: "orders", Uncovered: []compile.Claim{{Host: "payments.example.com", Prefix: "/v1/transfers"}}},
			want: `No CorsHostGrant lets namespace "orders" claim host "payments.example.com" under "/v1/transfers", so the edge serves nothing for this policy. ` +
				`Use hosts granted to this namespace (kubectl get corshostgrants), or ask a cluster administrator to run: ` +
				`kubectl apply -f - <<< '{"apiVersion":"policy.corsgate.io/v1alpha1","kind":"CorsHostGrant","metadata":{"name":"orders-payments.example.com"},` +
				`"spec":{"namespaces":["orders"],"hosts":["payments.example.com"],"pathPrefixes":["/v1/transfers"]}}'`,
		},
		{
			desc: "a wildcard, on every path, withdrawn",
			err:  compile.NotGrantedError{Namespace: "shop", Withdrawn: true, Uncovered: []compile.Claim{{Host: "*.shop.example.com", Prefix: "/"}, {Host: "*.shop.example.com", Prefix: "/it's"}}},
			want: `The edge stopped serving this policy: a CorsHostGrant that covered it was deleted or narrowed, or the namespace's labels no longer match its namespaceSelector. ` +
				`No CorsHostGrant lets namespace "shop" claim host "*.shop.example.com" under "/", host "*.shop.example.com" under "/it's", so the edge serves nothing for this policy. ` +
				`Use hosts granted to this namespace (kubectl get corshostgrants), or ask a cluster administrator to run: ` +
				`kubectl apply -f - <<< '{"apiVersion":"policy.corsgate.io/v1alpha1","kind":"CorsHostGrant","metadata":{"name":"shop-wildcard.shop.example.com"},` +
				`"spec":{"namespaces":["shop"],"hosts":["*.shop.example.com"]}}'`,
		},
		{
			desc: "every host",
			err:  compile.NotGrantedError{Namespace: "edge", Uncovered: []compile.Claim{{Prefix: "/"}}},
			want: `No CorsHostGrant lets namespace "edge" claim every host under "/", so the edge serves nothing for this policy. ` +
				`A policy without hosts selects every host, which only the platform team's own allHosts grant covers: list this policy's hosts in spec.hosts, ` +
				`or, for a platform namespace, a cluster administrator can run: ` +
				`kubectl apply -f - <<< '{"apiVersion":"policy.corsgate.io/v1alpha1","kind":"CorsHostGrant","metadata":{"name":"platform-all-hosts"},` +
				`"spec":{"namespaces":["edge"],"allHosts":true}}'`,
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("message:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestBuilderAdmit runs the check where the table is built: a refused
// policy serves nothing, not even its last valid spec; a withdrawn one says
// so; and without Admit (file mode, --host-ownership=Open) every valid policy
// serves as before.
func TestBuilderAdmit(t *testing.T) {
	t.Parallel()
	payments := gen.CorsPolicy("payments", gen.WithNamespace("payments"), gen.WithAge(0),
		gen.WithHosts("payments.example.com"), gen.WithPathPrefixes("/v1"), gen.WithOrigins("https://pay.example.com"))
	attack := gen.CorsPolicy("attack", gen.WithNamespace("orders"), gen.WithAge(1e9),
		gen.WithHosts("payments.example.com"), gen.WithPathPrefixes("/v1/transfers"), gen.WithOrigins("https://evil.example"), gen.WithCredentials())
	objs := []v1alpha1.CorsPolicy{*payments, *attack}
	grant := hostGrant("payments", v1alpha1.CorsHostGrantSpec{Namespaces: []string{"payments"}, Hosts: []string{"payments.example.com"}})

	open := compile.NewBuilder()
	tbl, _ := open.Build(objs)
	if e := tbl.Lookup("payments.example.com", "/v1/transfers"); e == nil || e.Key() != "orders/attack" {
		t.Fatalf("without Admit the longest prefix wins, as before: got %v", e)
	}

	b := compile.NewBuilder()
	own := compile.NewOwnership()
	b.Admit = own.Admit
	own.Reset([]v1alpha1.CorsHostGrant{grant}, nil)
	tbl, results := b.Build(objs)
	if e := tbl.Lookup("payments.example.com", "/v1/transfers"); e == nil || e.Key() != "payments/payments" {
		t.Fatalf("with ownership the payments policy decides /v1/transfers: got %v", e)
	}
	if results[1].Serving != compile.NotServed || results[1].NotGranted == nil || results[0].NotGranted != nil {
		t.Errorf("results: %+v", results)
	}
	if got := own.Admitted()["payments"]; len(got) != 1 || got[0] != "payments/payments" {
		t.Errorf("grant admits %q, want [payments/payments]", got)
	}

	// The grant is deleted: the payments policy is withdrawn, and says so.
	own.Reset(nil, nil)
	tbl, results = b.Build(objs)
	if e := tbl.Lookup("payments.example.com", "/v1"); e != nil {
		t.Errorf("withdrawn policy still served as %s", e.Key())
	}
	var ng *compile.NotGrantedError
	if !errors.As(results[0].NotGranted, &ng) || !ng.Withdrawn {
		t.Errorf("withdrawn policy's result: %v", results[0].NotGranted)
	}
	// And keeps saying so on the next build.
	own.Reset(nil, nil)
	if _, results = b.Build(objs); !errors.As(results[0].NotGranted, &ng) || !ng.Withdrawn {
		t.Errorf("second build after withdrawal: %v", results[0].NotGranted)
	}
}

// TestOwnershipReusesIndex: Reset keeps its index while the grants are the
// same versions (name, UID, generation), in whatever order the cache lists
// them, and rebuilds it when one changes, so a narrowed grant takes effect on
// the next build.
func TestOwnershipReusesIndex(t *testing.T) {
	t.Parallel()
	obj := gen.CorsPolicy("api", gen.WithNamespace("payments"), gen.WithHosts("payments.example.com"), gen.WithOrigins("https://app.example.com"))
	entry, _, err := compile.Compile(obj)
	if err != nil {
		t.Fatal(err)
	}
	other := hostGrant("other", v1alpha1.CorsHostGrantSpec{Namespaces: []string{"other"}, Hosts: []string{"other.example.com"}})
	grant := hostGrant("payments", v1alpha1.CorsHostGrantSpec{Namespaces: []string{"payments"}, Hosts: []string{"payments.example.com"}})
	own := compile.NewOwnership()
	for i, step := range []struct {
		desc   string
		grants []v1alpha1.CorsHostGrant
		admit  bool
	}{
		{"granted", []v1alpha1.CorsHostGrant{other, grant}, true},
		{"same grants, listed in another order", []v1alpha1.CorsHostGrant{grant, other}, true},
		{"narrowed (a new generation)", []v1alpha1.CorsHostGrant{other, func() v1alpha1.CorsHostGrant {
			g := *grant.DeepCopy()
			g.Generation, g.Spec.Hosts = 2, []string{"eu.payments.example.com"}
			return g
		}()}, false},
		{"deleted", []v1alpha1.CorsHostGrant{other}, false},
		{"back", []v1alpha1.CorsHostGrant{other, grant}, true},
	} {
		own.Reset(step.grants, nil)
		if err := own.Admit(obj, &entry); (err == nil) != step.admit {
			t.Errorf("step %d (%s): Admit = %v, want admitted %v", i, step.desc, err, step.admit)
		}
	}
}
