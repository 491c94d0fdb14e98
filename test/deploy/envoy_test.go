package deploy_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/extproc"

	// Register the typed_config types the examples use, so that protojson
	// resolves their "@type" and refuses unknown fields inside them.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
)

const extProcFilterName = "envoy.filters.http.ext_proc"

// parseProto reads YAML into an Envoy message the way Envoy reads its own
// YAML: converted to JSON, then proto3 JSON with unknown fields refused and
// every Any resolved. It then runs protoc-gen-validate's rules on the message
// and on every message packed in an Any, which ValidateAll alone skips.
func parseProto(t *testing.T, yamlDoc []byte, into proto.Message) {
	t.Helper()
	jsonDoc, err := yaml.YAMLToJSON(yamlDoc)
	if err != nil {
		t.Fatalf("YAML: %v", err)
	}
	if err := protojson.Unmarshal(jsonDoc, into); err != nil {
		t.Fatalf("not a valid %s: %v", into.ProtoReflect().Descriptor().FullName(), err)
	}
	validateTree(t, into, string(into.ProtoReflect().Descriptor().FullName()))
}

type validator interface{ ValidateAll() error }

func validateTree(t *testing.T, m proto.Message, path string) {
	t.Helper()
	v, ok := m.(validator)
	if !ok {
		t.Errorf("%s: %T has no ValidateAll", path, m)
		return
	}
	if err := v.ValidateAll(); err != nil {
		t.Errorf("%s: %v", path, err)
	}
	walkAnys(t, m.ProtoReflect(), path)
}

// walkAnys finds every google.protobuf.Any below m and validates its content.
func walkAnys(t *testing.T, m protoreflect.Message, path string) {
	t.Helper()
	visit := func(msg protoreflect.Message, at string) {
		if a, ok := msg.Interface().(*anypb.Any); ok {
			inner, err := a.UnmarshalNew()
			if err != nil {
				t.Errorf("%s: %v", at, err)
				return
			}
			validateTree(t, inner, at+"<"+a.GetTypeUrl()+">")
			return
		}
		walkAnys(t, msg, at)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		at := path + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				visit(v.List().Get(i).Message(), at)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				visit(mv.Message(), at+"["+k.String()+"]")
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			visit(v.Message(), at)
		}
		return true
	})
}

func unpack[M proto.Message](t *testing.T, a *anypb.Any, into M) M {
	t.Helper()
	if err := a.UnmarshalTo(into); err != nil {
		t.Fatalf("typed_config %s is not a %s: %v", a.GetTypeUrl(), into.ProtoReflect().Descriptor().FullName(), err)
	}
	return into
}

// checkExtProcFilter asserts the filter settings examples/README.md promises,
// and returns the gRPC cluster it calls.
func checkExtProcFilter(t *testing.T, filter *hcmv3.HttpFilter) string {
	t.Helper()
	if filter.GetName() != extProcFilterName {
		t.Errorf("filter name = %q, want %q (per-route configuration is keyed by it)", filter.GetName(), extProcFilterName)
	}
	ep := unpack(t, filter.GetTypedConfig(), &extprocfilterv3.ExternalProcessor{})
	if !ep.GetFailureModeAllow() {
		t.Error("failure_mode_allow is false; the examples fail open (see examples/README.md)")
	}
	if got := ep.GetMessageTimeout().AsDuration(); got != 500*time.Millisecond {
		t.Errorf("message_timeout = %v, want 500ms", got)
	}
	if !ep.GetAllowModeOverride() {
		t.Error("allow_mode_override is false: Envoy would ignore corsgate's mode_override and always send response headers")
	}
	pm := ep.GetProcessingMode()
	want := &extprocfilterv3.ProcessingMode{
		RequestHeaderMode:   extprocfilterv3.ProcessingMode_SEND,
		ResponseHeaderMode:  extprocfilterv3.ProcessingMode_SEND,
		RequestBodyMode:     extprocfilterv3.ProcessingMode_NONE,
		ResponseBodyMode:    extprocfilterv3.ProcessingMode_NONE,
		RequestTrailerMode:  extprocfilterv3.ProcessingMode_SKIP,
		ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
	}
	if !proto.Equal(pm, want) {
		t.Errorf("processing_mode = %v, want headers SEND both ways and no bodies or trailers", pm)
	}
	cluster := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	if cluster == "" {
		t.Error("grpc_service is not envoy_grpc with a cluster_name")
	}
	return cluster
}

func readExample(t *testing.T, elem ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, append([]string{"examples"}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// chartGRPCPort returns the port a chart Service (rendered with the given
// values) exposes under the name "grpc".
func chartGRPCPort(t *testing.T, values map[string]any, service string) int32 {
	t.Helper()
	svc := rendered{objs: mustRender(t, values)}.service(t, service)
	for _, p := range svc.Spec.Ports {
		if p.Name == "grpc" {
			return p.Port
		}
	}
	t.Fatalf("Service %s has no grpc port", service)
	return 0
}

func TestEnvoyBootstrapExample(t *testing.T) {
	t.Parallel()
	var bootstrap bootstrapv3.Bootstrap
	parseProto(t, readExample(t, "envoy", "envoy.yaml"), &bootstrap)

	listeners := bootstrap.GetStaticResources().GetListeners()
	if len(listeners) != 1 || len(listeners[0].GetFilterChains()) != 1 {
		t.Fatalf("want one listener with one filter chain, got %d listeners", len(listeners))
	}
	hcm := unpack(t, listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig(), &hcmv3.HttpConnectionManager{})
	filters := hcm.GetHttpFilters()
	if len(filters) < 2 || filters[len(filters)-1].GetName() != "envoy.filters.http.router" {
		t.Fatalf("http_filters = %v, want ext_proc ... router", filters)
	}
	// First, so no authentication filter can reject a preflight before it.
	clusterName := checkExtProcFilter(t, filters[0])

	// One path from the client to the upstream (docs/paths.md): dot segments
	// resolved, "//" merged, %2F and %5C redirected to their unescaped form.
	if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() ||
		hcm.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT {
		t.Errorf("normalize_path = %v, merge_slashes = %v, path_with_escaped_slashes_action = %v; want true, true, UNESCAPE_AND_REDIRECT",
			hcm.GetNormalizePath().GetValue(), hcm.GetMergeSlashes(), hcm.GetPathWithEscapedSlashesAction())
	}

	// Per-route switch-off is keyed by the filter's name.
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, route := range vh.GetRoutes() {
			for name, cfg := range route.GetTypedPerFilterConfig() {
				if name != filters[0].GetName() {
					t.Errorf("route %v configures filter %q, which is not in the chain", route.GetMatch(), name)
					continue
				}
				if perRoute := unpack(t, cfg, &extprocfilterv3.ExtProcPerRoute{}); !perRoute.GetDisabled() {
					t.Errorf("route %v: ExtProcPerRoute does not disable the filter", route.GetMatch())
				}
			}
		}
	}

	var cluster *clusterv3.Cluster
	for _, c := range bootstrap.GetStaticResources().GetClusters() {
		if c.GetName() == clusterName {
			cluster = c
		}
	}
	if cluster == nil {
		t.Fatalf("ext_proc calls cluster %q, which is not defined", clusterName)
	}
	options := cluster.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if options == nil || unpack(t, options, &upstreamhttpv3.HttpProtocolOptions{}).GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Error("the corsgate cluster does not force HTTP/2, which gRPC needs")
	}
	if hcs := cluster.GetHealthChecks(); len(hcs) != 1 || hcs[0].GetGrpcHealthCheck().GetServiceName() != extProcHealthService {
		t.Errorf("health_checks = %v, want one gRPC check of %s", hcs, extProcHealthService)
	}
	var defaultThresholds *clusterv3.CircuitBreakers_Thresholds
	for _, th := range cluster.GetCircuitBreakers().GetThresholds() {
		if th.GetPriority() == corev3.RoutingPriority_DEFAULT {
			defaultThresholds = th
		}
	}
	// Envoy's default is 1024 for each; every in-flight request holds a stream.
	if th := defaultThresholds; th == nil || th.GetMaxRequests().GetValue() <= 1024 || th.GetMaxConnections().GetValue() <= 1024 || th.GetMaxPendingRequests().GetValue() <= 1024 {
		t.Errorf("circuit breakers = %v, want max_requests, max_connections and max_pending_requests above Envoy's 1024", th)
	}
	// Pings find dead connections; more often than the server allows, they
	// would make it close the connection with GOAWAY too_many_pings.
	keepalive := unpack(t, options, &upstreamhttpv3.HttpProtocolOptions{}).GetExplicitHttpConfig().GetHttp2ProtocolOptions().GetConnectionKeepalive()
	if keepalive == nil {
		t.Error("no HTTP/2 connection_keepalive: a vanished pod's connections would linger")
	} else if interval := keepalive.GetInterval().AsDuration(); interval < extproc.MinPingInterval {
		t.Errorf("connection_keepalive.interval = %v, below the %v corsgate permits", interval, extproc.MinPingInterval)
	}

	// The address is the chart's headless Service, on the chart's port.
	endpoints := cluster.GetLoadAssignment().GetEndpoints()
	if len(endpoints) != 1 || len(endpoints[0].GetLbEndpoints()) != 1 {
		t.Fatalf("load_assignment = %v, want one endpoint", cluster.GetLoadAssignment())
	}
	addr := endpoints[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	wantPort := chartGRPCPort(t, map[string]any{"service": map[string]any{"headless": map[string]any{"enabled": true}}}, "corsgate-headless")
	if addr.GetAddress() != "corsgate-headless."+releaseNamespace+".svc.cluster.local" || int32(addr.GetPortValue()) != wantPort {
		t.Errorf("endpoint = %s:%d, want the chart's headless Service corsgate-headless.%s.svc.cluster.local:%d", addr.GetAddress(), addr.GetPortValue(), releaseNamespace, wantPort)
	}
	if cluster.GetType() != clusterv3.Cluster_STRICT_DNS {
		t.Errorf("cluster type = %v, want STRICT_DNS (one endpoint per pod behind the headless Service)", cluster.GetType())
	}
}

// istioEnvoyFilter is the part of networking.istio.io/v1alpha3 EnvoyFilter the
// example uses, with Istio's field names; strict decoding refuses any other.
type istioEnvoyFilter struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		WorkloadSelector struct {
			Labels map[string]string `json:"labels"`
		} `json:"workloadSelector"`
		ConfigPatches []struct {
			ApplyTo string `json:"applyTo"`
			Match   struct {
				Context  string `json:"context"`
				Listener struct {
					FilterChain struct {
						Filter struct {
							Name      string `json:"name"`
							SubFilter *struct {
								Name string `json:"name"`
							} `json:"subFilter,omitempty"`
						} `json:"filter"`
					} `json:"filterChain"`
				} `json:"listener"`
			} `json:"match"`
			Patch struct {
				Operation string         `json:"operation"`
				Value     map[string]any `json:"value"`
			} `json:"patch"`
		} `json:"configPatches"`
	} `json:"spec"`
}

type objectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

func TestIstioEnvoyFilterExample(t *testing.T) {
	t.Parallel()
	var ef istioEnvoyFilter
	if err := yaml.UnmarshalStrict(readExample(t, "istio", "envoyfilter.yaml"), &ef); err != nil {
		t.Fatalf("not an EnvoyFilter as Istio defines it: %v", err)
	}
	if ef.APIVersion != "networking.istio.io/v1alpha3" || ef.Kind != "EnvoyFilter" {
		t.Errorf("apiVersion/kind = %s/%s", ef.APIVersion, ef.Kind)
	}
	if len(ef.Spec.ConfigPatches) != 1 {
		t.Fatalf("want one config patch, got %d", len(ef.Spec.ConfigPatches))
	}
	p := ef.Spec.ConfigPatches[0]
	if p.ApplyTo != "HTTP_FILTER" || p.Match.Context != "GATEWAY" || p.Match.Listener.FilterChain.Filter.Name != "envoy.filters.network.http_connection_manager" {
		t.Errorf("patch applies to %s in %s on %s, want HTTP_FILTER in GATEWAY on the HTTP connection manager", p.ApplyTo, p.Match.Context, p.Match.Listener.FilterChain.Filter.Name)
	}
	// First in the chain, whatever other filters the gateway has.
	if p.Patch.Operation != "INSERT_FIRST" || p.Match.Listener.FilterChain.Filter.SubFilter != nil {
		t.Errorf("operation = %s (subFilter %v), want INSERT_FIRST with no subFilter", p.Patch.Operation, p.Match.Listener.FilterChain.Filter.SubFilter)
	}
	value, err := yaml.Marshal(p.Patch.Value)
	if err != nil {
		t.Fatal(err)
	}
	var filter hcmv3.HttpFilter
	parseProto(t, value, &filter)
	cluster := checkExtProcFilter(t, &filter)

	port := chartGRPCPort(t, nil, "corsgate")
	if want := "outbound|" + strconv.Itoa(int(port)) + "||corsgate." + releaseNamespace + ".svc.cluster.local"; cluster != want {
		t.Errorf("cluster = %s, want Istio's name for the chart's Service, %s", cluster, want)
	}
}

// istioOperator is the part of install.istio.io/v1alpha1 IstioOperator the
// path normalisation example uses, with Istio's field names.
type istioOperator struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		MeshConfig struct {
			PathNormalization struct {
				Normalization string `json:"normalization"`
			} `json:"pathNormalization"`
		} `json:"meshConfig"`
	} `json:"spec"`
}

// The mesh normalises paths before any filter runs (docs/paths.md): Istio's
// default, BASE, leaves "//", %2F and %5C as they are.
func TestIstioPathNormalizationExample(t *testing.T) {
	t.Parallel()
	var op istioOperator
	if err := yaml.UnmarshalStrict(readExample(t, "istio", "meshconfig.yaml"), &op); err != nil {
		t.Fatalf("not an IstioOperator as Istio defines it: %v", err)
	}
	if op.APIVersion != "install.istio.io/v1alpha1" || op.Kind != "IstioOperator" {
		t.Errorf("apiVersion/kind = %s/%s", op.APIVersion, op.Kind)
	}
	if got := op.Spec.MeshConfig.PathNormalization.Normalization; got != "DECODE_AND_MERGE_SLASHES" {
		t.Errorf("meshConfig.pathNormalization.normalization = %q, want DECODE_AND_MERGE_SLASHES", got)
	}
}
