package hostgrant_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/api/v1alpha1"
)

// TestAdmissionWarnings installs the ValidatingAdmissionPolicy that the chart
// and config/admission ship (test/deploy holds the two equal) into the real
// API server, and checks what `kubectl apply` prints: a warning when a
// CorsPolicy claims a host a grant gives to other namespaces, nothing for a
// team's own hosts or for a prefix delegated away from the grant's. It warns
// and never refuses, so corsgate's availability is no part of any apply.
func TestAdmissionWarnings(t *testing.T) {
	t.Parallel()
	vap := filepath.Join("..", "..", "config", "admission", "host_ownership.yaml")
	if out, err := kubectl("", "apply", "-f", vap); err != nil {
		t.Fatalf("installing %s: %v\n%s", vap, err, out)
	}
	payments, orders, blog := namespace(t, nil), namespace(t, nil), namespace(t, map[string]string{"corsgate.io/team": "blog"})
	host := payments + ".vap.example.com"
	createGrant(t, payments+"-vap", v1alpha1.CorsHostGrantSpec{Namespaces: []string{payments}, Hosts: []string{host, "*." + host}})
	createGrant(t, payments+"-vap-blog", v1alpha1.CorsHostGrantSpec{
		NamespaceSelector: nil, Namespaces: []string{blog}, Hosts: []string{"www." + host}, PathPrefixes: []string{"/blog"},
	})

	apply := func(ns, name string, hosts []string, prefix string, verb ...string) string {
		t.Helper()
		if verb == nil {
			verb = []string{"apply"}
		}
		doc := fmt.Sprintf(`{"apiVersion":"policy.corsgate.io/v1alpha1","kind":"CorsPolicy","metadata":{"name":%q,"namespace":%q},`+
			`"spec":{"hosts":[%s],"pathPrefixes":[%q],"allowOrigins":["https://evil.example"],"allowCredentials":true}}`,
			name, ns, `"`+strings.Join(hosts, `","`)+`"`, prefix)
		out, err := kubectl(doc, append(verb, "-f", "-")...)
		if err != nil {
			t.Fatalf("kubectl apply was refused, want at most a warning: %v\n%s", err, out)
		}
		return out
	}
	// The API server compiles a new admission policy asynchronously: the
	// first requests after its creation may not see it yet. A server-side
	// dry run goes through admission every time (an apply without changes
	// sends nothing).
	var out string
	// kubectl prints "Warning: Validation failed for ValidatingAdmissionPolicy
	// 'corsgate-host-ownership' with binding ...: " and then the message.
	wantWarning := fmt.Sprintf("CorsHostGrant %s-vap gives %s to other namespaces than %s: unless another CorsHostGrant gives them to %s, "+
		"corsgate will not serve this policy (status: Accepted=False, reason HostNotGranted).", payments, host, orders, orders)
	for deadline := time.Now().Add(time.Minute); !strings.Contains(out, wantWarning); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			status, _ := kubectl("", "get", "validatingadmissionpolicy", "corsgate-host-ownership", "-o", "jsonpath={.status}")
			t.Fatalf("the attack never warned; last output:\n%s\nwant:\n%s\npolicy status: %s", out, wantWarning, status)
		}
		out = apply(orders, "attack", []string{host}, "/v1/transfers", "create", "--dry-run=server")
	}
	out = apply(orders, "attack", []string{host}, "/v1/transfers")
	if !strings.Contains(out, wantWarning) {
		t.Errorf("kubectl apply of the attack: output lacks the warning:\n%s", out)
	}
	if !strings.Contains(out, "corspolicy.policy.corsgate.io/attack") {
		t.Errorf("a warning, not a refusal: the object should be written:\n%s", out)
	}

	for _, tc := range []struct {
		desc, ns string
		hosts    []string
		prefix   string
		warns    string // "" for no warning
	}{
		{desc: "own host", ns: payments, hosts: []string{host, "eu." + host}, prefix: "/v1"},
		{desc: "subdomain of another team's wildcard, in upper case", ns: orders, hosts: []string{"EU." + strings.ToUpper(host)}, prefix: "/",
			warns: "gives eu." + host + " to other namespaces than " + orders},
		{desc: "a host no grant mentions (corsgate's status says so, not admission)", ns: orders, hosts: []string{orders + ".elsewhere.example.com"}, prefix: "/"},
		{desc: "prefix delegated to this namespace", ns: blog, hosts: []string{"www." + host}, prefix: "/blog/posts",
			// The payments wildcard grant covers www.<host> too: a per-grant
			// check cannot see the delegation, so it warns, and says so.
			warns: "unless another CorsHostGrant gives them to " + blog},
		{desc: "outside the delegated prefix", ns: orders, hosts: []string{"www." + host}, prefix: "/blog",
			warns: payments + "-vap-blog gives www." + host + " to other namespaces than " + orders},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			out := apply(tc.ns, strings.ReplaceAll(strings.ToLower(tc.desc[:4]), " ", "-")+"-"+fmt.Sprint(len(tc.hosts)), tc.hosts, tc.prefix)
			switch {
			case tc.warns == "" && strings.Contains(out, "Warning:"):
				t.Errorf("unexpected warning:\n%s", out)
			case tc.warns != "" && !strings.Contains(out, tc.warns):
				t.Errorf("output lacks %q:\n%s", tc.warns, out)
			}
		})
	}
}
