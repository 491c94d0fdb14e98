package importer_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/importer"
)

func ingress(annotations string) string {
	return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations:
` + annotations + `
spec:
  rules:
  - host: api.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
`
}

// TestTraps checks each semantic difference the import must handle, one at
// a time: the policy written (stricter, never looser) and the warning.
func TestTraps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc    string
		in      string
		origins []string // allowOrigins of the one policy; nil = not checked
		regexes []string
		creds   *bool
		warning string // a substring of one warning
		err     string // a substring of the import error, when the object is refused
	}{
		{desc: "nginx * with its default credentials: * without credentials (browsers refused credentialed requests)",
			in: ingress(`    nginx.ingress.kubernetes.io/enable-cors: "true"`), origins: []string{"*"}, creds: new(false), warning: `refuses "*" with credentials`},
		{desc: "nginx invalid whole origin value (trailing /): nginx served *, import keeps only readable entries",
			in: ingress(`    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/cors-allow-origin: "https://a.example.com, https://b.example.com/"
    nginx.ingress.kubernetes.io/cors-allow-credentials: "false"`),
			origins: []string{"https://a.example.com"}, warning: "served Access-Control-Allow-Origin: *"},
		{desc: "nginx matches case-insensitively: the origin is lower-cased",
			in: ingress(`    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/cors-allow-origin: "https://App.Example.com"`),
			origins: []string{"https://app.example.com"}, creds: new(true), warning: "allowed credentials by default"},
		{desc: "nginx null with credentials is left out",
			in: ingress(`    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/cors-allow-origin: "null, https://a.example.com"`),
			origins: []string{"https://a.example.com"}, warning: `never allows "null" with credentials`},
		{desc: "nginx enable-cors: yes is false",
			in: ingress(`    nginx.ingress.kubernetes.io/enable-cors: "yes"`), warning: `enable-cors: "yes"`},
		{desc: "nginx default port never matched: left out",
			in: ingress(`    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/cors-allow-origin: "https://a.example.com:443, https://b.example.com"`),
			origins: []string{"https://b.example.com"}, warning: "default port"},
		{desc: "Istio regex matching * allows every origin, credentials withdrawn",
			in: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: prod}
spec:
  hosts: [api.example.com]
  gateways: [gw]
  http:
  - corsPolicy: {allowOrigins: [{regex: ".*"}], allowCredentials: true, unmatchedPreflights: IGNORE}
`, origins: []string{"*"}, creds: new(false), warning: "matches \"*\""},
		{desc: "Istio exact is byte for byte: an upper-case origin never matched and is left out",
			in: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: prod}
spec:
  hosts: [api.example.com]
  gateways: [gw]
  http:
  - corsPolicy: {allowOrigins: [{exact: "https://App.example.com"}, {exact: "https://b.example.com"}], unmatchedPreflights: IGNORE}
`, origins: []string{"https://b.example.com"}, warning: "never matched"},
		{desc: "Istio deprecated allowOrigin is read as exact matches",
			in: `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: vs, namespace: prod}
spec:
  hosts: [api.example.com]
  gateways: [gw]
  http:
  - corsPolicy: {allowOrigin: ["https://a.example.com"], unmatchedPreflights: IGNORE}
`, origins: []string{"https://a.example.com"}},
		{desc: "Istio prefix that is not a whole origin becomes an anchored regex, refused with credentials",
			in: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: prod}
spec:
  hosts: [api.example.com]
  gateways: [gw]
  http:
  - corsPolicy: {allowOrigins: [{prefix: "https://"}, {exact: "https://a.example.com"}], allowCredentials: true, unmatchedPreflights: IGNORE}
`, origins: []string{"https://a.example.com"}, warning: "plain prefix"},
		{desc: "Envoy Gateway without targetRefs is refused, not widened to every host",
			in: `apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: sp, namespace: default}
spec:
  cors: {allowOrigins: ["https://a.example.com"]}
`, err: "names no targetRefs"},
		{desc: "Envoy Gateway v0.6 origin objects are refused, not guessed",
			in: `apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: sp, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]
  cors: {allowOrigins: [{type: Exact, value: "https://a.example.com"}, "https://b.example.com"]}
`, origins: []string{"https://b.example.com"}, warning: "{type, value}"},
		{desc: "Gateway API https://* is any https origin: a regex",
			in: `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  rules:
  - filters: [{type: CORS, cors: {allowOrigins: ["https://*"], maxAge: 60}}]
`, regexes: []string{`https://[a-z0-9.-]+`}, warning: "any host of the scheme"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			objs, err := importer.Read(strings.NewReader(tc.in), "in.yaml")
			if err != nil {
				t.Fatal(err)
			}
			res := importer.Import(objs)
			var ws []string
			for _, w := range res.Warnings {
				ws = append(ws, w.String())
				if !strings.HasPrefix(w.String(), w.Source+": ") || w.Source == "" {
					t.Errorf("warning does not start with its source object: %q", w.String())
				}
			}
			if tc.warning != "" && !slices.ContainsFunc(ws, func(s string) bool { return strings.Contains(s, tc.warning) }) {
				t.Errorf("no warning contains %q; warnings:\n%s", tc.warning, strings.Join(ws, "\n"))
			}
			if tc.err != "" {
				if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), tc.err) || len(res.Policies) != 0 {
					t.Fatalf("errors %v, %d policies; want one error containing %q and no policy", res.Errors, len(res.Policies), tc.err)
				}
				return
			}
			if len(res.Errors) > 0 {
				t.Fatalf("errors: %v", res.Errors)
			}
			if tc.origins == nil && tc.regexes == nil {
				if len(res.Policies) != 0 {
					t.Fatalf("imported %d policies, want none", len(res.Policies))
				}
				return
			}
			if len(res.Policies) != 1 {
				t.Fatalf("imported %d policies, want 1", len(res.Policies))
			}
			p := res.Policies[0].Policy
			if _, _, err := compile.Compile(&p); err != nil {
				t.Errorf("imported policy does not compile: %v", err)
			}
			if tc.origins != nil && !slices.Equal(p.Spec.AllowOrigins, tc.origins) {
				t.Errorf("allowOrigins %q, want %q", p.Spec.AllowOrigins, tc.origins)
			}
			if tc.regexes != nil && !slices.Equal(p.Spec.AllowOriginRegexes, tc.regexes) {
				t.Errorf("allowOriginRegexes %q, want %q", p.Spec.AllowOriginRegexes, tc.regexes)
			}
			if tc.creds != nil && p.Spec.AllowCredentials != *tc.creds {
				t.Errorf("allowCredentials %v, want %v", p.Spec.AllowCredentials, *tc.creds)
			}
		})
	}
}
