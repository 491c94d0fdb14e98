// Package v1alpha1 is the policy.corsgate.io/v1alpha1 API: the CorsPolicy
// resource that platform teams write to set CORS at the mesh edge.
//
// The schema and CEL rules generated from these markers refuse the obvious
// mistakes at `kubectl apply`; the engine (internal/cors) validates every spec
// again, from every source, and is authoritative.
//
// The package depends only on k8s.io/apimachinery, so that anyone can import
// the types without pulling in controller-runtime.
//
// +kubebuilder:object:generate=true
// +groupName=policy.corsgate.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the objects in this package.
	GroupVersion = schema.GroupVersion{Group: "policy.corsgate.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &CorsPolicy{}, &CorsPolicyList{})
	s.AddKnownTypes(GroupVersion, &CorsHostGrant{}, &CorsHostGrantList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
