package importer_test

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/corsgate/corsgate/internal/importer"
)

func importYAML(t *testing.T, in string) *importer.Result {
	t.Helper()
	objs, err := importer.Read(strings.NewReader(in), "in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return importer.Import(objs)
}

func warningsOf(res *importer.Result) []string {
	var ws []string
	for _, w := range res.Warnings {
		ws = append(ws, w.String())
	}
	return ws
}

func hasWarning(res *importer.Result, sub string) bool {
	return slices.ContainsFunc(warningsOf(res), func(s string) bool { return strings.Contains(s, sub) })
}

// TestImportLosesNothing: the ways an import used to lose or loosen what the
// source said (issue "import loses or loosens"), one by one.
func TestImportLosesNothing(t *testing.T) {
	t.Parallel()

	t.Run("an HTTPRoute rule whose only matches are Exact or RegularExpression is warned: corsgate serves nothing there", func(t *testing.T) {
		res := importYAML(t, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: login, namespace: default}
spec:
  rules:
  - matches: [{path: {type: Exact, value: /login}}, {path: {type: RegularExpression, value: "/api/v[0-9]+"}}]
    filters: [{type: CORS, cors: {allowOrigins: ["https://app.example.com"], maxAge: 60}}]
`)
		if len(res.Policies) != 1 || !hasWarning(res, `serves nothing for them`) || !hasWarning(res, `Exact "/login"`) {
			t.Errorf("policies %d, warnings:\n%s", len(res.Policies), strings.Join(warningsOf(res), "\n"))
		}
	})

	t.Run("an Ingress with only a defaultBackend and credentialed CORS is refused, not a credentialed policy for every host", func(t *testing.T) {
		res := importYAML(t, `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: catch-all
  namespace: shop
  annotations:
    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/cors-allow-origin: "https://app.example.com"
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
`)
		if len(res.Policies) != 0 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "defaultBackend") {
			t.Errorf("policies %+v, errors %v", res.Policies, res.Errors)
		}
	})

	t.Run("names are valid object names", func(t *testing.T) {
		res := importYAML(t, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: prod}
spec:
  hosts: [ratings.prod.svc.cluster.local]
  gateways: [public]
  http:
  - name: Ratings_V1 route
    corsPolicy: {allowOrigins: [{exact: "https://a.example.com"}], unmatchedPreflights: IGNORE}
  - name: other
    corsPolicy: {allowOrigins: [{exact: "https://b.example.com"}], unmatchedPreflights: IGNORE}
`)
		if len(res.Policies) != 2 {
			t.Fatalf("policies %d, errors %v", len(res.Policies), res.Errors)
		}
		for _, p := range res.Policies {
			if errs := validation.IsDNS1123Subdomain(p.Policy.Name); len(errs) > 0 {
				t.Errorf("name %q: %v", p.Policy.Name, errs)
			}
		}
		if res.Policies[0].Policy.Name != "vs-ratings-v1-route" || !hasWarning(res, `names the policy "vs-ratings-v1-route"`) {
			t.Errorf("name %q, warnings:\n%s", res.Policies[0].Policy.Name, strings.Join(warningsOf(res), "\n"))
		}
	})

	t.Run("Gateway API conformance's route with unnamed rules imports", func(t *testing.T) {
		// conformance/tests/cors-allow-credentials-behavior.yaml: two unnamed
		// rules whose filters allow no origin (so no CORS headers at all).
		res := importYAML(t, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: cors-allow-credentials
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - name: same-namespace
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /cors-behavior-creds-false
    backendRefs:
    - name: infra-backend-v1
      port: 8080
    filters:
    - cors:
        allowCredentials: false
      type: CORS
  - matches:
    - path:
        type: PathPrefix
        value: /cors-behavior-creds-true
    backendRefs:
    - name: infra-backend-v1
      port: 8080
    filters:
    - cors:
        allowCredentials: true
      type: CORS
`)
		if len(res.Errors) != 0 || !hasWarning(res, "allows no origin") {
			t.Errorf("errors %v, warnings:\n%s", res.Errors, strings.Join(warningsOf(res), "\n"))
		}
		// Unnamed rules whose filters differ only in spelling attach as one
		// policy for the whole route.
		res = importYAML(t, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: two, namespace: default}
spec:
  rules:
  - matches: [{path: {type: PathPrefix, value: /a}}]
    filters: [{type: CORS, cors: {allowOrigins: ["https://App.example.com"], allowMethods: [PUT]}}]
  - matches: [{path: {type: PathPrefix, value: /b}}]
    filters: [{type: CORS, cors: {allowOrigins: ["https://app.example.com"], allowMethods: [PUT], maxAge: 5}}]
`)
		if len(res.Errors) != 0 || len(res.Policies) != 1 || res.Policies[0].Policy.Spec.TargetRefs[0].SectionName != nil {
			t.Errorf("errors %v, policies %+v", res.Errors, res.Policies)
		}
	})

	t.Run("maxAge above Chromium's cap is written as 7200, which lint --strict accepts", func(t *testing.T) {
		res := importYAML(t, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: prod}
spec:
  hosts: [api.example.com]
  gateways: [public]
  http:
  - corsPolicy: {allowOrigins: [{exact: "https://a.example.com"}], maxAge: "24h", unmatchedPreflights: IGNORE}
`)
		if len(res.Policies) != 1 || *res.Policies[0].Policy.Spec.MaxAge != 7200 || !hasWarning(res, "maxAge: 7200") {
			t.Errorf("policies %+v, warnings:\n%s", res.Policies, strings.Join(warningsOf(res), "\n"))
		}
	})

	t.Run("warnings name the route, so two alike can be told apart", func(t *testing.T) {
		res := importYAML(t, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: prod}
spec:
  hosts: [api.example.com]
  gateways: [public]
  http:
  - name: a
    match: [{uri: {prefix: /a}}]
    corsPolicy: {allowOrigins: [{exact: "https://a.example.com"}]}
  - match: [{uri: {prefix: /b}}]
    corsPolicy: {allowOrigins: [{exact: "https://b.example.com"}]}
`)
		var forwarded []string
		for _, w := range res.Warnings {
			if w.Class == importer.PreflightForwarded {
				forwarded = append(forwarded, w.String())
			}
		}
		if len(forwarded) != 2 || forwarded[0] == forwarded[1] || !strings.HasPrefix(forwarded[0], `VirtualService prod/vs http[0] "a": `) ||
			!strings.HasPrefix(forwarded[1], `VirtualService prod/vs http[1]: `) {
			t.Errorf("warnings:\n%s", strings.Join(forwarded, "\n"))
		}
	})

	t.Run("an http origin with credentials, which the output keeps, is warned by import too", func(t *testing.T) {
		res := importYAML(t, ingress(`    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/cors-allow-origin: "http://app.example.com"`))
		if len(res.Policies) != 1 || !res.Policies[0].Policy.Spec.AllowCredentials || !hasWarning(res, "[http-origin-with-credentials]") {
			t.Errorf("policies %+v, warnings:\n%s", res.Policies, strings.Join(warningsOf(res), "\n"))
		}
	})

	t.Run("nginx with * answers every OPTIONS itself: no warning says preflights reached the backend", func(t *testing.T) {
		res := importYAML(t, ingress(`    nginx.ingress.kubernetes.io/enable-cors: "true"`))
		if hasWarning(res, "to the backend") && !hasWarning(res, "no preflight reached the backend") || hasWarning(res, "[preflight-forwarded]") {
			t.Errorf("warnings:\n%s", strings.Join(warningsOf(res), "\n"))
		}
	})
}
