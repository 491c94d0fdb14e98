package audit_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/audit"
	"github.com/corsgate/corsgate/internal/importer"
)

// Sources of the manifests below (each adapted only where the comment says):
//   nginxDocs:   ingress-nginx annotations documentation, "Enable CORS"
//                (https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/#enable-cors)
//   istioDocs:   Istio VirtualService reference, "CorsPolicy"
//                (https://istio.io/latest/docs/reference/config/networking/virtual-service/#CorsPolicy)
//   gwConf:      Gateway API conformance, conformance/tests/httproute-cors.yaml
//   gwExamples:  Gateway API examples/standard/http-cors/*.yaml (the CORS user guide)
//   gep1767:     Gateway API GEP-1767 (https://gateway-api.sigs.k8s.io/geps/gep-1767/)
//   egDocs:      Envoy Gateway "CORS" task (https://gateway.envoyproxy.io/docs/tasks/security/cors/)
//   samples:     corsgate's config/samples

func ingress(ann string) string {
	return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations:
    nginx.ingress.kubernetes.io/enable-cors: "true"
` + ann + `spec:
  rules:
  - host: api.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
`
}

// istio is the reference's example, with the corsPolicy lines given.
func istio(cors string, extra string) string {
	return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings-route
  namespace: prod
spec:
  hosts:
  - ratings.prod.svc.cluster.local
  gateways: [istio-system/public]
  http:
  - route:
    - destination:
        host: ratings.prod.svc.cluster.local
        subset: v1
` + extra + `    corsPolicy:
` + cors
}

func httpRoute(name, cors string) string {
	return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: ` + name + `
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - name: same-namespace
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /cors
    backendRefs:
    - name: infra-backend-v1
      port: 8080
    filters:
    - type: CORS
      cors:
` + cors
}

func corsPolicy(spec string) string {
	return `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata:
  name: subdomains-rollout
  namespace: default
spec:
  hosts: ["*.example.test"]
  allowMethods: ["GET", "POST", "PATCH"]
  allowHeaders: ["content-type"]
` + spec
}

type classCase struct {
	desc     string
	class    importer.Class
	severity importer.Severity
	in       string // has the finding
	twin     string // the safe twin: no finding of the class, nor of any other (see inherent)
}

// inherent are the findings every configuration of a system has, whatever
// its author writes, so a safe twin may still have them: Envoy and nginx
// reflect origins without Vary: Origin, and nginx sends preflights from
// unlisted origins to the backend whenever it lists origins.
var inherent = []importer.Class{importer.VaryOriginMissing, importer.PreflightForwarded}

var classCases = []classCase{
	{desc: "gwConf: * with allowCredentials echoes every origin with credentials", class: importer.AnyOriginWithCredentials, severity: importer.Critical,
		in: httpRoute("cors-wildcard-creds", `        allowOrigins: ["*"]
        allowCredentials: true
`),
		twin: httpRoute("cors-allow-credentials", `        allowOrigins: ["*"]
        allowCredentials: false
`)}, // gwExamples httproute-all-origins-no-creds.yaml
	{desc: "istioDocs: an allow-all prefix matcher with credentials (the reference's example, origin changed)", class: importer.AnyOriginWithCredentials, severity: importer.Critical,
		in: istio(`      allowOrigins:
      - prefix: "*"
      allowMethods: [POST, GET]
      allowCredentials: true
      unmatchedPreflights: IGNORE
`, ""),
		twin: istio(`      allowOrigins:
      - exact: https://example.com
      allowMethods: [POST, GET]
      allowCredentials: true
      unmatchedPreflights: IGNORE
`, "")},
	{desc: "egDocs: * with allowCredentials in a SecurityPolicy", class: importer.AnyOriginWithCredentials, severity: importer.Critical,
		in: `apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: cors-example, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend}]
  cors:
    allowOrigins: ["*"]
    allowMethods: [GET, POST]
    allowCredentials: true
`, twin: `apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: cors-example, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend}]
  cors:
    allowOrigins: ["https://www.foo.com"]
    allowMethods: [GET, POST]
    allowCredentials: true
`},
	{desc: "egDocs: a SecurityPolicy import cannot write (targetSelectors) is audited all the same", class: importer.AnyOriginWithCredentials, severity: importer.Critical,
		in: `apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: cors-example, namespace: default}
spec:
  targetSelectors: [{kind: HTTPRoute, matchLabels: {app: backend}}]
  cors:
    allowOrigins: ["*"]
    allowCredentials: true
`, twin: `apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: cors-example, namespace: default}
spec:
  targetSelectors: [{kind: HTTPRoute, matchLabels: {app: backend}}]
  cors:
    allowOrigins: ["*"]
`},
	{desc: "nginxDocs: enable-cors alone sends * with credentials: broken, not open", class: importer.WildcardWithCredentials, severity: importer.Info,
		in: ingress(""),
		twin: ingress(`    nginx.ingress.kubernetes.io/cors-allow-credentials: "false"
`)},
	{desc: "nginxDocs: an origin value nginx cannot parse falls back to * (with its default credentials)", class: importer.WildcardWithCredentials, severity: importer.Info,
		in: ingress(`    nginx.ingress.kubernetes.io/cors-allow-origin: "https://origin-site.com/"
`),
		twin: ingress(`    nginx.ingress.kubernetes.io/cors-allow-origin: "https://origin-site.com"
`)},
	{desc: "istioDocs: a prefix origin matcher is a hostname-extension hole", class: importer.RegistrableOrigin, severity: importer.High,
		in: istio(`      allowOrigins:
      - prefix: https://example.com
      allowCredentials: true
      unmatchedPreflights: IGNORE
`, ""),
		twin: istio(`      allowOrigins:
      - exact: https://example.com
      allowCredentials: true
      unmatchedPreflights: IGNORE
`, "")},
	{desc: "istioDocs: a regex with unescaped dots", class: importer.RegistrableOrigin, severity: importer.Low,
		in: istio(`      allowOrigins:
      - regex: "https://.*.example.com"
      unmatchedPreflights: IGNORE
`, ""),
		twin: istio(`      allowOrigins:
      - regex: "https://[a-z0-9-]+\\.example\\.com"
      unmatchedPreflights: IGNORE
`, "")},
	{desc: "gwExamples: a wildcard over github.io (a public suffix) with credentials (httproute-all-fields-set.yaml, origin changed)", class: importer.RegistrableOrigin, severity: importer.High,
		in: httpRoute("cors-allow-credentials", `        allowOrigins: ["https://www.foo.com", "https://*.github.io"]
        allowMethods: [GET]
        allowCredentials: true
        maxAge: 3600
`),
		twin: httpRoute("cors-allow-credentials", `        allowOrigins: ["https://www.foo.com", "https://*.bar.com"]
        allowMethods: [GET]
        allowCredentials: true
        maxAge: 3600
`)},
	{desc: "egDocs: an Envoy Gateway * pattern without a dot boundary", class: importer.RegistrableOrigin, severity: importer.Low,
		in: `apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: cors-example, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend}]
  cors:
    allowOrigins: ["http://*foo.com"]
`, twin: `apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: cors-example, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend}]
  cors:
    allowOrigins: ["http://*.foo.com"]
`},
	{desc: "samples: a corsgate regex without escaped dots", class: importer.RegistrableOrigin, severity: importer.Low,
		in: corsPolicy(`  allowOriginRegexes: ['https://pr-[0-9]+.preview.example.test']
`),
		twin: corsPolicy(`  allowOriginRegexes: ['https://pr-[0-9]+\.preview\.example\.test']
`)},
	{desc: "nginxDocs: null with nginx's default credentials", class: importer.NullOrigin, severity: importer.Critical,
		in: ingress(`    nginx.ingress.kubernetes.io/cors-allow-origin: "null, https://origin-site.com"
`),
		twin: ingress(`    nginx.ingress.kubernetes.io/cors-allow-origin: "https://origin-site.com"
`)},
	{desc: "istioDocs: an exact null matcher", class: importer.NullOrigin, severity: importer.Low,
		in: istio(`      allowOrigins:
      - exact: "null"
      unmatchedPreflights: IGNORE
`, ""),
		twin: istio(`      allowOrigins:
      - exact: https://example.com
      unmatchedPreflights: IGNORE
`, "")},
	{desc: "gep1767: http://foo.example with credentials", class: importer.HTTPOriginWithCredentials, severity: importer.Medium,
		in: httpRoute("http-route-cors", `        allowOrigins: [https://foo.example, http://foo.example]
        allowCredentials: true
        allowMethods: [GET, PUT, POST, DELETE, PATCH]
`),
		twin: httpRoute("http-route-cors", `        allowOrigins: [https://foo.example]
        allowCredentials: true
        allowMethods: [GET, PUT, POST, DELETE, PATCH]
`)},
	{desc: "nginxDocs: the documented http origin with nginx's default credentials", class: importer.HTTPOriginWithCredentials, severity: importer.Medium,
		in: ingress(`    nginx.ingress.kubernetes.io/cors-allow-origin: "https://origin-site.com:4443, http://origin-site.com"
`),
		twin: ingress(`    nginx.ingress.kubernetes.io/cors-allow-origin: "https://origin-site.com:4443, http://origin-site.com"
    nginx.ingress.kubernetes.io/cors-allow-credentials: "false"
`)},
	{desc: "gwConf: * methods and headers with credentials are echoed", class: importer.EchoWithCredentials, severity: importer.Low,
		in: httpRoute("cors-wildcard-methods-headers-auth", `        allowOrigins: ["https://other.foo.com"]
        allowMethods: ["*"]
        allowHeaders: ["*"]
        allowCredentials: true
`),
		twin: httpRoute("cors-multiple-origins-methods-headers", `        allowOrigins: ["https://www.foo.com", "https://*.bar.com"]
        allowMethods: [GET, OPTIONS]
        allowHeaders: [x-header-1, x-header-2]
        exposeHeaders: [x-header-3, x-header-4]
        allowCredentials: true
        maxAge: 3600
`)},
	{desc: "istioDocs: the reference's example forwards unmatched preflights (unmatchedPreflights unset)", class: importer.PreflightForwarded, severity: importer.Low,
		in: istio(`      allowOrigins:
      - exact: https://example.com
      allowMethods: [POST, GET]
      allowCredentials: false
      allowHeaders: [X-Foo-Bar]
      maxAge: "24h"
`, ""),
		twin: istio(`      allowOrigins:
      - exact: https://example.com
      allowMethods: [POST, GET]
      allowCredentials: false
      allowHeaders: [X-Foo-Bar]
      maxAge: "24h"
      unmatchedPreflights: IGNORE
`, "")},
	{desc: "nginxDocs: a listed origin: preflights from others go to the backend; with * nginx answers every OPTIONS itself", class: importer.PreflightForwarded, severity: importer.Low,
		in: ingress(`    nginx.ingress.kubernetes.io/cors-allow-origin: "https://origin-site.com"
    nginx.ingress.kubernetes.io/cors-allow-credentials: "false"
`),
		twin: ingress(`    nginx.ingress.kubernetes.io/cors-allow-origin: "*"
    nginx.ingress.kubernetes.io/cors-allow-credentials: "false"
`)},
	{desc: "samples: a corsgate policy with unmatchedPreflight: Forward", class: importer.PreflightForwarded, severity: importer.Low,
		in: corsPolicy(`  allowOrigins: ["https://app.example.test"]
  unmatchedPreflight: Forward
`),
		twin: corsPolicy(`  allowOrigins: ["https://app.example.test"]
`)},
	{desc: "istioDocs: Envoy reflects the origin without Vary: Origin", class: importer.VaryOriginMissing, severity: importer.Info,
		in: istio(`      allowOrigins:
      - exact: https://example.com
      unmatchedPreflights: IGNORE
`, ""),
		twin: httpRoute("cors-allow-credentials", `        allowOrigins: ["*"]
        allowCredentials: false
`)},
	{desc: "istioDocs: Access-Control-Allow-Private-Network set on every response", class: importer.PrivateNetwork, severity: importer.Medium,
		in: istio(`      allowOrigins:
      - exact: https://example.com
      unmatchedPreflights: IGNORE
`, `    headers:
      response:
        set:
          Access-Control-Allow-Private-Network: "true"
`),
		twin: istio(`      allowOrigins:
      - exact: https://example.com
      unmatchedPreflights: IGNORE
`, `    headers:
      response:
        set:
          X-Frame-Options: DENY
`)},
	{desc: "samples: a public corsgate policy that allows private-network access", class: importer.PrivateNetwork, severity: importer.Medium,
		in: corsPolicy(`  allowOrigins: ["*"]
  allowPrivateNetwork: true
`),
		twin: corsPolicy(`  allowOrigins: ["*"]
`)},
	{desc: "samples: the DryRun sample leaves the upstream's CORS in charge", class: importer.NotEnforced, severity: importer.Medium,
		in: corsPolicy(`  allowOrigins: ["https://app.example.test"]
  mode: DryRun
`),
		twin: corsPolicy(`  allowOrigins: ["https://app.example.test"]
  mode: Enforce
`)},
}

func auditYAML(t *testing.T, in string) *audit.Report {
	t.Helper()
	objs, err := importer.Read(strings.NewReader(in), "in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := &audit.Report{}
	for _, o := range objs {
		r.Add(o)
	}
	return r
}

func describe(r *audit.Report) string {
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  %s %s %s: %s\n", f.Severity, f.Class, f.Object, f.Does)
	}
	return b.String()
}

// TestClasses: each class is found in a manifest from the system's own docs
// or tests, at its severity, and its safe twin has no finding of that class
// and none of another, but those its system always has (inherent).
func TestClasses(t *testing.T) {
	t.Parallel()
	seen := map[importer.Class]bool{}
	for _, tc := range classCases {
		seen[tc.class] = true
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := auditYAML(t, tc.in)
			if !slices.ContainsFunc(r.Findings, func(f audit.Finding) bool { return f.Class == tc.class && f.Severity == tc.severity }) {
				t.Errorf("no %s finding of class %s; findings:\n%s", tc.severity, tc.class, describe(r))
			}
			for _, f := range r.Findings {
				if f.Object == "" || f.Does == "" || f.Attack == "" || f.Field == "" {
					t.Errorf("a finding lacks its object, field, semantics or attack: %+v", f)
				}
			}
			twin := auditYAML(t, tc.twin)
			if twin.Objects != 1 {
				t.Fatalf("the twin was not audited: %d objects", twin.Objects)
			}
			for _, f := range twin.Findings {
				if f.Class == tc.class || !slices.Contains(inherent, f.Class) {
					t.Errorf("the safe twin has a finding:\n%s", describe(twin))
					break
				}
			}
		})
	}
	for _, c := range importer.Classes {
		if !seen[c.ID] {
			t.Errorf("class %s has no test", c.ID)
		}
	}
}

// TestSafeSourcesNoFinding: configurations with nothing to report give no
// finding at all, not even "info".
func TestSafeSourcesNoFinding(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		ingress(`    nginx.ingress.kubernetes.io/cors-allow-credentials: "false"
`),
		httpRoute("cors-allow-credentials", `        allowOrigins: ["*"]
        allowCredentials: false
`),
		corsPolicy(`  allowOrigins: ["https://app.example.test"]
  allowCredentials: true
`),
		// A corsgate policy the server refuses (Invalid) serves nothing.
		corsPolicy(`  allowOrigins: ["https://*.github.io"]
  allowCredentials: true
`),
		// An Ingress without CORS, and a kind audit does not read.
		`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: plain, namespace: shop}
spec: {rules: [{host: a.example.com}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
`,
	} {
		if r := auditYAML(t, in); len(r.Findings) > 0 {
			t.Errorf("findings for a safe source:\n%s\n%s", describe(r), in)
		}
	}
}

// TestImportAgrees: every finding audit reports for an object is among the
// warnings `corsgate import` prints for that object, with the same class,
// over every manifest of these tests and of the importer's golden tests.
func TestImportAgrees(t *testing.T) {
	t.Parallel()
	var inputs []string
	for _, tc := range classCases {
		inputs = append(inputs, tc.in, tc.twin)
	}
	golden, _ := filepath.Glob("../importer/testdata/*.yaml")
	for _, g := range golden {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(b))
	}
	checked := 0
	for _, in := range inputs {
		objs, err := importer.Read(strings.NewReader(in), "in.yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			r := &audit.Report{}
			r.Add(o)
			if strings.HasPrefix(o.Ref(), "CorsPolicy ") {
				continue // corsgate's own policies are not imported
			}
			warns := importer.Import([]importer.Object{o}).Warnings
			for _, f := range r.Findings {
				checked++
				if !slices.ContainsFunc(warns, func(w importer.Warning) bool {
					return w.Class == f.Class && w.Source == f.Object && w.Old == f.Does && strings.Contains(w.String(), "["+string(f.Class)+"]")
				}) {
					t.Errorf("%s: audit finds %s (%s), import prints no such warning", f.Object, f.Class, f.Does)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d findings checked", checked)
	}
}
