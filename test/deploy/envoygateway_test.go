package deploy_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The Envoy Gateway examples are decoded strictly into the structs below,
// which copy the JSON field names of Envoy Gateway's gateway.envoyproxy.io/v1alpha1
// API (api/v1alpha1 at envoyproxy/gateway d32f282, August 2026) and the
// Gateway API, for the fields the examples use. A misspelt or misplaced field
// fails the decode. Importing the real API module would drag a second set of
// Kubernetes library versions into go.mod.

type egExtensionPolicy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		TargetRefs []policyTargetRef `json:"targetRefs"`
		ExtProc    []egExtProc       `json:"extProc"`
	} `json:"spec"`
}

type policyTargetRef struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
}

type egExtProc struct {
	BackendRefs []struct {
		Group     *string `json:"group,omitempty"`
		Kind      *string `json:"kind,omitempty"`
		Name      string  `json:"name"`
		Namespace string  `json:"namespace"`
		Port      int32   `json:"port"`
	} `json:"backendRefs"`
	BackendSettings *struct {
		CircuitBreaker *struct {
			MaxConnections      *int64 `json:"maxConnections,omitempty"`
			MaxPendingRequests  *int64 `json:"maxPendingRequests,omitempty"`
			MaxParallelRequests *int64 `json:"maxParallelRequests,omitempty"`
		} `json:"circuitBreaker,omitempty"`
		HealthCheck *struct {
			Active *struct {
				Type string `json:"type"`
				GRPC *struct {
					Service *string `json:"service,omitempty"`
				} `json:"grpc,omitempty"`
				Interval           string  `json:"interval"`
				Timeout            string  `json:"timeout"`
				UnhealthyThreshold *uint32 `json:"unhealthyThreshold"`
				HealthyThreshold   *uint32 `json:"healthyThreshold"`
			} `json:"active,omitempty"`
		} `json:"healthCheck,omitempty"`
	} `json:"backendSettings,omitempty"`
	MessageTimeout string `json:"messageTimeout,omitempty"`
	FailOpen       *bool  `json:"failOpen,omitempty"`
	ProcessingMode *struct {
		Request           *egProcessingModeOptions `json:"request,omitempty"`
		Response          *egProcessingModeOptions `json:"response,omitempty"`
		AllowModeOverride bool                     `json:"allowModeOverride,omitempty"`
	} `json:"processingMode,omitempty"`
}

type egProcessingModeOptions struct {
	Body       *string  `json:"body,omitempty"`
	Attributes []string `json:"attributes,omitempty"`
}

type egEnvoyProxy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		FilterOrder []egFilterPosition `json:"filterOrder"`
	} `json:"spec"`
}

type egFilterPosition struct {
	Name   string `json:"name"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

type referenceGrant struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		From []struct {
			Group     string `json:"group"`
			Kind      string `json:"kind"`
			Namespace string `json:"namespace"`
		} `json:"from"`
		To []struct {
			Group string `json:"group"`
			Kind  string `json:"kind"`
			Name  string `json:"name,omitempty"`
		} `json:"to"`
	} `json:"spec"`
}

type gateway struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		GatewayClassName string `json:"gatewayClassName"`
		Infrastructure   struct {
			ParametersRef struct {
				Group string `json:"group"`
				Kind  string `json:"kind"`
				Name  string `json:"name"`
			} `json:"parametersRef"`
		} `json:"infrastructure"`
		Listeners []struct {
			Name     string `json:"name"`
			Protocol string `json:"protocol"`
			Port     int32  `json:"port"`
		} `json:"listeners"`
	} `json:"spec"`
}

// egClientTrafficPolicy is the part of ClientTrafficPolicy the path
// normalisation example uses (api/v1alpha1 clienttrafficpolicy_types.go).
type egClientTrafficPolicy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		TargetRefs []policyTargetRef `json:"targetRefs"`
		Path       *struct {
			EscapedSlashesAction *string `json:"escapedSlashesAction,omitempty"`
			DisableMergeSlashes  *bool   `json:"disableMergeSlashes,omitempty"`
		} `json:"path,omitempty"`
	} `json:"spec"`
}

// The Gateway's listeners normalise paths (docs/paths.md), explicitly.
func TestEnvoyGatewayPathNormalizationExample(t *testing.T) {
	t.Parallel()
	var ctp egClientTrafficPolicy
	readStrict(t, &ctp, "envoy-gateway", "clienttrafficpolicy.yaml")
	var gw gateway
	readStrict(t, &gw, "envoy-gateway", "gateway.yaml")
	if ctp.APIVersion != "gateway.envoyproxy.io/v1alpha1" || ctp.Kind != "ClientTrafficPolicy" {
		t.Errorf("apiVersion and kind = %s %s, want gateway.envoyproxy.io/v1alpha1 ClientTrafficPolicy", ctp.APIVersion, ctp.Kind)
	}
	if len(ctp.Spec.TargetRefs) != 1 || ctp.Spec.TargetRefs[0] != (policyTargetRef{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: gw.Metadata.Name}) || ctp.Metadata.Namespace != gw.Metadata.Namespace {
		t.Errorf("ClientTrafficPolicy %s/%s targets %+v, not the Gateway %s/%s", ctp.Metadata.Namespace, ctp.Metadata.Name, ctp.Spec.TargetRefs, gw.Metadata.Namespace, gw.Metadata.Name)
	}
	p := ctp.Spec.Path
	if p == nil || p.EscapedSlashesAction == nil || *p.EscapedSlashesAction != "UnescapeAndRedirect" || p.DisableMergeSlashes == nil || *p.DisableMergeSlashes {
		t.Errorf("path = %+v, want escapedSlashesAction UnescapeAndRedirect and disableMergeSlashes false, both written out", p)
	}
}

func readStrict(t *testing.T, into any, elem ...string) {
	t.Helper()
	if err := yaml.UnmarshalStrict(readExample(t, elem...), into); err != nil {
		t.Fatalf("examples/%v does not match the API: %v", elem, err)
	}
}

// gatewayAPIDuration is the Gateway API's Duration format (GEP-2257), which
// Envoy Gateway's messageTimeout and health-check intervals use.
var gatewayAPIDuration = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

func TestEnvoyGatewayExamples(t *testing.T) {
	t.Parallel()
	var policy egExtensionPolicy
	readStrict(t, &policy, "envoy-gateway", "envoyextensionpolicy.yaml")
	var proxy egEnvoyProxy
	readStrict(t, &proxy, "envoy-gateway", "envoyproxy.yaml")
	var grant referenceGrant
	readStrict(t, &grant, "envoy-gateway", "referencegrant.yaml")
	var gw gateway
	readStrict(t, &gw, "envoy-gateway", "gateway.yaml")

	for _, tm := range []struct {
		got, want string
	}{
		{policy.APIVersion + " " + policy.Kind, "gateway.envoyproxy.io/v1alpha1 EnvoyExtensionPolicy"},
		{proxy.APIVersion + " " + proxy.Kind, "gateway.envoyproxy.io/v1alpha1 EnvoyProxy"},
		{grant.APIVersion + " " + grant.Kind, "gateway.networking.k8s.io/v1beta1 ReferenceGrant"},
		{gw.APIVersion + " " + gw.Kind, "gateway.networking.k8s.io/v1 Gateway"},
	} {
		if tm.got != tm.want {
			t.Errorf("apiVersion and kind = %s, want %s", tm.got, tm.want)
		}
	}

	// The policy targets the Gateway, from the Gateway's namespace.
	if len(policy.Spec.TargetRefs) != 1 {
		t.Fatalf("targetRefs = %+v, want one", policy.Spec.TargetRefs)
	}
	if ref := policy.Spec.TargetRefs[0]; ref != (policyTargetRef{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: gw.Metadata.Name}) || policy.Metadata.Namespace != gw.Metadata.Namespace {
		t.Errorf("policy %s/%s targets %+v, not the Gateway %s/%s", policy.Metadata.Namespace, policy.Metadata.Name, ref, gw.Metadata.Namespace, gw.Metadata.Name)
	}
	if len(policy.Spec.ExtProc) != 1 {
		t.Fatalf("extProc = %d entries, want one", len(policy.Spec.ExtProc))
	}
	ep := policy.Spec.ExtProc[0]

	// The backend is the chart's gRPC Service.
	if len(ep.BackendRefs) != 1 {
		t.Fatalf("backendRefs = %+v, want one", ep.BackendRefs)
	}
	backend := ep.BackendRefs[0]
	if backend.Name != "corsgate" || backend.Namespace != releaseNamespace || backend.Port != chartGRPCPort(t, nil, "corsgate") {
		t.Errorf("backend = %s/%s:%d, want the chart's Service %s/corsgate on its grpc port", backend.Namespace, backend.Name, backend.Port, releaseNamespace)
	}
	if (backend.Kind != nil && *backend.Kind != "Service") || (backend.Group != nil && *backend.Group != "") {
		t.Errorf("backend kind/group = %v/%v, want Service in the core group", backend.Kind, backend.Group)
	}

	// Headers both ways, no bodies, mode override allowed, fail open.
	pm := ep.ProcessingMode
	switch {
	case pm == nil || pm.Request == nil || pm.Response == nil:
		t.Errorf("processingMode = %+v: request and response must both be present, or Envoy Gateway sends no headers for the missing side", pm)
	case pm.Request.Body != nil || pm.Response.Body != nil:
		t.Error("processingMode sends a body; corsgate needs headers only")
	case !pm.AllowModeOverride:
		t.Error("processingMode.allowModeOverride is false")
	}
	if ep.FailOpen == nil || !*ep.FailOpen {
		t.Error("failOpen is not true; the examples fail open (see examples/README.md)")
	}
	if ep.MessageTimeout != "500ms" {
		t.Errorf("messageTimeout = %q, want 500ms", ep.MessageTimeout)
	}

	// Health checks ask for the ext_proc health service; limits above 1024.
	settings := ep.BackendSettings
	if settings == nil || settings.HealthCheck == nil || settings.HealthCheck.Active == nil {
		t.Fatal("no active health check")
	}
	active := settings.HealthCheck.Active
	if active.Type != "GRPC" || active.GRPC == nil || active.GRPC.Service == nil || *active.GRPC.Service != extProcHealthService {
		t.Errorf("active health check = %+v, want type GRPC asking for %s", active, extProcHealthService)
	}
	for _, d := range []string{ep.MessageTimeout, active.Interval, active.Timeout} {
		if !gatewayAPIDuration.MatchString(d) {
			t.Errorf("%q is not a Gateway API duration", d)
		}
	}
	if cb := settings.CircuitBreaker; cb == nil || cb.MaxParallelRequests == nil || *cb.MaxParallelRequests <= 1024 || cb.MaxConnections == nil || *cb.MaxConnections <= 1024 || cb.MaxPendingRequests == nil || *cb.MaxPendingRequests <= 1024 {
		t.Errorf("circuitBreaker = %+v, want every limit above Envoy Gateway's default 1024", cb)
	}

	// The ReferenceGrant admits exactly this cross-namespace reference.
	if grant.Metadata.Namespace != backend.Namespace ||
		len(grant.Spec.From) != 1 || grant.Spec.From[0].Group != "gateway.envoyproxy.io" || grant.Spec.From[0].Kind != "EnvoyExtensionPolicy" || grant.Spec.From[0].Namespace != policy.Metadata.Namespace ||
		len(grant.Spec.To) != 1 || grant.Spec.To[0].Group != "" || grant.Spec.To[0].Kind != "Service" || grant.Spec.To[0].Name != backend.Name {
		t.Errorf("ReferenceGrant %+v does not admit EnvoyExtensionPolicies in %s to Service %s/%s", grant, policy.Metadata.Namespace, backend.Namespace, backend.Name)
	}

	// The Gateway uses the EnvoyProxy that reorders the filters.
	if ref := gw.Spec.Infrastructure.ParametersRef; ref.Group != "gateway.envoyproxy.io" || ref.Kind != "EnvoyProxy" || ref.Name != proxy.Metadata.Name || proxy.Metadata.Namespace != gw.Metadata.Namespace {
		t.Errorf("Gateway parametersRef = %+v, want the EnvoyProxy %s/%s", ref, proxy.Metadata.Namespace, proxy.Metadata.Name)
	}
}

// egDefaultOrder is Envoy Gateway's default HTTP filter order
// (internal/xds/translator/httpfilters.go, newOrderedHTTPFilter), for the
// filters that matter here.
var egDefaultOrder = []string{
	"envoy.filters.http.health_check",
	"envoy.filters.http.fault",
	"envoy.filters.http.cors",
	"envoy.filters.http.csrf",
	"envoy.filters.http.header_mutation",
	"envoy.filters.http.ext_authz",
	"envoy.filters.http.api_key_auth",
	"envoy.filters.http.basic_auth",
	"envoy.filters.http.oauth2",
	"envoy.filters.http.jwt_authn",
	"envoy.filters.http.lua",
	"envoy.filters.http.ext_proc",
	"envoy.filters.http.wasm",
	"envoy.filters.http.rbac",
	"envoy.filters.http.local_ratelimit",
	"envoy.filters.http.router",
}

// egAuthFilters reject unauthenticated requests; a preflight is one.
var egAuthFilters = []string{
	"envoy.filters.http.ext_authz",
	"envoy.filters.http.api_key_auth",
	"envoy.filters.http.basic_auth",
	"envoy.filters.http.oauth2",
	"envoy.filters.http.jwt_authn",
}

// applyFilterOrder reproduces how Envoy Gateway applies
// EnvoyProxy.spec.filterOrder (sortHTTPFilters): entries in turn; an entry
// whose filter is absent, or whose "before"/"after" filter is absent, does
// nothing; otherwise the filter moves just before the first "before" filter,
// or just after the last "after" filter.
func applyFilterOrder(chain []string, order []egFilterPosition) []string {
	out := slices.Clone(chain)
	for _, pos := range order {
		i := slices.Index(out, pos.Name)
		if i < 0 {
			continue
		}
		switch {
		case pos.Before != "":
			if slices.Index(out, pos.Before) < 0 {
				continue
			}
			out = slices.Delete(out, i, i+1)
			j := slices.Index(out, pos.Before)
			out = slices.Insert(out, j, pos.Name)
		case pos.After != "":
			if slices.Index(out, pos.After) < 0 {
				continue
			}
			out = slices.Delete(out, i, i+1)
			j := slices.Index(out, pos.After)
			out = slices.Insert(out, j+1, pos.Name)
		}
	}
	return out
}

// firstAuthBeforeExtProc returns an authentication filter that still runs
// before ext_proc, or "".
func firstAuthBeforeExtProc(chain []string) string {
	extProc := slices.Index(chain, "envoy.filters.http.ext_proc")
	for _, f := range chain[:extProc] {
		if slices.Contains(egAuthFilters, f) {
			return f
		}
	}
	return ""
}

// TestEnvoyGatewayFilterOrder: with the example's filterOrder, ext_proc runs
// before every authentication filter for each combination of them a listener
// can have. The control rows show why one "before ext_authz" entry is not
// enough.
func TestEnvoyGatewayFilterOrder(t *testing.T) {
	t.Parallel()
	var proxy egEnvoyProxy
	readStrict(t, &proxy, "envoy-gateway", "envoyproxy.yaml")
	for _, pos := range proxy.Spec.FilterOrder {
		if !slices.Contains(egDefaultOrder, pos.Name) || (pos.Before != "" && !slices.Contains(egDefaultOrder, pos.Before)) || (pos.After != "" && !slices.Contains(egDefaultOrder, pos.After)) {
			t.Errorf("filterOrder entry %+v names a filter Envoy Gateway does not order", pos)
		}
	}
	naive := []egFilterPosition{{Name: "envoy.filters.http.ext_proc", Before: "envoy.filters.http.ext_authz"}}

	tests := []struct {
		desc      string
		order     []egFilterPosition
		present   []string
		wantFirst bool
	}{
		{desc: "control: default order, JWT", order: nil, present: []string{"envoy.filters.http.jwt_authn"}, wantFirst: false},
		{desc: "control: one before-ext_authz entry, JWT only", order: naive, present: []string{"envoy.filters.http.jwt_authn"}, wantFirst: false},
		{desc: "control: one before-ext_authz entry, ext_authz", order: naive, present: []string{"envoy.filters.http.ext_authz"}, wantFirst: true},
	}
	// Every subset of the authentication filters, with the example's order.
	for mask := range 1 << len(egAuthFilters) {
		var present, short []string
		for i, f := range egAuthFilters {
			if mask&(1<<i) != 0 {
				present = append(present, f)
				short = append(short, strings.TrimPrefix(f, "envoy.filters.http."))
			}
		}
		tests = append(tests, struct {
			desc      string
			order     []egFilterPosition
			present   []string
			wantFirst bool
		}{desc: fmt.Sprintf("example order, %v", short), order: proxy.Spec.FilterOrder, present: present, wantFirst: true})
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var chain []string
			for _, f := range egDefaultOrder {
				if !slices.Contains(egAuthFilters, f) || slices.Contains(tc.present, f) {
					chain = append(chain, f)
				}
			}
			got := applyFilterOrder(chain, tc.order)
			if len(got) != len(chain) || got[len(got)-1] != "envoy.filters.http.router" {
				t.Fatalf("reordering broke the chain: %v", got)
			}
			before := firstAuthBeforeExtProc(got)
			if tc.wantFirst && before != "" {
				t.Errorf("%s still runs before ext_proc: %v", before, got)
			}
			if !tc.wantFirst && before == "" {
				t.Errorf("ext_proc runs first, but this row expects the trap: %v", got)
			}
		})
	}
}
