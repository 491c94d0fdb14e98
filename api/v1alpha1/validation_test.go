package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/test/envtesting"
	"github.com/corsgate/corsgate/test/gen"
)

// These tests install the generated CRD (config/crd/bases) into a real
// kube-apiserver and etcd started by envtest, and check what a user sees at
// `kubectl apply`: every schema bound and CEL rule refuses what it should, with
// the exact message, and valid objects, including every sample, are accepted.
// Run them with `make test`, which sets KUBEBUILDER_ASSETS.

const namespace = "default"

var (
	// k8s talks to the shared apiserver; TestMain starts one per package.
	k8s        client.Client
	restConfig *rest.Config
	kubeconfig string // a kubeconfig file for the same apiserver, for kubectl
)

func TestMain(m *testing.M) {
	os.Exit(runWithAPIServer(m))
}

func runWithAPIServer(m *testing.M) int {
	envtesting.SetLogger()
	cluster, err := envtesting.Start(envtesting.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}()
	k8s, restConfig, kubeconfig = cluster.Client, cluster.Config, cluster.Kubeconfig
	return m.Run()
}

// create creates a CorsPolicy named name with spec and returns the apiserver's
// answer.
func create(t *testing.T, name string, spec v1alpha1.CorsPolicySpec) (*v1alpha1.CorsPolicy, error) {
	t.Helper()
	obj := gen.CorsPolicy(name, gen.WithNamespace(namespace), gen.WithSpec(spec))
	err := k8s.Create(context.Background(), obj)
	if err == nil {
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), obj) })
	}
	return obj, err
}

const app = "https://app.example.com"

// notChecked is how the apiserver reports a schema error that stops CEL rules
// from running: list and string bounds and enums come first, because CEL's
// cost is only bounded once they hold.
func notChecked(err string) string {
	return "[" + err + ", <nil>: Invalid value: null: some validation rules were not checked " +
		"because the object was invalid; correct the existing errors to complete validation]"
}

// validationCase is one CorsPolicy spec and what the apiserver says to it.
type validationCase struct {
	desc string
	spec v1alpha1.CorsPolicySpec
	// want is the apiserver's message after `CorsPolicy... "name" is invalid: `,
	// which is what kubectl prints; "" means the object is accepted.
	want string
}

func validationCases() []validationCase {
	tooMany := func(n int, format string) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf(format, i)
		}
		return s
	}
	return []validationCase{
		// Accepted.
		{
			desc: "a full credentialed policy is accepted",
			spec: v1alpha1.CorsPolicySpec{
				Hosts:               []string{"api.example.com", "*.api.example.com", "Legacy_API.example.com"},
				PathPrefixes:        []string{"/v1", "/v2/orders"},
				AllowOrigins:        []string{app, "https://*.example.com", "http://localhost:3000", "http://[::1]:8080"},
				AllowOriginRegexes:  []string{`https://pr-[0-9]+\.preview\.example\.com`},
				AllowMethods:        []string{"GET", "PUT", "DELETE", "patch"},
				AllowHeaders:        []string{"content-type", "X-Request-ID", "authorization"},
				ExposeHeaders:       []string{"x-trace-id"},
				MaxAge:              new(int32(600)),
				AllowCredentials:    true,
				AllowPrivateNetwork: true,
				UnmatchedPreflight:  v1alpha1.UnmatchedPreflightForward,
				Mode:                v1alpha1.ModeDryRun,
			},
		},
		{
			desc: `"*" everywhere without credentials is accepted`,
			spec: v1alpha1.CorsPolicySpec{
				AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}, ExposeHeaders: []string{"*"},
			},
		},
		{
			desc: `"*" request headers beside Authorization, which "*" does not cover, are accepted`,
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowHeaders: []string{"*", "Authorization"}, AllowCredentials: true},
		},
		{
			desc: `"null" without credentials is accepted (the engine warns)`,
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"null", app}},
		},
		{
			desc: "origin regexes alone are enough",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{}, AllowOriginRegexes: []string{`https://[a-z]+\.example\.com`}},
		},
		{
			desc: "maxAge 0 (no caching) is the lower bound",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, MaxAge: new(int32(0))},
		},
		{
			desc: "maxAge 86400 is the upper bound",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, MaxAge: new(int32(86400))},
		},

		// Spec-level CEL rules.
		{
			desc: "no origin at all",
			spec: v1alpha1.CorsPolicySpec{Hosts: []string{"api.example.com"}},
			want: `spec.allowOrigins: Invalid value: set allowOrigins (such as ["https://app.example.com"]) or allowOriginRegexes: a policy that allows no origin denies every CORS request`,
		},
		{
			desc: "empty origin lists",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{}, AllowOriginRegexes: []string{}},
			want: `spec.allowOrigins: Invalid value: set allowOrigins (such as ["https://app.example.com"]) or allowOriginRegexes: a policy that allows no origin denies every CORS request`,
		},
		{
			desc: `"*" origin with credentials (Fetch standard, "CORS protocol and credentials")`,
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"*"}, AllowCredentials: true},
			want: `spec.allowOrigins: Invalid value: "*" cannot be combined with allowCredentials: true (the Fetch standard forbids a wildcard origin on credentialed requests): list the origins that may send credentials, such as "https://app.example.com", or set allowCredentials to false`,
		},
		{
			desc: `"null" origin with credentials`,
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app, "null"}, AllowCredentials: true},
			want: `spec.allowOrigins: Invalid value: "null" cannot be combined with allowCredentials: true (any sandboxed iframe or local file sends Origin: null, so this would share credentialed responses with anyone): list real origins, such as "https://app.example.com", or set allowCredentials to false`,
		},

		// "*" must be alone.
		{
			desc: `"*" with other origins`,
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"*", app}},
			want: `spec.allowOrigins: Invalid value: "*" allows every origin and must be the only entry of allowOrigins: remove either "*" or the other entries`,
		},
		{
			desc: `"*" with other methods`,
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowMethods: []string{"PUT", "*"}},
			want: `spec.allowMethods: Invalid value: "*" allows every method and must be the only entry of allowMethods: remove either "*" or the other entries`,
		},
		{
			desc: `"*" with other request headers`,
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowHeaders: []string{"*", "authorization", "content-type"}},
			want: `spec.allowHeaders: Invalid value: "*" allows every header except Authorization, the only header to list beside it: write ["*"] or ["*", "authorization"], or list the headers without "*"`,
		},
		{
			desc: `"*" with other exposed headers`,
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, ExposeHeaders: []string{"x-trace-id", "*"}},
			want: `spec.exposeHeaders: Invalid value: "*" exposes every header and must be the only entry of exposeHeaders: remove either "*" or the other entries`,
		},

		// Origin items.
		{
			desc: "origin without a scheme",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"app.example.com"}},
			want: `spec.allowOrigins[0]: Invalid value: "app.example.com": an origin is scheme://host[:port], such as "https://app.example.com" or "https://*.example.com"; or "*" for any origin`,
		},
		{
			desc: "origin with a trailing slash",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"https://app.example.com/"}},
			want: `spec.allowOrigins[0]: Invalid value: "https://app.example.com/": an origin has no path, query, fragment or user info, not even a trailing "/": write "https://app.example.com", not "https://app.example.com/"`,
		},
		{
			desc: "origin with user info",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app, "https://user@app.example.com"}},
			want: `spec.allowOrigins[1]: Invalid value: "https://user@app.example.com": an origin has no path, query, fragment or user info, not even a trailing "/": write "https://app.example.com", not "https://app.example.com/"`,
		},
		{
			desc: "origin in upper case",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"https://App.Example.com"}},
			want: `spec.allowOrigins[0]: Invalid value: "https://App.Example.com": origins are lower case, as browsers send them: write "https://app.example.com", not "https://App.Example.com"`,
		},
		{
			desc: "origin with a non-ASCII host",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"https://bücher.example"}},
			want: `spec.allowOrigins[0]: Invalid value: "https://bücher.example": origins are printable ASCII without spaces: write an internationalised host in Punycode, such as "https://xn--bcher-kva.example" for bücher.example`,
		},
		{
			desc: "origin with https's default port",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"https://app.example.com:443"}},
			want: `spec.allowOrigins[0]: Invalid value: "https://app.example.com:443": leave out the default port, which browsers never send: write "https://app.example.com", not "https://app.example.com:443"`,
		},
		{
			desc: "origin with http's default port",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"https://app.example.com:8443", "http://localhost:80"}},
			want: `spec.allowOrigins[1]: Invalid value: "http://localhost:80": leave out the default port, which browsers never send: write "https://app.example.com", not "https://app.example.com:443"`,
		},
		{
			desc: "origin with a wildcard inside the host",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"https://app.*.example.com"}},
			want: `spec.allowOrigins[0]: Invalid value: "https://app.*.example.com": a wildcard must be the whole leftmost host label: write "https://*.example.com" for any subdomain of example.com, or "*" alone for any origin`,
		},
		{
			desc: "origin with a partial-label wildcard",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"https://*app.example.com"}},
			want: `spec.allowOrigins[0]: Invalid value: "https://*app.example.com": a wildcard must be the whole leftmost host label: write "https://*.example.com" for any subdomain of example.com, or "*" alone for any origin`,
		},
		{
			desc: "origin with a wildcard port",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"http://localhost:*"}},
			want: `spec.allowOrigins[0]: Invalid value: "http://localhost:*": a wildcard must be the whole leftmost host label: write "https://*.example.com" for any subdomain of example.com, or "*" alone for any origin`,
		},
		{
			desc: "one origin breaking two rules gets both messages",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"https://App.example.com/"}},
			want: `[spec.allowOrigins[0]: Invalid value: "https://App.example.com/": an origin has no path, query, fragment or user info, not even a trailing "/": write "https://app.example.com", not "https://app.example.com/", ` +
				`spec.allowOrigins[0]: Invalid value: "https://App.example.com/": origins are lower case, as browsers send them: write "https://app.example.com", not "https://App.Example.com"]`,
		},
		{
			desc: "origins are a set",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app, app}},
			want: `spec.allowOrigins[1]: Duplicate value: "https://app.example.com"`,
		},
		{
			desc: "too many origins",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: tooMany(65, "https://a%d.example.com")},
			want: notChecked(`spec.allowOrigins: Too many: 65: must have at most 64 items`),
		},
		{
			desc: "origin too long",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{"https://" + strings.Repeat("a", 319) + ".com"}},
			want: notChecked(`spec.allowOrigins[0]: Too long: may not be more than 326 bytes`),
		},
		{
			desc: "too many origin regexes",
			spec: v1alpha1.CorsPolicySpec{AllowOriginRegexes: tooMany(17, `https://a%d\.example\.com`)},
			want: notChecked(`spec.allowOriginRegexes: Too many: 17: must have at most 16 items`),
		},
		{
			desc: "origin regex too long",
			spec: v1alpha1.CorsPolicySpec{AllowOriginRegexes: []string{strings.Repeat("a", 1025)}},
			want: notChecked(`spec.allowOriginRegexes[0]: Too long: may not be more than 1024 bytes`),
		},

		// Hosts and path prefixes.
		{
			desc: "host with a space",
			spec: v1alpha1.CorsPolicySpec{Hosts: []string{"api .example.com"}, AllowOrigins: []string{app}},
			want: `spec.hosts[0]: Invalid value: "api .example.com": spec.hosts[0] in body should match '^(\*\.)?[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?)*$'`,
		},
		{
			desc: "wildcard host over a top-level domain",
			spec: v1alpha1.CorsPolicySpec{Hosts: []string{"*.com"}, AllowOrigins: []string{app}},
			want: `spec.hosts[0]: Invalid value: "*.com": a wildcard host must keep at least two labels, or it would claim every host under a top-level domain: write "*.example.com"`,
		},
		{
			desc: "host with a port",
			spec: v1alpha1.CorsPolicySpec{Hosts: []string{"api.example.com:8443"}, AllowOrigins: []string{app}},
			want: `spec.hosts[0]: Invalid value: "api.example.com:8443": spec.hosts[0] in body should match '^(\*\.)?[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?)*$'`,
		},
		{
			desc: "host with a wildcard below the leftmost label",
			spec: v1alpha1.CorsPolicySpec{Hosts: []string{"api.*.example.com"}, AllowOrigins: []string{app}},
			want: `spec.hosts[0]: Invalid value: "api.*.example.com": spec.hosts[0] in body should match '^(\*\.)?[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?)*$'`,
		},
		{
			desc: "too many hosts",
			spec: v1alpha1.CorsPolicySpec{Hosts: tooMany(17, "h%d.example.com"), AllowOrigins: []string{app}},
			want: notChecked(`spec.hosts: Too many: 17: must have at most 16 items`),
		},
		{
			desc: "host too long",
			spec: v1alpha1.CorsPolicySpec{Hosts: []string{strings.Repeat("a.", 126) + "aa"}, AllowOrigins: []string{app}},
			want: notChecked(`spec.hosts[0]: Too long: may not be more than 253 bytes`),
		},
		{
			desc: "hosts are a set",
			spec: v1alpha1.CorsPolicySpec{Hosts: []string{"api.example.com", "api.example.com"}, AllowOrigins: []string{app}},
			want: `spec.hosts[1]: Duplicate value: "api.example.com"`,
		},
		{
			desc: "path prefix without a leading slash",
			spec: v1alpha1.CorsPolicySpec{PathPrefixes: []string{"api"}, AllowOrigins: []string{app}},
			want: `spec.pathPrefixes[0]: Invalid value: "api": spec.pathPrefixes[0] in body should match '^/'`,
		},
		{
			desc: "path prefix with a query",
			spec: v1alpha1.CorsPolicySpec{PathPrefixes: []string{"/api?v=1"}, AllowOrigins: []string{app}},
			want: `spec.pathPrefixes[0]: Invalid value: "/api?v=1": a path prefix has no query, fragment, space or control character: write "/api", not "/api?v=1", and percent-encode a space as %20`,
		},
		{
			desc: "path prefix with a control character",
			spec: v1alpha1.CorsPolicySpec{PathPrefixes: []string{"/api\tv1"}, AllowOrigins: []string{app}},
			want: `spec.pathPrefixes[0]: Invalid value: "/api\tv1": a path prefix has no query, fragment, space or control character: write "/api", not "/api?v=1", and percent-encode a space as %20`,
		},
		{
			desc: "too many path prefixes",
			spec: v1alpha1.CorsPolicySpec{PathPrefixes: tooMany(17, "/p%d"), AllowOrigins: []string{app}},
			want: notChecked(`spec.pathPrefixes: Too many: 17: must have at most 16 items`),
		},
		{
			desc: "path prefix too long",
			spec: v1alpha1.CorsPolicySpec{PathPrefixes: []string{"/" + strings.Repeat("a", 1024)}, AllowOrigins: []string{app}},
			want: notChecked(`spec.pathPrefixes[0]: Too long: may not be more than 1024 bytes`),
		},

		// Methods and headers.
		{
			desc: "method that is not an HTTP token",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowMethods: []string{"GET,PUT"}},
			want: "spec.allowMethods[0]: Invalid value: \"GET,PUT\": spec.allowMethods[0] in body should match '^[-!#$%&'*+.^_`|~0-9A-Za-z]+$'",
		},
		{
			desc: `forbidden method CONNECT (Fetch standard, "forbidden method")`,
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowMethods: []string{"PUT", "CONNECT"}},
			want: `spec.allowMethods[1]: Invalid value: "CONNECT": CONNECT, TRACE and TRACK are forbidden methods that browsers refuse to send (Fetch standard): remove them from allowMethods`,
		},
		{
			desc: "forbidden methods are matched case-insensitively",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowMethods: []string{"trace"}},
			want: `spec.allowMethods[0]: Invalid value: "trace": CONNECT, TRACE and TRACK are forbidden methods that browsers refuse to send (Fetch standard): remove them from allowMethods`,
		},
		{
			desc: "forbidden method TRACK",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowMethods: []string{"Track"}},
			want: `spec.allowMethods[0]: Invalid value: "Track": CONNECT, TRACE and TRACK are forbidden methods that browsers refuse to send (Fetch standard): remove them from allowMethods`,
		},
		{
			desc: "too many methods",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowMethods: tooMany(33, "M%d")},
			want: notChecked(`spec.allowMethods: Too many: 33: must have at most 32 items`),
		},
		{
			desc: "method too long",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowMethods: []string{strings.Repeat("M", 65)}},
			want: notChecked(`spec.allowMethods[0]: Too long: may not be more than 64 bytes`),
		},
		{
			desc: "request header name with a space",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowHeaders: []string{"x request id"}},
			want: "spec.allowHeaders[0]: Invalid value: \"x request id\": spec.allowHeaders[0] in body should match '^[-!#$%&'*+.^_`|~0-9A-Za-z]+$'",
		},
		{
			desc: "request header name with a colon",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowHeaders: []string{"x-id:"}},
			want: "spec.allowHeaders[0]: Invalid value: \"x-id:\": spec.allowHeaders[0] in body should match '^[-!#$%&'*+.^_`|~0-9A-Za-z]+$'",
		},
		{
			desc: "too many request headers",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowHeaders: tooMany(65, "x-h%d")},
			want: notChecked(`spec.allowHeaders: Too many: 65: must have at most 64 items`),
		},
		{
			desc: "request header name too long",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowHeaders: []string{strings.Repeat("h", 257)}},
			want: notChecked(`spec.allowHeaders[0]: Too long: may not be more than 256 bytes`),
		},
		{
			desc: "exposed header name that is not a token",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, ExposeHeaders: []string{"x-trace-id, x-span-id"}},
			want: "spec.exposeHeaders[0]: Invalid value: \"x-trace-id, x-span-id\": spec.exposeHeaders[0] in body should match '^[-!#$%&'*+.^_`|~0-9A-Za-z]+$'",
		},
		{
			desc: "too many exposed headers",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, ExposeHeaders: tooMany(65, "x-h%d")},
			want: notChecked(`spec.exposeHeaders: Too many: 65: must have at most 64 items`),
		},
		{
			desc: "exposed header name too long",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, ExposeHeaders: []string{strings.Repeat("h", 257)}},
			want: notChecked(`spec.exposeHeaders[0]: Too long: may not be more than 256 bytes`),
		},
		{
			desc: "request headers are a set (compared as written)",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, AllowHeaders: []string{"content-type", "content-type"}},
			want: `spec.allowHeaders[1]: Duplicate value: "content-type"`,
		},

		// Numbers and enums.
		{
			desc: "negative maxAge",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, MaxAge: new(int32(-1))},
			want: `spec.maxAge: Invalid value: -1: spec.maxAge in body should be greater than or equal to 0`,
		},
		{
			desc: "maxAge above a day",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, MaxAge: new(int32(86401))},
			want: `spec.maxAge: Invalid value: 86401: spec.maxAge in body should be less than or equal to 86400`,
		},
		{
			desc: "unknown unmatchedPreflight",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, UnmatchedPreflight: "Drop"},
			want: notChecked(`spec.unmatchedPreflight: Unsupported value: "Drop": supported values: "Reject", "Forward"`),
		},
		{
			desc: "unknown crossOriginProtection mode",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, CrossOriginProtection: &v1alpha1.CrossOriginProtection{Mode: "Block"}},
			want: notChecked(`spec.crossOriginProtection.mode: Unsupported value: "Block": supported values: "Enforce", "DryRun"`),
		},
		{
			desc: "unknown mode",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, Mode: "enforce"},
			want: notChecked(`spec.mode: Unsupported value: "enforce": supported values: "Enforce", "DryRun"`),
		},

		// targetRefs (Gateway API attachment, GEP-713).
		{
			desc: "targetRefs to an HTTPRoute rule and a Gateway listener are accepted",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{
				targetRef("HTTPRoute", "shop", "checkout"), targetRef("HTTPRoute", "shop", ""), targetRef("Gateway", "edge", "https"),
			}},
		},
		{
			desc: "targetRefs with hosts",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, Hosts: []string{"api.example.com"},
				TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{targetRef("HTTPRoute", "shop", "")}},
			want: `spec.targetRefs: Invalid value: targetRefs and hosts/pathPrefixes are mutually exclusive: use targetRefs to attach to a Gateway or HTTPRoute (the policy follows its hostnames and paths), or hosts and pathPrefixes to select requests without the Gateway API`,
		},
		{
			desc: "targetRefs with pathPrefixes",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, PathPrefixes: []string{"/api"},
				TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{targetRef("Gateway", "edge", "")}},
			want: `spec.targetRefs: Invalid value: targetRefs and hosts/pathPrefixes are mutually exclusive: use targetRefs to attach to a Gateway or HTTPRoute (the policy follows its hostnames and paths), or hosts and pathPrefixes to select requests without the Gateway API`,
		},
		{
			desc: "targetRef to a kind other than Gateway or HTTPRoute",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{targetRef("GRPCRoute", "shop", "")}},
			want: `spec.targetRefs: Invalid value: a targetRef names a Gateway or an HTTPRoute: write group: gateway.networking.k8s.io with kind: HTTPRoute (or kind: Gateway)`,
		},
		{
			desc: "targetRef to another group",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{
				{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{Group: "networking.istio.io", Kind: "HTTPRoute", Name: "shop"}},
			}},
			want: `spec.targetRefs: Invalid value: a targetRef names a Gateway or an HTTPRoute: write group: gateway.networking.k8s.io with kind: HTTPRoute (or kind: Gateway)`,
		},
		{
			desc: "the same targetRef twice",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{
				targetRef("HTTPRoute", "shop", "checkout"), targetRef("HTTPRoute", "shop", "checkout"),
			}},
			want: `spec.targetRefs: Invalid value: each targetRef may be listed once: remove the duplicate`,
		},
		{
			desc: "too many targetRefs",
			spec: v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}, TargetRefs: func() []gwapiv1.LocalPolicyTargetReferenceWithSectionName {
				refs := make([]gwapiv1.LocalPolicyTargetReferenceWithSectionName, v1alpha1.MaxTargetRefs+1)
				for i := range refs {
					refs[i] = targetRef("HTTPRoute", fmt.Sprintf("r%d", i), "")
				}
				return refs
			}()},
			want: notChecked(`spec.targetRefs: Too many: 17: must have at most 16 items`),
		},
	}
}

// targetRef is a Gateway API reference to kind/name (sectionName if not "").
func targetRef(kind, name, section string) gwapiv1.LocalPolicyTargetReferenceWithSectionName {
	r := gwapiv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
		Group: v1alpha1.GatewayGroup, Kind: gwapiv1.Kind(kind), Name: gwapiv1.ObjectName(name),
	}}
	if section != "" {
		r.SectionName = new(gwapiv1.SectionName(section))
	}
	return r
}

func TestCorsPolicyValidation(t *testing.T) {
	t.Parallel()
	for i, tc := range validationCases() {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("validation-%d", i)
			_, err := create(t, name, tc.spec)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("create: got error\n  %v\nwant the object accepted", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("create: accepted, want error\n  %s", tc.want)
			}
			want := fmt.Sprintf("CorsPolicy.policy.corsgate.io %q is invalid: %s", name, tc.want)
			if got := err.Error(); got != want {
				t.Errorf("create: wrong error\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// TestEngineAgrees holds the CRD and the engine (internal/compile.Compile, the
// path every source takes) to the same verdict on every row, so that a policy
// file and `kubectl apply` accept the same specs.
func TestEngineAgrees(t *testing.T) {
	t.Parallel()
	for _, tc := range validationCases() {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, _, err := compile.Compile(gen.CorsPolicy("agree", gen.WithNamespace(namespace), gen.WithSpec(tc.spec)))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("the apiserver accepts this spec, the engine refuses it: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("the apiserver refuses this spec (%s), the engine accepts it", tc.want)
			}
		})
	}
}

// TestDefaults checks the defaults the apiserver fills in, which the engine
// also assumes for an empty value (files bypass the apiserver).
func TestDefaults(t *testing.T) {
	t.Parallel()
	obj, err := create(t, "defaults", v1alpha1.CorsPolicySpec{AllowOrigins: []string{app}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	got := &v1alpha1.CorsPolicy{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Spec.Mode != v1alpha1.ModeEnforce || got.Spec.UnmatchedPreflight != v1alpha1.UnmatchedPreflightReject {
		t.Errorf("defaults: got mode %q, unmatchedPreflight %q; want %q, %q",
			got.Spec.Mode, got.Spec.UnmatchedPreflight, v1alpha1.ModeEnforce, v1alpha1.UnmatchedPreflightReject)
	}
	if got.Spec.MaxAge != nil || got.Spec.AllowCredentials || got.Spec.AllowPrivateNetwork {
		t.Errorf("defaults: got maxAge %v, allowCredentials %v, allowPrivateNetwork %v; want unset, false, false",
			got.Spec.MaxAge, got.Spec.AllowCredentials, got.Spec.AllowPrivateNetwork)
	}
}

// TestSamplesAreAccepted applies every sample in config/samples, so that the
// documentation and the `make run` demo cannot drift from the schema.
func TestSamplesAreAccepted(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "policy_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found in config/samples (err %v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			obj := &v1alpha1.CorsPolicy{}
			if err := yaml.UnmarshalStrict(data, obj); err != nil {
				t.Fatalf("decode %s: %v", file, err)
			}
			if obj.Kind != "CorsPolicy" || obj.APIVersion != v1alpha1.GroupVersion.String() {
				t.Fatalf("%s: got %s %s, want CorsPolicy %s", file, obj.APIVersion, obj.Kind, v1alpha1.GroupVersion)
			}
			// The samples' names are unique in this package's tests.
			obj.Namespace = namespace
			if err := k8s.Create(context.Background(), obj); err != nil {
				t.Fatalf("create %s: %v", file, err)
			}
			t.Cleanup(func() { _ = k8s.Delete(context.Background(), obj) })
		})
	}
}

// TestStatus checks the status subresource: a status writer can record the
// conditions and warnings it promises, and the apiserver bounds warnings at
// the exported limits.
func TestStatus(t *testing.T) {
	t.Parallel()
	obj, err := create(t, "status", v1alpha1.CorsPolicySpec{AllowOrigins: []string{"null"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	now := metav1.Now()
	obj.Status = v1alpha1.CorsPolicyStatus{
		ObservedGeneration: obj.Generation,
		Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionAccepted, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid, Message: "valid", LastTransitionTime: now, ObservedGeneration: obj.Generation},
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonServing, Message: "served", LastTransitionTime: now, ObservedGeneration: obj.Generation},
		},
		Warnings: []string{`allowOrigins "null" is sent by any sandboxed iframe`},
	}
	if err := k8s.Status().Update(context.Background(), obj); err != nil {
		t.Fatalf("status update: %v", err)
	}
	for _, reason := range []string{v1alpha1.ReasonInvalid, v1alpha1.ReasonServingLastValid, v1alpha1.ReasonNotServing, v1alpha1.ReasonConflicted} {
		obj.Status.Conditions[1].Reason = reason
		if err := k8s.Status().Update(context.Background(), obj); err != nil {
			t.Fatalf("status update with reason %s: %v", reason, err)
		}
	}

	obj.Status.Warnings = make([]string, v1alpha1.MaxWarnings)
	for i := range obj.Status.Warnings {
		obj.Status.Warnings[i] = strings.Repeat("w", v1alpha1.MaxWarningLength)
	}
	if err := k8s.Status().Update(context.Background(), obj); err != nil {
		t.Fatalf("status update with MaxWarnings warnings of MaxWarningLength: %v", err)
	}
	tooLong := obj.DeepCopy()
	tooLong.Status.Warnings[0] += "w"
	if err := k8s.Status().Update(context.Background(), tooLong); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("status.warnings[0]: Too long: may not be more than %d bytes", v1alpha1.MaxWarningLength)) {
		t.Errorf("status update with a warning of MaxWarningLength+1: got %v, want Too long", err)
	}
	tooMany := obj.DeepCopy()
	tooMany.Status.Warnings = append(tooMany.Status.Warnings, "w")
	if err := k8s.Status().Update(context.Background(), tooMany); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("status.warnings: Too many: %d: must have at most %d items", v1alpha1.MaxWarnings+1, v1alpha1.MaxWarnings)) {
		t.Errorf("status update with MaxWarnings+1 warnings: got %v, want Too many", err)
	}
}

// TestPrinterColumns asks the apiserver for the table `kubectl get cors`
// prints.
func TestPrinterColumns(t *testing.T) {
	t.Parallel()
	obj, err := create(t, "columns", v1alpha1.CorsPolicySpec{
		Hosts:        []string{"api.example.com"},
		AllowOrigins: []string{app, "https://*.example.com"},
		Mode:         v1alpha1.ModeDryRun,
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	obj.Status.Conditions = []metav1.Condition{
		{Type: v1alpha1.ConditionAccepted, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid, Message: "valid", LastTransitionTime: metav1.Now()},
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonConflicted, Message: "default/other wins", LastTransitionTime: metav1.Now()},
	}
	if err := k8s.Status().Update(context.Background(), obj); err != nil {
		t.Fatalf("status update: %v", err)
	}

	httpClient, err := rest.HTTPClientFor(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("%s/apis/policy.corsgate.io/v1alpha1/namespaces/%s/corspolicies/%s", strings.TrimSuffix(restConfig.Host, "/"), namespace, obj.Name)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as a table: %s: %s", url, resp.Status, body)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatalf("decode table: %v", err)
	}
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, fmt.Sprintf("%s/%d", c.Name, c.Priority))
	}
	wantNames := "Name/0 Hosts/0 Targets/0 Origins/0 Accepted/0 Ready/0 Reason/0 Mode/1 Age/0"
	if got := strings.Join(names, " "); got != wantNames {
		t.Errorf("columns (name/priority):\n got %s\nwant %s", got, wantNames)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("got %d rows, want 1", len(table.Rows))
	}
	cells := fmt.Sprint(table.Rows[0].Cells[:8])
	// Reason is the Ready condition's: why a policy is not (or only partly)
	// served shows in a plain kubectl get.
	wantCells := `[columns ["api.example.com"] <nil> ["https://app.example.com","https://*.example.com"] True False Conflicted DryRun]`
	if cells != wantCells {
		t.Errorf("cells:\n got %s\nwant %s", cells, wantCells)
	}
}

// TestExplain runs `kubectl explain` against the apiserver: the field
// documentation is what users read, so every spec field must be published
// with its description.
func TestExplain(t *testing.T) {
	t.Parallel()
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Fatalf("kubectl is not in KUBEBUILDER_ASSETS (hack/install-envtest-assets.sh builds it): %v", err)
	}
	waitForOpenAPI(t)
	for _, tc := range []struct {
		desc, path string
		want       []string
	}{
		{
			desc: "spec lists every field",
			path: "corspolicy.spec",
			want: []string{"hosts\t<[]string>", "pathPrefixes\t<[]string>", "allowOrigins\t<[]string>",
				"allowOriginRegexes\t<[]string>", "allowMethods\t<[]string>", "allowHeaders\t<[]string>",
				"exposeHeaders\t<[]string>", "maxAge\t<integer>", "allowCredentials\t<boolean>",
				"allowPrivateNetwork\t<boolean>", "unmatchedPreflight\t<string>", "mode\t<string>",
				"When several policies select a"},
		},
		{
			desc: "a field's documentation has its examples and enum values",
			path: "cors.spec.allowOrigins",
			want: []string{`"https://*.example.com" allows any subdomain of example.com`, "Punycode"},
		},
		{
			desc: "crossOriginProtection says what it protects and what it does not",
			path: "cors.spec.crossOriginProtection",
			want: []string{"mode\t<string> -required-", "a form on another site can POST", "It is not a CSRF", "enum: Enforce, DryRun"},
		},
		{
			desc: "enums are listed",
			path: "cors.spec.mode",
			want: []string{"ENUM:", "Enforce", "DryRun", "DryRun: every request is decided"},
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "explain", tc.path).CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl explain %s: %v\n%s", tc.path, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("kubectl explain %s: output lacks %q:\n%s", tc.path, w, out)
				}
			}
		})
	}
}

// waitForOpenAPI waits until the apiserver publishes the CRD's OpenAPI v3
// document, which it does some time after the CRD is established; kubectl
// explain reads that document.
func waitForOpenAPI(t *testing.T) {
	t.Helper()
	httpClient, err := rest.HTTPClientFor(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	url := strings.TrimSuffix(restConfig.Host, "/") + "/openapi/v3"
	const path = "apis/policy.corsgate.io/v1alpha1"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var index struct {
			Paths map[string]json.RawMessage `json:"paths"`
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := httpClient.Do(req); err == nil {
			err = json.NewDecoder(resp.Body).Decode(&index)
			resp.Body.Close()
			if _, ok := index.Paths[path]; ok && err == nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the apiserver did not publish %s in %s", path, url)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
