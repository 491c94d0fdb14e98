package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// bookkeepingLabels say who rendered an object and from which chart version;
// they differ between Helm and kustomize by design. Every other label (the
// selector labels, component, RBAC aggregation) must match.
var bookkeepingLabels = []string{"app.kubernetes.io/version", "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "helm.sh/chart"}

// comparable strips what legitimately differs between the chart and the
// kustomize build (bookkeeping labels, annotations, how RBAC rules are
// grouped) and keeps everything that reaches the cluster's behaviour.
func comparable(t *testing.T, obj *unstructured.Unstructured) map[string]any {
	t.Helper()
	out := obj.DeepCopy()
	if kind := obj.GetKind(); kind == "ClusterRole" || kind == "Role" {
		var flat []any
		for _, p := range permissions(t, obj) {
			flat = append(flat, p)
		}
		out.Object["rules"] = flat
	}
	keep := func(labels map[string]string) map[string]string {
		kept := map[string]string{}
		for k, v := range labels {
			if !slices.Contains(bookkeepingLabels, k) {
				kept[k] = v
			}
		}
		return kept
	}
	meta := map[string]any{"name": obj.GetName()}
	if ns := obj.GetNamespace(); ns != "" {
		meta["namespace"] = ns
	}
	if labels := keep(obj.GetLabels()); len(labels) > 0 {
		meta["labels"] = toAnyMap(labels)
	}
	out.Object["metadata"] = meta
	if labels, found, _ := unstructured.NestedStringMap(out.Object, "spec", "template", "metadata", "labels"); found {
		_ = unstructured.SetNestedField(out.Object, map[string]any{"labels": toAnyMap(keep(labels))}, "spec", "template", "metadata")
	}
	return out.Object
}

func toAnyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestKustomizeMatchesChart: config/default and the chart with default values
// (release "corsgate" in corsgate-system) build the same objects, field for
// field; kustomize adds only the Namespace and the CRDs, which a Helm install
// gets otherwise (TestKustomizeExtrasMatchHelmInstall).
func TestKustomizeMatchesChart(t *testing.T) {
	t.Parallel()
	chart := mustRender(t, nil)
	var built []*unstructured.Unstructured
	for _, obj := range kustomizeBuild(t, "default") {
		switch obj.GetKind() {
		case "Namespace", "CustomResourceDefinition":
			continue
		}
		built = append(built, obj)
	}
	if got, want := keys(built), keys(chart); !slices.Equal(got, want) {
		t.Fatalf("kustomize builds %v\nthe chart renders %v", got, want)
	}
	for _, want := range chart {
		got := mustFind(t, built, want.GetKind(), want.GetName())
		if !reflect.DeepEqual(comparable(t, got), comparable(t, want)) {
			hint := ""
			if want.GetKind() == "ClusterRole" && want.GetName() == "corsgate" {
				hint = " (config/rbac/role.yaml is generated from the controller's RBAC markers; TestChartRBACMatchesGeneratedRole says what to change)"
			}
			t.Errorf("%s differs between config/ and the chart%s:\n%s", key(want), hint, yamlDiff(t, comparable(t, got), comparable(t, want)))
		}
	}
}

// TestKustomizeExtrasMatchHelmInstall: what config/default builds beyond the
// chart is what a Helm install gets by other means. The CRDs are the chart's
// crds/ files, spec for spec (kustomize adds its labels to them); the
// Namespace is the release namespace, enforcing the Pod Security level that
// docs/install.md has Helm users label it with.
func TestKustomizeExtrasMatchHelmInstall(t *testing.T) {
	t.Parallel()
	var crds, namespaces []*unstructured.Unstructured
	for _, obj := range kustomizeBuild(t, "default") {
		switch obj.GetKind() {
		case "CustomResourceDefinition":
			crds = append(crds, obj)
		case "Namespace":
			namespaces = append(namespaces, obj)
		}
	}

	paths, err := filepath.Glob(repoPath(t, "charts", "corsgate", "crds", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no CRDs in charts/corsgate/crds (%v)", err)
	}
	var inChart []*unstructured.Unstructured
	for _, path := range paths {
		inChart = append(inChart, readObjects(t, "charts", "corsgate", "crds", filepath.Base(path))...)
	}
	if got, want := keys(crds), keys(inChart); !slices.Equal(got, want) {
		t.Fatalf("kustomize builds the CRDs %v, the chart's crds/ holds %v", got, want)
	}
	for _, want := range inChart {
		got := mustFind(t, crds, want.GetKind(), want.GetName())
		if !reflect.DeepEqual(got.Object["spec"], want.Object["spec"]) {
			t.Errorf("%s: the spec kustomize builds differs from charts/corsgate/crds (run make manifests)", key(want))
		}
	}

	guide, err := os.ReadFile(repoPath(t, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`kubectl label namespace (\S+) pod-security\.kubernetes\.io/enforce=(\S+)`).FindSubmatch(guide)
	if m == nil || string(m[1]) != releaseNamespace {
		t.Fatalf("docs/install.md does not label namespace %s with a Pod Security level (found %q)", releaseNamespace, m)
	}
	if len(namespaces) != 1 || namespaces[0].GetName() != releaseNamespace {
		t.Fatalf("config/default builds the Namespaces %v, want %s only", keys(namespaces), releaseNamespace)
	}
	if got, want := namespaces[0].GetLabels()["pod-security.kubernetes.io/enforce"], string(m[2]); got != want {
		t.Errorf("config/default's Namespace enforces Pod Security %q, the install guide's Helm namespace %q", got, want)
	}
}

// TestPrometheusMonitorMatchesChart: config/prometheus builds the chart's
// ServiceMonitor.
func TestPrometheusMonitorMatchesChart(t *testing.T) {
	t.Parallel()
	want := mustFind(t, mustRender(t, map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}}), "ServiceMonitor", "corsgate")
	built := kustomizeBuild(t, "prometheus")
	if len(built) != 1 {
		t.Fatalf("config/prometheus builds %v, want one ServiceMonitor", keys(built))
	}
	if !reflect.DeepEqual(comparable(t, built[0]), comparable(t, want)) {
		t.Errorf("ServiceMonitor differs:\n%s", yamlDiff(t, comparable(t, built[0]), comparable(t, want)))
	}
}

// TestChartRBACMatchesGeneratedRole: the chart's ClusterRole grants exactly
// what controller-gen derives from the controller's RBAC markers
// (config/rbac/role.yaml). A marker added without a chart change, or the
// reverse, fails here.
func TestChartRBACMatchesGeneratedRole(t *testing.T) {
	t.Parallel()
	generated := readObjects(t, "config", "rbac", "role.yaml")
	if len(generated) != 1 || generated[0].GetKind() != "ClusterRole" || generated[0].GetName() != "corsgate" {
		t.Fatalf("config/rbac/role.yaml holds %v, want the ClusterRole corsgate (run make manifests)", keys(generated))
	}
	want := permissions(t, generated[0])
	got := permissions(t, mustFind(t, mustRender(t, nil), "ClusterRole", "corsgate"))
	// Leader election needs Leases in one namespace only; granting them in
	// every namespace would let corsgate disrupt any other controller's
	// election.
	var clusterWideLeases []string
	for _, p := range want {
		if strings.HasPrefix(p, "coordination.k8s.io/leases ") {
			clusterWideLeases = append(clusterWideLeases, p)
		}
	}
	if len(clusterWideLeases) > 0 {
		t.Errorf("config/rbac/role.yaml grants %v in every namespace: remove the +kubebuilder:rbac marker for coordination.k8s.io leases from controllers/ and run make manifests; config/rbac/leader_election_role.yaml (and the chart's leader-election Role) grant them in corsgate's namespace only", clusterWideLeases)
		want = setDiff(want, clusterWideLeases)
	}
	if missing, extra := setDiff(want, got), setDiff(got, want); len(missing)+len(extra) > 0 {
		t.Errorf("the chart's ClusterRole lacks %v and adds %v compared with config/rbac/role.yaml (generated from the +kubebuilder:rbac markers): update charts/corsgate/templates/rbac.yaml", missing, extra)
	}
}

// permissions flattens a role's rules into sorted "group/resource verb"
// strings, so that equal grants compare equal however the rules are grouped.
func permissions(t *testing.T, obj *unstructured.Unstructured) []string {
	t.Helper()
	var role rbacv1.ClusterRole
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &role); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range role.Rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Fatalf("rule %+v: resourceNames and nonResourceURLs are not expected", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out = append(out, fmt.Sprintf("%s/%s %s", g, res, v))
				}
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// setDiff returns the elements of a that are not in b.
func setDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// TestChartCRDsInSync: charts/corsgate/crds holds exactly the CRDs that
// controller-gen wrote to config/crd/bases (`make manifests` copies them).
func TestChartCRDsInSync(t *testing.T) {
	t.Parallel()
	generated, err := filepath.Glob(repoPath(t, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v): run make manifests", err)
	}
	inChart, _ := filepath.Glob(repoPath(t, "charts", "corsgate", "crds", "*.yaml"))
	names := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	if !slices.Equal(names(inChart), names(generated)) {
		t.Fatalf("charts/corsgate/crds has %v, config/crd/bases has %v: run make manifests", names(inChart), names(generated))
	}
	for _, path := range generated {
		want, _ := os.ReadFile(path)
		got, _ := os.ReadFile(repoPath(t, "charts", "corsgate", "crds", filepath.Base(path)))
		if !bytes.Equal(got, want) {
			t.Errorf("charts/corsgate/crds/%s is stale: run make manifests", filepath.Base(path))
		}
	}
}

// TestImageReferencesAgree: the chart, the kustomize build and the Makefile's
// docker-build name the same image, and the default tag is the chart's
// appVersion.
func TestImageReferencesAgree(t *testing.T) {
	t.Parallel()
	const repository = "ghcr.io/corsgate/corsgate"
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	readYAML(t, &chart, "charts", "corsgate", "Chart.yaml")
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
	}
	readYAML(t, &values, "charts", "corsgate", "values.yaml")
	if values.Image.Repository != repository || values.Image.Tag != "" {
		t.Errorf("values.yaml image = %s:%q, want %s with the tag defaulting to appVersion", values.Image.Repository, values.Image.Tag, repository)
	}
	var kust struct {
		Images []struct {
			Name   string `json:"name"`
			NewTag string `json:"newTag"`
		} `json:"images"`
	}
	readYAML(t, &kust, "config", "manager", "kustomization.yaml")
	if len(kust.Images) != 1 || kust.Images[0].Name != repository || kust.Images[0].NewTag != chart.AppVersion {
		t.Errorf("config/manager images = %+v, want %s:%s (the chart's appVersion)", kust.Images, repository, chart.AppVersion)
	}
	makefile, err := os.ReadFile(repoPath(t, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^IMG \?= ([^:\s]+):`).FindSubmatch(makefile); m == nil || string(m[1]) != repository {
		t.Errorf("Makefile IMG repository = %q, want %s", m, repository)
	}
}

func readYAML(t *testing.T, into any, elem ...string) {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", filepath.Join(elem...), err)
	}
}

// yamlDiff prints both sides; the objects are small enough to compare by eye.
func yamlDiff(t *testing.T, got, want map[string]any) string {
	t.Helper()
	g, _ := yaml.Marshal(got)
	w, _ := yaml.Marshal(want)
	return "--- config/ (kustomize)\n" + string(g) + "--- chart\n" + string(w)
}
