package deploy_test

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/corsgate/corsgate/extproc"
)

// extProcHealthService is the gRPC health service name corsgate registers for
// its ext_proc server; probes and Envoy's health checks must ask for it.
const extProcHealthService = extproc.ServiceName

// toggle is one chart configuration worth testing. The same table drives
// helm lint, the rendered-object checks below, and the API server dry-run.
type toggle struct {
	name   string
	values map[string]any
	// check inspects the rendered objects for the toggle's effect.
	check func(t *testing.T, r rendered)
}

var toggles = []toggle{
	{
		name:   "NetworkPolicy by default",
		values: nil,
		check: func(t *testing.T, r rendered) {
			checkNetworkPolicy(t, r, []string{"envoy-gateway-system", "istio-system", "istio-ingress"}, nil, []string{"monitoring"})
		},
	},
	{
		name: "NetworkPolicy admits labelled namespaces too",
		values: map[string]any{"networkPolicy": map[string]any{
			"gatewayNamespaceSelector": map[string]any{"matchLabels": map[string]any{"example.com/edge": "true"}},
		}},
		check: func(t *testing.T, r rendered) {
			checkNetworkPolicy(t, r, []string{"envoy-gateway-system", "istio-system", "istio-ingress"}, map[string]string{"example.com/edge": "true"}, []string{"monitoring"})
		},
	},
	{
		name: "NetworkPolicy for a plain Envoy, metrics off",
		values: map[string]any{
			"networkPolicy": map[string]any{"gatewayNamespaces": []any{"edge"}},
			"metrics":       map[string]any{"enabled": false},
		},
		check: func(t *testing.T, r rendered) {
			checkNetworkPolicy(t, r, []string{"edge"}, nil, nil)
		},
	},
	{
		name:   "NetworkPolicy off",
		values: map[string]any{"networkPolicy": map[string]any{"enabled": false}},
		check: func(t *testing.T, r rendered) {
			if find(r.objs, "NetworkPolicy", "corsgate") != nil {
				t.Error("a NetworkPolicy is rendered although disabled")
			}
		},
	},
	{
		name: "gRPC stream limits",
		values: map[string]any{"grpc": map[string]any{"limits": map[string]any{
			"streamIdleTimeout": "2h", "maxStreamsPerConnection": 500, "maxStreams": 20000, "maxHeaderListBytes": 65536, "maxMessageBytes": 8388608,
		}}},
		check: func(t *testing.T, r rendered) {
			c := r.container(t)
			for _, arg := range []string{"--grpc-stream-idle-timeout=2h", "--grpc-max-streams-per-connection=500", "--grpc-max-streams=20000",
				"--grpc-max-header-list-bytes=65536", "--grpc-max-message-bytes=8388608"} {
				if !slices.Contains(c.Args, arg) {
					t.Errorf("args %v lack %s", c.Args, arg)
				}
			}
		},
	},
	{
		name:   "defaults",
		values: nil,
		check: func(t *testing.T, r rendered) {
			wantKinds := []string{
				"ClusterRole//corsgate",
				"ClusterRole//corsgate-auditor",
				"ClusterRole//corsgate-corshostgrant-viewer",
				"ClusterRole//corsgate-corspolicy-editor",
				"ClusterRole//corsgate-corspolicy-viewer",
				"ClusterRoleBinding//corsgate",
				"Deployment/corsgate-system/corsgate",
				"NetworkPolicy/corsgate-system/corsgate",
				"PodDisruptionBudget/corsgate-system/corsgate",
				"Role/corsgate-system/corsgate-leader-election",
				"RoleBinding/corsgate-system/corsgate-leader-election",
				"Service/corsgate-system/corsgate",
				"Service/corsgate-system/corsgate-metrics",
				"ServiceAccount/corsgate-system/corsgate",
				"ValidatingAdmissionPolicy//corsgate-host-ownership",
				"ValidatingAdmissionPolicyBinding//corsgate-host-ownership",
			}
			if got := keys(r.objs); !slices.Equal(got, wantKinds) {
				t.Errorf("objects = %v, want %v", got, wantKinds)
			}
			d := r.deployment(t)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
				t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
			}
			c := r.container(t)
			for _, arg := range []string{"--grpc-bind-address=:9002", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081", "--leader-elect", "--leader-election-namespace=corsgate-system"} {
				if !slices.Contains(c.Args, arg) {
					t.Errorf("args %v lack %s", c.Args, arg)
				}
			}
			if c.Image != "ghcr.io/corsgate/corsgate:v0.1.0" {
				t.Errorf("image = %s, want ghcr.io/corsgate/corsgate:<appVersion>", c.Image)
			}
			if g := c.ReadinessProbe.GRPC; g == nil || g.Port != 9002 || g.Service == nil || *g.Service != extProcHealthService {
				t.Errorf("readiness probe = %+v, want gRPC on 9002 asking for %s", c.ReadinessProbe.ProbeHandler, extProcHealthService)
			}
			if h := c.LivenessProbe.HTTPGet; h == nil || h.Path != "/healthz" || h.Port.String() != "probes" {
				t.Errorf("liveness probe = %+v, want GET /healthz on the probes port", c.LivenessProbe.ProbeHandler)
			}
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 15 {
				t.Errorf("preStop = %+v, want the sleep action for 15 s", c.Lifecycle)
			}
			if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != 60 {
				t.Errorf("terminationGracePeriodSeconds = %v, want 60", g)
			}
			if q := c.Resources.Requests; q.Cpu().IsZero() || q.Memory().IsZero() {
				t.Errorf("resource requests = %v, want cpu and memory", q)
			}
			if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
				return e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory"
			}) {
				t.Errorf("env %v lacks GOMEMLIMIT from limits.memory", c.Env)
			}
			checkSecureDefaults(t, d)
			checkSpread(t, d, true)
			svc := r.service(t, "corsgate")
			if len(svc.Spec.Ports) != 1 {
				t.Fatalf("gRPC Service ports = %+v, want only grpc", svc.Spec.Ports)
			}
			if p := svc.Spec.Ports[0]; p.Name != "grpc" || p.Port != 9002 || p.AppProtocol == nil || *p.AppProtocol != "kubernetes.io/h2c" {
				t.Errorf("gRPC Service port = %+v, want grpc 9002 with appProtocol kubernetes.io/h2c", p)
			}
			var pdb policyv1.PodDisruptionBudget
			r.typed(t, "PodDisruptionBudget", "corsgate", &pdb)
			if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
				t.Errorf("PDB = %+v, want maxUnavailable 1", pdb.Spec)
			}
		},
	},
	{
		name:   "TLS on the gRPC listener",
		values: map[string]any{"grpc": map[string]any{"tls": map[string]any{"enabled": true, "secretName": "corsgate-grpc-tls"}}},
		check: func(t *testing.T, r rendered) {
			d := r.deployment(t)
			c := r.container(t)
			for _, arg := range []string{"--grpc-tls-cert-file=/etc/corsgate/grpc-tls/tls.crt", "--grpc-tls-key-file=/etc/corsgate/grpc-tls/tls.key"} {
				if !slices.Contains(c.Args, arg) {
					t.Errorf("args %v lack %s", c.Args, arg)
				}
			}
			vols := d.Spec.Template.Spec.Volumes
			if len(vols) != 1 || vols[0].Secret == nil || vols[0].Secret.SecretName != "corsgate-grpc-tls" {
				t.Fatalf("volumes = %+v, want the Secret corsgate-grpc-tls", vols)
			}
			if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].Name != vols[0].Name || !c.VolumeMounts[0].ReadOnly || c.VolumeMounts[0].MountPath != "/etc/corsgate/grpc-tls" || c.VolumeMounts[0].SubPath != "" {
				t.Errorf("volume mounts = %+v, want the whole Secret read-only at /etc/corsgate/grpc-tls", c.VolumeMounts)
			}
			// Kubelet gRPC probes cannot do TLS.
			if c.ReadinessProbe.GRPC != nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("readiness probe = %+v, want GET /readyz", c.ReadinessProbe.ProbeHandler)
			}
		},
	},
	{
		name:   "HorizontalPodAutoscaler",
		values: map[string]any{"autoscaling": map[string]any{"enabled": true, "minReplicas": 3, "maxReplicas": 9}},
		check: func(t *testing.T, r rendered) {
			if d := r.deployment(t); d.Spec.Replicas != nil {
				t.Errorf("replicas = %d, want unset so the HPA owns it", *d.Spec.Replicas)
			}
			var hpa autoscalingv2.HorizontalPodAutoscaler
			r.typed(t, "HorizontalPodAutoscaler", "corsgate", &hpa)
			if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 9 {
				t.Errorf("HPA replicas = %v..%d, want 3..9", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
			}
			if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != "corsgate" {
				t.Errorf("HPA target = %+v, want Deployment corsgate", ref)
			}
		},
	},
	{
		name:   "ServiceMonitor",
		values: map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}}}},
		check: func(t *testing.T, r rendered) {
			sm := mustFind(t, r.objs, "ServiceMonitor", "corsgate")
			if sm.GetLabels()["release"] != "prom" {
				t.Errorf("ServiceMonitor labels = %v, want release=prom", sm.GetLabels())
			}
			selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			metrics := r.service(t, "corsgate-metrics")
			for k, v := range selector {
				if metrics.Labels[k] != v {
					t.Errorf("ServiceMonitor selects %s=%s; the metrics Service has %v", k, v, metrics.Labels)
				}
			}
			if grpc := r.service(t, "corsgate"); grpc.Labels["app.kubernetes.io/component"] == selector["app.kubernetes.io/component"] {
				t.Errorf("ServiceMonitor selector %v also matches the gRPC Service", selector)
			}
			endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(endpoints) != 1 || endpoints[0].(map[string]any)["port"] != metrics.Spec.Ports[0].Name {
				t.Errorf("ServiceMonitor endpoints = %v, want the metrics Service's port %q", endpoints, metrics.Spec.Ports[0].Name)
			}
		},
	},
	{
		name:   "PodDisruptionBudget off",
		values: map[string]any{"podDisruptionBudget": map[string]any{"enabled": false}},
		check: func(t *testing.T, r rendered) {
			if pdb := find(r.objs, "PodDisruptionBudget", "corsgate"); pdb != nil {
				t.Error("a PodDisruptionBudget is rendered although disabled")
			}
		},
	},
	{
		name:   "PodDisruptionBudget with minAvailable",
		values: map[string]any{"replicaCount": 3, "podDisruptionBudget": map[string]any{"minAvailable": 2, "maxUnavailable": nil}},
		check: func(t *testing.T, r rendered) {
			var pdb policyv1.PodDisruptionBudget
			r.typed(t, "PodDisruptionBudget", "corsgate", &pdb)
			if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 || pdb.Spec.MaxUnavailable != nil {
				t.Errorf("PDB = %+v, want only minAvailable 2", pdb.Spec)
			}
		},
	},
	{
		name:   "one replica without leader election",
		values: map[string]any{"replicaCount": 1, "leaderElection": map[string]any{"enabled": false}},
		check: func(t *testing.T, r rendered) {
			if d := r.deployment(t); d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
				t.Errorf("replicas = %v, want 1", d.Spec.Replicas)
			}
			if c := r.container(t); slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--leader-elect") }) {
				t.Errorf("args %v still elect a leader", c.Args)
			}
			if find(r.objs, "Role", "corsgate-leader-election") != nil || find(r.objs, "RoleBinding", "corsgate-leader-election") != nil {
				t.Error("leader-election RBAC is rendered although election is off")
			}
			// maxUnavailable 1 never blocks a drain, even with one pod.
			var pdb policyv1.PodDisruptionBudget
			r.typed(t, "PodDisruptionBudget", "corsgate", &pdb)
			if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() < 1 {
				t.Errorf("PDB = %+v would block node drains with one replica", pdb.Spec)
			}
		},
	},
	{
		name:   "metrics off",
		values: map[string]any{"metrics": map[string]any{"enabled": false}},
		check: func(t *testing.T, r rendered) {
			c := r.container(t)
			if !slices.Contains(c.Args, "--metrics-bind-address=0") {
				t.Errorf("args %v do not disable metrics", c.Args)
			}
			if slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" }) {
				t.Errorf("container ports %+v still list metrics", c.Ports)
			}
			if find(r.objs, "Service", "corsgate-metrics") != nil {
				t.Error("the metrics Service is rendered although metrics are off")
			}
		},
	},
	{
		name:   "headless Service for plain Envoy",
		values: map[string]any{"service": map[string]any{"headless": map[string]any{"enabled": true}}},
		check: func(t *testing.T, r rendered) {
			svc := r.service(t, "corsgate-headless")
			if svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("clusterIP = %q, want None", svc.Spec.ClusterIP)
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9002 {
				t.Errorf("ports = %+v, want 9002", svc.Spec.Ports)
			}
		},
	},
	{
		name: "no RBAC, existing ServiceAccount",
		values: map[string]any{
			"rbac":           map[string]any{"create": false},
			"serviceAccount": map[string]any{"create": false, "name": "platform-corsgate"},
		},
		check: func(t *testing.T, r rendered) {
			for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"} {
				if slices.ContainsFunc(r.objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == kind }) {
					t.Errorf("a %s is rendered although creation is off", kind)
				}
			}
			if sa := r.deployment(t).Spec.Template.Spec.ServiceAccountName; sa != "platform-corsgate" {
				t.Errorf("serviceAccountName = %q, want platform-corsgate", sa)
			}
		},
	},
	{
		name: "no preStop hook, pinned digest, extra args, no memory limit",
		values: map[string]any{
			"termination": map[string]any{"preStopSleepSeconds": 0, "gracePeriodSeconds": 30},
			"image":       map[string]any{"digest": "sha256:" + strings.Repeat("ab", 32)},
			"extraArgs":   []any{"--zap-stacktrace-level=panic"},
			"resources":   map[string]any{"limits": nil},
		},
		check: func(t *testing.T, r rendered) {
			c := r.container(t)
			if c.Lifecycle != nil {
				t.Errorf("lifecycle = %+v, want none", c.Lifecycle)
			}
			if want := "ghcr.io/corsgate/corsgate@sha256:" + strings.Repeat("ab", 32); c.Image != want {
				t.Errorf("image = %s, want %s", c.Image, want)
			}
			if c.Args[len(c.Args)-1] != "--zap-stacktrace-level=panic" {
				t.Errorf("args = %v, want the extra flag last", c.Args)
			}
			if len(c.Env) != 0 {
				t.Errorf("env = %v, want no GOMEMLIMIT without a memory limit", c.Env)
			}
		},
	},
	{
		name:   "no spreading",
		values: map[string]any{"spreadAcrossNodes": false},
		check: func(t *testing.T, r rendered) {
			checkSpread(t, r.deployment(t), false)
		},
	},
	{
		name: "own affinity and extra spread constraint",
		values: map[string]any{
			"affinity": map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
				"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "node-role.example.com/edge", "operator": "Exists"}}}},
			}}},
			"topologySpreadConstraints": []any{map[string]any{"maxSkew": 2, "topologyKey": "example.com/rack", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "corsgate"}}}},
		},
		check: func(t *testing.T, r rendered) {
			spec := r.deployment(t).Spec.Template.Spec
			if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.PodAntiAffinity != nil {
				t.Errorf("affinity = %+v, want the given node affinity instead of the chart's", spec.Affinity)
			}
			if n := len(spec.TopologySpreadConstraints); n != 3 || spec.TopologySpreadConstraints[2].TopologyKey != "example.com/rack" {
				t.Errorf("topologySpreadConstraints = %+v, want the chart's two plus the rack one", spec.TopologySpreadConstraints)
			}
		},
	},
}

// checkNetworkPolicy: the corsgate pods admit the gateway namespaces (and,
// when selector is given, the namespaces with those labels) on the gRPC port
// and, when monitoring is given, the monitoring namespaces on the metrics
// port; nothing else, and egress is not restricted.
func checkNetworkPolicy(t *testing.T, r rendered, gateways []string, selector map[string]string, monitoring []string) {
	t.Helper()
	var np networkingv1.NetworkPolicy
	r.typed(t, "NetworkPolicy", "corsgate", &np)
	d := r.deployment(t)
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("NetworkPolicy selects %s=%s; the pods have %v", k, v, d.Spec.Template.Labels)
		}
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("policyTypes = %v, want Ingress only (corsgate must reach the API server)", np.Spec.PolicyTypes)
	}
	type rule struct {
		port       string
		namespaces []string
	}
	var got []rule
	for i, in := range np.Spec.Ingress {
		peers := 1
		if i == 0 && selector != nil {
			peers = 2 // the names, then the label selector
		}
		if len(in.From) != peers || in.From[0].NamespaceSelector == nil || in.From[0].PodSelector != nil || len(in.Ports) != 1 {
			t.Fatalf("ingress rule %+v, want %d namespace selector(s) and one port", in, peers)
		}
		if peers == 2 {
			extra := in.From[1]
			// An empty selector would admit every namespace.
			if extra.PodSelector != nil || extra.NamespaceSelector == nil || !maps.Equal(extra.NamespaceSelector.MatchLabels, selector) || len(extra.NamespaceSelector.MatchExpressions) != 0 {
				t.Errorf("second peer %+v, want the namespaces labelled %v", extra, selector)
			}
		}
		exprs := in.From[0].NamespaceSelector.MatchExpressions
		if len(exprs) != 1 || exprs[0].Key != "kubernetes.io/metadata.name" || exprs[0].Operator != "In" {
			t.Fatalf("namespace selector %+v, want kubernetes.io/metadata.name In [...]", in.From[0].NamespaceSelector)
		}
		got = append(got, rule{port: in.Ports[0].Port.String(), namespaces: exprs[0].Values})
	}
	want := []rule{{port: "grpc", namespaces: gateways}}
	if monitoring != nil {
		want = append(want, rule{port: "metrics", namespaces: monitoring})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ingress = %v, want %v", got, want)
	}
	for _, w := range want {
		if !slices.ContainsFunc(r.container(t).Ports, func(p corev1.ContainerPort) bool { return p.Name == w.port }) {
			t.Errorf("the NetworkPolicy admits port %q, which the container does not name", w.port)
		}
	}
}

// rendered wraps the chart's output with typed accessors.
type rendered struct{ objs []*unstructured.Unstructured }

func (r rendered) typed(t *testing.T, kind, name string, into any) {
	t.Helper()
	obj := mustFind(t, r.objs, kind, name)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.Object, into, true); err != nil {
		t.Fatalf("%s %s does not decode strictly as %T: %v", kind, name, into, err)
	}
}

func (r rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	r.typed(t, "Deployment", "corsgate", &d)
	return &d
}

func (r rendered) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := r.deployment(t).Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "corsgate" {
		t.Fatalf("containers = %+v, want one named corsgate", cs)
	}
	return cs[0]
}

func (r rendered) service(t *testing.T, name string) *corev1.Service {
	t.Helper()
	var s corev1.Service
	r.typed(t, "Service", name, &s)
	return &s
}

// checkSecureDefaults asserts the restricted Pod Security Standard's settings
// (the envtest dry-run also has the API server's admission check them).
func checkSecureDefaults(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	sc := pod.Containers[0].SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container may escalate privileges")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container root filesystem is writable")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities = %+v, want drop [ALL] and nothing added", sc.Capabilities)
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("container is privileged")
	}
	if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Error("the pod does not mount its token, but must watch CorsPolicies")
	}
}

// checkSpread asserts the soft spreading over nodes and zones, or its absence.
func checkSpread(t *testing.T, d *appsv1.Deployment, want bool) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if !want {
		if len(spec.TopologySpreadConstraints) != 0 || spec.Affinity != nil {
			t.Errorf("spreading is off but the pod has %+v and %+v", spec.TopologySpreadConstraints, spec.Affinity)
		}
		return
	}
	var topologies []string
	for _, c := range spec.TopologySpreadConstraints {
		topologies = append(topologies, c.TopologyKey)
		if c.WhenUnsatisfiable != corev1.ScheduleAnyway {
			t.Errorf("spread on %s is hard (%s); a small cluster could not schedule every replica", c.TopologyKey, c.WhenUnsatisfiable)
		}
		if c.LabelSelector == nil || c.LabelSelector.MatchLabels["app.kubernetes.io/instance"] != releaseName {
			t.Errorf("spread on %s selects %+v, not this release's pods", c.TopologyKey, c.LabelSelector)
		}
	}
	if !slices.Equal(topologies, []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"}) {
		t.Errorf("spread topologies = %v, want hostname and zone", topologies)
	}
	anti := spec.Affinity
	if anti == nil || anti.PodAntiAffinity == nil || len(anti.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 || len(anti.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 0 {
		t.Fatalf("affinity = %+v, want one preferred (soft) pod anti-affinity term", anti)
	}
	if term := anti.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm; term.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("anti-affinity topology = %s, want kubernetes.io/hostname", term.TopologyKey)
	}
}

func TestChartToggles(t *testing.T) {
	t.Parallel()
	for _, tc := range toggles {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t, rendered{objs: mustRender(t, tc.values)})
		})
	}
}

func TestHelmLint(t *testing.T) {
	t.Parallel()
	for _, tc := range toggles {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"lint", "charts/corsgate", "--strict", "--namespace", releaseNamespace}, valuesFile(t, tc.values)...)
			if out, err := run(t, tool(t, "helm"), args...); err != nil {
				t.Errorf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

// TestChartRefuses covers values.schema.json (unknown keys, wrong types,
// bad formats) and the templates' cross-field checks: each refusal must name
// the offending value.
func TestChartRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		values  map[string]any
		wantErr []string
	}{
		{
			desc:    "unknown top-level key (a typo of replicaCount)",
			values:  map[string]any{"replicas": 3},
			wantErr: []string{"additional properties 'replicas' not allowed"},
		},
		{
			desc:    "NetworkPolicy namespace that is not a namespace name",
			values:  map[string]any{"networkPolicy": map[string]any{"gatewayNamespaces": []any{"Envoy Gateway"}}},
			wantErr: []string{"/networkPolicy/gatewayNamespaces/0"},
		},
		{
			// A misspelt matchLabels would leave an empty selector, which
			// admits every namespace: it must be refused, not ignored.
			desc:    "NetworkPolicy namespace selector with a misspelt key",
			values:  map[string]any{"networkPolicy": map[string]any{"gatewayNamespaceSelector": map[string]any{"matchlabels": map[string]any{"a": "b"}}}},
			wantErr: []string{"/networkPolicy/gatewayNamespaceSelector", "matchlabels"},
		},
		{
			desc:    "NetworkPolicy without a gateway namespace",
			values:  map[string]any{"networkPolicy": map[string]any{"gatewayNamespaces": []any{}}},
			wantErr: []string{"/networkPolicy/gatewayNamespaces"},
		},
		{
			desc:    "stream limit as a string",
			values:  map[string]any{"grpc": map[string]any{"limits": map[string]any{"maxStreams": "many"}}},
			wantErr: []string{"/grpc/limits/maxStreams"},
		},
		{
			desc:    "idle timeout that is not a Go duration",
			values:  map[string]any{"grpc": map[string]any{"limits": map[string]any{"streamIdleTimeout": "1 hour"}}},
			wantErr: []string{"/grpc/limits/streamIdleTimeout"},
		},
		{
			desc:    "unknown nested key",
			values:  map[string]any{"grpc": map[string]any{"tls": map[string]any{"secret": "x"}}},
			wantErr: []string{"/grpc/tls", "additional properties 'secret' not allowed"},
		},
		{
			desc:    "unknown key in a security context",
			values:  map[string]any{"securityContext": map[string]any{"readOnlyRootFileSystem": true}},
			wantErr: []string{"/securityContext", "readOnlyRootFileSystem"},
		},
		{
			desc:    "string for an integer",
			values:  map[string]any{"replicaCount": "two"},
			wantErr: []string{"/replicaCount", "want integer"},
		},
		{
			desc:    "string for a boolean",
			values:  map[string]any{"metrics": map[string]any{"enabled": "yes"}},
			wantErr: []string{"/metrics/enabled", "want boolean"},
		},
		{
			desc:    "port out of range",
			values:  map[string]any{"grpc": map[string]any{"port": 70000}},
			wantErr: []string{"/grpc/port", "maximum"},
		},
		{
			desc:    "zero replicas",
			values:  map[string]any{"replicaCount": 0},
			wantErr: []string{"/replicaCount"},
		},
		{
			desc:    "unknown log encoder",
			values:  map[string]any{"logging": map[string]any{"encoder": "text"}},
			wantErr: []string{"/logging/encoder"},
		},
		{
			desc:    "scrape interval that Prometheus cannot parse",
			values:  map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"interval": "30 seconds"}}},
			wantErr: []string{"/metrics/serviceMonitor/interval"},
		},
		{
			desc:    "TLS without a Secret",
			values:  map[string]any{"grpc": map[string]any{"tls": map[string]any{"enabled": true}}},
			wantErr: []string{"grpc.tls.secretName is empty"},
		},
		{
			desc:    "grace period not longer than the preStop sleep",
			values:  map[string]any{"termination": map[string]any{"preStopSleepSeconds": 60, "gracePeriodSeconds": 60}},
			wantErr: []string{"termination.gracePeriodSeconds (60) must be larger than termination.preStopSleepSeconds (60)"},
		},
		{
			desc:    "PDB that would block every drain",
			values:  map[string]any{"replicaCount": 1, "podDisruptionBudget": map[string]any{"minAvailable": 1, "maxUnavailable": nil}},
			wantErr: []string{"podDisruptionBudget.minAvailable (1) is not below replicaCount (1)"},
		},
		{
			desc:    "PDB with both bounds",
			values:  map[string]any{"podDisruptionBudget": map[string]any{"minAvailable": 1}},
			wantErr: []string{"set either minAvailable or maxUnavailable, not both"},
		},
		{
			desc:    "HPA bounds reversed",
			values:  map[string]any{"autoscaling": map[string]any{"enabled": true, "minReplicas": 5, "maxReplicas": 2}},
			wantErr: []string{"autoscaling.minReplicas (5) is larger than autoscaling.maxReplicas (2)"},
		},
		{
			desc:    "ServiceMonitor without metrics",
			values:  map[string]any{"metrics": map[string]any{"enabled": false, "serviceMonitor": map[string]any{"enabled": true}}},
			wantErr: []string{"metrics.serviceMonitor.enabled needs metrics.enabled: true"},
		},
		{
			desc:    "existing ServiceAccount without a name",
			values:  map[string]any{"serviceAccount": map[string]any{"create": false}},
			wantErr: []string{"serviceAccount.name is required"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := helmTemplate(t, tc.values)
			if err == nil {
				t.Fatalf("helm template accepted %v", tc.values)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not mention %q:\n%v", want, err)
				}
			}
		})
	}
}

var (
	flagsOnce  sync.Once
	flagsKnown map[string]bool
	flagsErr   error
)

// binaryFlags builds cmd/corsgate and lists the flags its -help prints, so
// the chart can only pass flags the binary really has.
func binaryFlags(t *testing.T) map[string]bool {
	t.Helper()
	flagsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "corsgate-flags-")
		if err != nil {
			flagsErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "corsgate")
		if _, err := run(t, "go", "build", "-o", bin, "./cmd/corsgate"); err != nil {
			flagsErr = fmt.Errorf("building cmd/corsgate: %w", err)
			return
		}
		// -help prints the flags to stderr and exits 0.
		cmd := exec.Command(bin, "-help")
		out, err := cmd.CombinedOutput()
		if err != nil {
			flagsErr = fmt.Errorf("corsgate -help: %w\n%s", err, out)
			return
		}
		flagsKnown = map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
			flagsKnown[m[1]] = true
		}
	})
	if flagsErr != nil {
		t.Fatal(flagsErr)
	}
	return flagsKnown
}

// TestChartArgsAreBinaryFlags: every flag any toggle passes exists in the
// binary; an unknown flag would crash-loop every pod.
func TestChartArgsAreBinaryFlags(t *testing.T) {
	t.Parallel()
	known := binaryFlags(t)
	if !known["grpc-bind-address"] {
		t.Fatalf("corsgate -help lists %v; expected at least --grpc-bind-address", known)
	}
	for _, tc := range toggles {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, arg := range (rendered{objs: mustRender(t, tc.values)}).container(t).Args {
				name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
				if !strings.HasPrefix(arg, "-") || !known[name] {
					t.Errorf("argument %q is not a corsgate flag", arg)
				}
			}
		})
	}
}
