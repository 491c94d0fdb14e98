package deploy_test

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestChartHostOwnership: with hostOwnership.mode Enforce (the default) the
// binary gets --host-ownership=Enforce, the CorsPolicy editor role is
// aggregated into the built-in "edit" role (teams self-serve, corsgate
// enforces grants) and the admission warnings ship; with Open, none of
// that. No rendering ever gives anyone write access to CorsHostGrants.
func TestChartHostOwnership(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc      string
		values    map[string]any
		arg       string
		aggregate bool
		vap       bool
	}{
		{desc: "default", arg: "--host-ownership=Enforce", aggregate: true, vap: true},
		{desc: "Enforce without admission warnings", values: map[string]any{"hostOwnership": map[string]any{"mode": "Enforce", "admissionWarnings": false}},
			arg: "--host-ownership=Enforce", aggregate: true},
		{desc: "Open", values: map[string]any{"hostOwnership": map[string]any{"mode": "Open", "admissionWarnings": true}}, arg: "--host-ownership=Open"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := rendered{objs: mustRender(t, tc.values)}
			if args := r.container(t).Args; !slices.Contains(args, tc.arg) {
				t.Errorf("container args %q lack %s", args, tc.arg)
			}
			editor := mustFind(t, r.objs, "ClusterRole", "corsgate-corspolicy-editor")
			if got := editor.GetLabels()["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"; got != tc.aggregate {
				t.Errorf("editor role aggregated into edit: %v, want %v", got, tc.aggregate)
			}
			for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
				if got := find(r.objs, kind, "corsgate-host-ownership") != nil; got != tc.vap {
					t.Errorf("%s rendered: %v, want %v", kind, got, tc.vap)
				}
			}
			for _, obj := range r.objs {
				if obj.GetKind() != "ClusterRole" && obj.GetKind() != "Role" {
					continue
				}
				for _, rule := range rules(obj) {
					if slices.Contains(rule.resources, "corshostgrants") && slices.ContainsFunc(rule.verbs, func(v string) bool {
						return v != "get" && v != "list" && v != "watch"
					}) {
						t.Errorf("%s may %v corshostgrants: grants are for cluster administrators only", key(obj), rule.verbs)
					}
				}
			}
		})
	}
}

type rule struct{ resources, verbs []string }

func rules(obj *unstructured.Unstructured) []rule {
	raw, _, _ := unstructured.NestedSlice(obj.Object, "rules")
	var out []rule
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		res, _, _ := unstructured.NestedStringSlice(m, "resources")
		verbs, _, _ := unstructured.NestedStringSlice(m, "verbs")
		out = append(out, rule{res, verbs})
	}
	return out
}
