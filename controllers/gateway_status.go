package controllers

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
)

// ancestorStatus is status.ancestors (GEP-713) for a build result: one entry
// per ancestor Gateway with an Accepted condition, corsgate's own entries
// (controllerName corsgate.io/controller) replaced, other controllers'
// entries kept as they are. Condition timestamps move only when a
// condition's status changes, as for the other conditions.
func ancestorStatus(obj *v1alpha1.CorsPolicy, res compile.Result) []gwapiv1.PolicyAncestorStatus {
	var out []gwapiv1.PolicyAncestorStatus
	mine := map[string][]metav1.Condition{}
	for _, a := range obj.Status.Ancestors {
		if a.ControllerName == v1alpha1.ControllerName {
			mine[refKey(a.AncestorRef)] = a.Conditions
			continue
		}
		out = append(out, a)
	}
	for _, a := range res.Ancestors {
		if len(out) == v1alpha1.MaxAncestors {
			// GEP-713: a full list takes no more entries; the Ready
			// condition still tells the whole story.
			break
		}
		conds := append([]metav1.Condition(nil), mine[refKey(a.Ref)]...)
		status := metav1.ConditionFalse
		if a.Reason == string(gwapiv1.PolicyReasonAccepted) {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&conds, metav1.Condition{
			Type: string(gwapiv1.PolicyConditionAccepted), Status: status, Reason: a.Reason,
			Message: truncate(a.Message, 32768), ObservedGeneration: obj.Generation,
		})
		out = append(out, gwapiv1.PolicyAncestorStatus{AncestorRef: a.Ref, ControllerName: v1alpha1.ControllerName, Conditions: conds})
	}
	return out
}

func refKey(r gwapiv1.ParentReference) string {
	var s strings.Builder
	for _, p := range []*string{(*string)(r.Group), (*string)(r.Kind), (*string)(r.Namespace), (*string)(r.SectionName)} {
		if p != nil {
			s.WriteString(*p)
		}
		s.WriteString("/")
	}
	s.WriteString(string(r.Name))
	return s.String()
}

// sameAncestors reports whether two results say the same of every ancestor.
func sameAncestors(a, b compile.Result) bool {
	if len(a.Ancestors) != len(b.Ancestors) {
		return false
	}
	for i := range a.Ancestors {
		x, y := a.Ancestors[i], b.Ancestors[i]
		if refKey(x.Ref) != refKey(y.Ref) || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}
