package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
)

// grantCase is one CorsHostGrant and what the apiserver says to it.
type grantCase struct {
	desc string
	name string // defaults to "grant-<i>"
	spec v1alpha1.CorsHostGrantSpec
	// want is the message after `CorsHostGrant.policy.corsgate.io "name" is
	// invalid: `; "" means accepted.
	want string
}

func grantCases() []grantCase {
	ns := []string{"payments"}
	hosts := []string{"payments.example.com"}
	team := &metav1.LabelSelector{MatchLabels: map[string]string{"corsgate.io/team": "payments"}}
	return []grantCase{
		// Accepted.
		{desc: "namespaces and hosts", spec: v1alpha1.CorsHostGrantSpec{Namespaces: ns, Hosts: []string{"payments.example.com", "*.payments.example.com"}}},
		{desc: "a selector and a delegated prefix", spec: v1alpha1.CorsHostGrantSpec{NamespaceSelector: team, Hosts: []string{"www.example.com"}, PathPrefixes: []string{"/blog"}}},
		{desc: "a selector by expression", spec: v1alpha1.CorsHostGrantSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}},
			Hosts:             hosts,
		}},
		{desc: "every host, named platform-", name: "platform-all-hosts", spec: v1alpha1.CorsHostGrantSpec{Namespaces: []string{"edge-system"}, AllHosts: true}},

		// Cross-field rules.
		{desc: "neither hosts nor allHosts", spec: v1alpha1.CorsHostGrantSpec{Namespaces: ns},
			want: `spec.hosts: Invalid value: set hosts (such as ["payments.example.com", "*.payments.example.com"]), or allHosts: true for the platform team's own grant, but not both`},
		{desc: "hosts and allHosts", name: "platform-both", spec: v1alpha1.CorsHostGrantSpec{Namespaces: ns, Hosts: hosts, AllHosts: true},
			want: `spec.hosts: Invalid value: set hosts (such as ["payments.example.com", "*.payments.example.com"]), or allHosts: true for the platform team's own grant, but not both`},
		{desc: "no namespace", spec: v1alpha1.CorsHostGrantSpec{Hosts: hosts},
			want: `spec.namespaces: Invalid value: set namespaces (such as ["payments"]) or namespaceSelector (such as {matchLabels: {team: payments}}): a grant to no namespace admits nothing`},
		{desc: "an empty selector selects every namespace", spec: v1alpha1.CorsHostGrantSpec{NamespaceSelector: &metav1.LabelSelector{}, Hosts: hosts},
			want: `spec.namespaceSelector: Invalid value: an empty namespaceSelector selects every namespace: write matchLabels (such as {team: payments}) or matchExpressions, or list namespaces by name`},
		{desc: "every host by label", name: "platform-by-label", spec: v1alpha1.CorsHostGrantSpec{NamespaceSelector: team, AllHosts: true},
			want: `spec.namespaceSelector: Invalid value: allHosts: true is granted to namespaces by name only, so that relabelling a namespace can never hand it every host: list the platform team's namespaces in namespaces and remove namespaceSelector`},
		{desc: "every host, not named as such", name: "all-hosts", spec: v1alpha1.CorsHostGrantSpec{Namespaces: ns, AllHosts: true},
			want: `<nil>: Invalid value: a grant of every host is for the platform team's own namespaces and is named as such: name it "platform-" followed by what it is for, such as "platform-all-hosts"`},

		// Items.
		{desc: "wildcard host over a top-level domain", spec: v1alpha1.CorsHostGrantSpec{Namespaces: ns, Hosts: []string{"*.com"}},
			want: `spec.hosts[0]: Invalid value: "*.com": a wildcard host must keep at least two labels, or it would grant every host under a top-level domain: write "*.example.com"`},
		{desc: "host with a port", spec: v1alpha1.CorsHostGrantSpec{Namespaces: ns, Hosts: []string{"payments.example.com:443"}},
			want: `spec.hosts[0]: Invalid value: "payments.example.com:443": spec.hosts[0] in body should match '^(\*\.)?[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?)*$'`},
		{desc: "path prefix with a query", spec: v1alpha1.CorsHostGrantSpec{Namespaces: ns, Hosts: hosts, PathPrefixes: []string{"/blog?x=1"}},
			want: `spec.pathPrefixes[0]: Invalid value: "/blog?x=1": a path prefix has no query, fragment, space or control character: write "/blog", not "/blog?v=1", and percent-encode a space as %20`},
		{desc: "path prefix without a slash", spec: v1alpha1.CorsHostGrantSpec{Namespaces: ns, Hosts: hosts, PathPrefixes: []string{"blog"}},
			want: `spec.pathPrefixes[0]: Invalid value: "blog": spec.pathPrefixes[0] in body should match '^/'`},
		{desc: "namespace that is not a DNS label", spec: v1alpha1.CorsHostGrantSpec{Namespaces: []string{"Payments"}, Hosts: hosts},
			want: `spec.namespaces[0]: Invalid value: "Payments": spec.namespaces[0] in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'`},
		{desc: "hosts are a set", spec: v1alpha1.CorsHostGrantSpec{Namespaces: ns, Hosts: []string{"a.example.com", "a.example.com"}},
			want: `spec.hosts[1]: Duplicate value: "a.example.com"`},
		{desc: "too many hosts", spec: v1alpha1.CorsHostGrantSpec{Namespaces: ns, Hosts: func() []string {
			h := make([]string, 65)
			for i := range h {
				h[i] = fmt.Sprintf("h%d.example.com", i)
			}
			return h
		}()},
			want: notChecked(`spec.hosts: Too many: 65: must have at most 64 items`)},
	}
}

func TestCorsHostGrantValidation(t *testing.T) {
	t.Parallel()
	for i, tc := range grantCases() {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			name := tc.name
			if name == "" {
				name = fmt.Sprintf("grant-%d", i)
			}
			obj := &v1alpha1.CorsHostGrant{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: tc.spec}
			err := k8s.Create(context.Background(), obj)
			if err == nil {
				t.Cleanup(func() { _ = k8s.Delete(context.Background(), obj) })
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("create: got error\n  %v\nwant the object accepted", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("create: accepted, want error\n  %s", tc.want)
			}
			want := fmt.Sprintf("CorsHostGrant.policy.corsgate.io %q is invalid: %s", name, tc.want)
			if got := err.Error(); got != want {
				t.Errorf("create: wrong error\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// TestCorsHostGrantStatus: the status writer's bounds are the apiserver's.
func TestCorsHostGrantStatus(t *testing.T) {
	t.Parallel()
	obj := &v1alpha1.CorsHostGrant{ObjectMeta: metav1.ObjectMeta{Name: "status"},
		Spec: v1alpha1.CorsHostGrantSpec{Namespaces: []string{"payments"}, Hosts: []string{"payments.example.com"}}}
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), obj) })
	obj.Status.AdmittedCount = 1000
	for i := range v1alpha1.MaxAdmittedListed {
		obj.Status.Admitted = append(obj.Status.Admitted, fmt.Sprintf("%s/%s", strings.Repeat("n", 63), strings.Repeat("p", 253-len(fmt.Sprint(i)))+fmt.Sprint(i)))
	}
	if err := k8s.Status().Update(context.Background(), obj); err != nil {
		t.Fatalf("status with MaxAdmittedListed of the longest keys: %v", err)
	}
	tooMany := obj.DeepCopy()
	tooMany.Status.Admitted = append(tooMany.Status.Admitted, "n/p")
	if err := k8s.Status().Update(context.Background(), tooMany); err == nil || !strings.Contains(err.Error(), "status.admitted: Too many: 101: must have at most 100 items") {
		t.Errorf("status with MaxAdmittedListed+1: got %v, want Too many", err)
	}
}
