package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
)

// +kubebuilder:rbac:groups=policy.corsgate.io,resources=corspolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// StatusWriter writes each CorsPolicy's status from the latest table build:
// it computes the whole status, then patches once, and only when something
// changed. It runs on the elected leader only (the default for controllers).
// A user's error never becomes a retry: it is the status. Only failed API
// calls are returned, to be retried.
type StatusWriter struct {
	Client  client.Client
	Results *Results
	// Recorder, if set, gets a Warning event when a spec turns invalid.
	Recorder events.EventRecorder
}

// notBuiltYet is how long to wait for the table builder to see a new
// generation before looking again; it normally signals first.
const notBuiltYet = 2 * time.Second

// Reconcile implements reconcile.Reconciler.
func (w *StatusWriter) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var obj v1alpha1.CorsPolicy
	if err := w.Client.Get(ctx, req.NamespacedName, &obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	res, ok := w.Results.Get(keyOf(req.NamespacedName))
	if !ok || res.Generation != obj.Generation {
		// The table builder has not seen this generation yet; it will signal.
		return ctrl.Result{RequeueAfter: notBuiltYet}, nil
	}
	next := desiredStatus(&obj, res)
	if equality.Semantic.DeepEqual(obj.Status, next) {
		return ctrl.Result{}, nil
	}
	wasInvalid := meta.IsStatusConditionFalse(obj.Status.Conditions, v1alpha1.ConditionAccepted)
	patch := client.MergeFrom(obj.DeepCopy())
	obj.Status = next
	if err := w.Client.Status().Patch(ctx, &obj, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("patching status: %w", err)
	}
	if res.Err != nil && !wasInvalid && w.Recorder != nil {
		w.Recorder.Eventf(&obj, nil, "Warning", v1alpha1.ReasonInvalid, "Validate", "%s", truncate(compile.Message(res.Err), 1000))
	}
	logf.FromContext(ctx).V(1).Info("status written", "accepted", res.Err == nil, "serving", res.Serving)
	return ctrl.Result{}, nil
}

// desiredStatus computes the whole status of obj from its build result.
// Condition timestamps move only when a condition's status changes.
func desiredStatus(obj *v1alpha1.CorsPolicy, res compile.Result) v1alpha1.CorsPolicyStatus {
	st := v1alpha1.CorsPolicyStatus{ObservedGeneration: obj.Generation}
	st.Conditions = append([]metav1.Condition(nil), obj.Status.Conditions...)
	if obj.Status.ObservedGeneration == obj.Generation {
		// The observed-origins summary (written by the leader in cmd/corsgate)
		// describes this spec; a new spec starts without one.
		st.DeniedOrigins = obj.Status.DeniedOrigins
	}
	set := func(typ string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: truncate(msg, 32768), ObservedGeneration: obj.Generation,
		})
	}

	if res.Err == nil {
		set(v1alpha1.ConditionAccepted, true, v1alpha1.ReasonValid, "The policy is valid.")
	} else {
		set(v1alpha1.ConditionAccepted, false, v1alpha1.ReasonInvalid, compile.Message(res.Err))
	}
	if res.Err == nil && res.NotGranted != nil {
		// Valid, but claims a host its namespace was not granted
		// (--host-ownership=Enforce): refused as a whole.
		set(v1alpha1.ConditionAccepted, false, v1alpha1.ReasonHostNotGranted, res.NotGranted.Error())
	}
	if res.Err == nil && res.NotGranted == nil && res.PartlyGranted != nil {
		// A targetRefs policy whose targets route more than its namespace
		// was granted: served for the granted part only.
		set(v1alpha1.ConditionAccepted, true, v1alpha1.ReasonPartiallyGranted, res.PartlyGranted.Error())
	}

	conflicts := ""
	if len(res.Conflicts) > 0 {
		conflicts = " Claims lost to other policies: " + strings.Join(res.Conflicts, "; ") + "."
	}
	switch {
	case res.NotGranted != nil:
		set(v1alpha1.ConditionReady, false, v1alpha1.ReasonHostNotGranted, res.NotGranted.Error())
	case res.Serving == compile.NotServed && res.Err == nil && len(res.Ancestors) > 0 && len(res.Conflicts) == 0:
		set(v1alpha1.ConditionReady, false, v1alpha1.ReasonNotServing, "No targetRef of this policy reaches a Gateway that accepted it, so the edge serves nothing for it: see status.ancestors.")
	case res.Serving == compile.NotServed && len(res.Conflicts) > 0:
		set(v1alpha1.ConditionReady, false, v1alpha1.ReasonConflicted, "Every host and path prefix of this policy is served by another policy."+conflicts)
	case res.Serving == compile.NotServed:
		set(v1alpha1.ConditionReady, false, v1alpha1.ReasonNotServing, "The policy has never been valid, so the edge serves nothing for it: fix the errors in the Accepted condition.")
	case res.PartlyGranted != nil:
		set(v1alpha1.ConditionReady, true, v1alpha1.ReasonPartiallyGranted, "The edge serves this policy only where CorsHostGrants cover what its targets route: see the Accepted condition."+conflicts)
	case len(res.Conflicts) > 0:
		set(v1alpha1.ConditionReady, true, v1alpha1.ReasonConflicted, "The edge serves this policy, except where another policy wins."+conflicts)
	case res.Serving == compile.ServedLastValid:
		set(v1alpha1.ConditionReady, true, v1alpha1.ReasonServingLastValid, "The current spec is invalid (see Accepted); the edge keeps serving the last valid spec until it is fixed.")
	default:
		set(v1alpha1.ConditionReady, true, v1alpha1.ReasonServing, "The edge serves this policy.")
	}

	st.Ancestors = ancestorStatus(obj, res)
	for i, w := range res.Warnings {
		if i == v1alpha1.MaxWarnings {
			break
		}
		st.Warnings = append(st.Warnings, truncate(w.String(), v1alpha1.MaxWarningLength))
	}
	return st
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// SetupWithManager registers the writer: it reconciles on object changes and
// on every build result that changed (changed comes from the TableBuilder).
func (w *StatusWriter) SetupWithManager(mgr ctrl.Manager, changed <-chan event.TypedGenericEvent[*v1alpha1.CorsPolicy]) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("corspolicy-status").
		For(&v1alpha1.CorsPolicy{}).
		WatchesRawSource(source.Channel(changed, &handler.TypedEnqueueRequestForObject[*v1alpha1.CorsPolicy]{})).
		Complete(w)
}
