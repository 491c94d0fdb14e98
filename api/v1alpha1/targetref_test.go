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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
)

// TestTargetsColumn: `kubectl get cors` shows what a targetRefs policy
// attaches to.
func TestTargetsColumn(t *testing.T) {
	t.Parallel()
	obj, err := create(t, "targets-column", v1alpha1.CorsPolicySpec{AllowOrigins: []string{app},
		TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{targetRef("HTTPRoute", "shop", "api"), targetRef("Gateway", "edge", "")}})
	if err != nil {
		t.Fatalf("create: %v", err)
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
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil || len(table.Rows) != 1 {
		t.Fatalf("decode table (%v): %s", err, body)
	}
	for i, c := range table.ColumnDefinitions {
		if c.Name == "Targets" {
			// Every target, as the Hosts column shows every host: a JSONPath
			// such as .spec.targetRefs[*].name would show the first only.
			want := `[{"group":"gateway.networking.k8s.io","kind":"HTTPRoute","name":"shop","sectionName":"api"},{"group":"gateway.networking.k8s.io","kind":"Gateway","name":"edge"}]`
			if got := fmt.Sprint(table.Rows[0].Cells[i]); got != want {
				t.Errorf("Targets cell:\n got %s\nwant %s", got, want)
			}
			return
		}
	}
	t.Errorf("no Targets column in %+v", table.ColumnDefinitions)
}

// TestExplainTargetRefs: `kubectl explain corspolicy.spec.targetRefs`
// documents the field, and its Gateway API subfields come from the Gateway
// API types.
func TestExplainTargetRefs(t *testing.T) {
	t.Parallel()
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	waitForOpenAPI(t)
	out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "explain", "corspolicy.spec.targetRefs").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl explain: %v\n%s", err, out)
	}
	for _, want := range []string{"FIELD: targetRefs <[]Object>", "GEP-713", "sectionName names one rule", "Set either targetRefs or hosts/pathPrefixes",
		"group\t<string> -required-", "kind\t<string> -required-", "name\t<string> -required-", "sectionName\t<string>"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl explain corspolicy.spec.targetRefs lacks %q:\n%s", want, out)
		}
	}
}

// TestAncestorStatus: a status writer can record status.ancestors as
// GEP-713 describes it, with every reason corsgate uses, and no more than
// MaxAncestors entries.
func TestAncestorStatus(t *testing.T) {
	t.Parallel()
	obj, err := create(t, "ancestors", v1alpha1.CorsPolicySpec{AllowOrigins: []string{app},
		TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{targetRef("HTTPRoute", "shop", "")}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	entry := func(i int, reason string) gwapiv1.PolicyAncestorStatus {
		status := metav1.ConditionFalse
		if reason == "Accepted" {
			status = metav1.ConditionTrue
		}
		return gwapiv1.PolicyAncestorStatus{
			AncestorRef:    gwapiv1.ParentReference{Group: new(gwapiv1.Group("gateway.networking.k8s.io")), Kind: new(gwapiv1.Kind("Gateway")), Namespace: new(gwapiv1.Namespace("infra")), Name: gwapiv1.ObjectName(fmt.Sprintf("edge-%d", i))},
			ControllerName: v1alpha1.ControllerName,
			Conditions:     []metav1.Condition{{Type: "Accepted", Status: status, Reason: reason, Message: "m", LastTransitionTime: metav1.Now(), ObservedGeneration: obj.Generation}},
		}
	}
	for i, reason := range []string{"Accepted", "Invalid", "TargetNotFound", "Conflicted"} {
		obj.Status.Ancestors = append(obj.Status.Ancestors, entry(i, reason))
	}
	if err := k8s.Status().Update(context.Background(), obj); err != nil {
		t.Fatalf("status update with one ancestor per reason: %v", err)
	}
	for len(obj.Status.Ancestors) < v1alpha1.MaxAncestors+1 {
		obj.Status.Ancestors = append(obj.Status.Ancestors, entry(len(obj.Status.Ancestors), "Accepted"))
	}
	if err := k8s.Status().Update(context.Background(), obj); err == nil || !strings.Contains(err.Error(), "status.ancestors: Too many: 17: must have at most 16 items") {
		t.Errorf("status update with MaxAncestors+1 ancestors: got %v, want Too many", err)
	}
}
