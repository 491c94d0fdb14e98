package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A CorsHostGrant is how a platform team delegates CORS to application teams:
// in Kubernetes mode with host ownership on (--host-ownership=Enforce, the
// default), a CorsPolicy is served only if every (host, path prefix) it claims
// is covered by a grant to its namespace. The model is the Gateway API
// listener's hostname plus allowedRoutes.namespaces, and Contour's HTTPProxy
// includes for handing a path prefix of a host to another namespace; unlike
// a ReferenceGrant it is written by the platform team, not by the owner of a
// namespace, so it is cluster-scoped and nothing aggregates write access to it
// into the built-in roles.

// AllHostsGrantPrefix starts the name of every grant with allHosts: true. The
// every-host grant is for the platform team's own namespaces; the prefix makes
// that visible in `kubectl get corshostgrants` and in every audit log line.
const AllHostsGrantPrefix = "platform-"

// Bounds on CorsHostGrantStatus: the apiserver refuses a status beyond them.
const (
	// MaxAdmittedListed is how many admitted policies status.admitted lists;
	// status.admittedCount counts all of them.
	MaxAdmittedListed = 100
)

// CorsHostGrantSpec says which namespaces may write CorsPolicies for which
// hosts and, optionally, only under which path prefixes.
//
// +kubebuilder:validation:XValidation:rule="(has(self.hosts) && size(self.hosts) > 0) != (has(self.allHosts) && self.allHosts)",fieldPath=".hosts",message=`set hosts (such as ["payments.example.com", "*.payments.example.com"]), or allHosts: true for the platform team's own grant, but not both`
// +kubebuilder:validation:XValidation:rule="(has(self.namespaces) && size(self.namespaces) > 0) || has(self.namespaceSelector)",fieldPath=".namespaces",message=`set namespaces (such as ["payments"]) or namespaceSelector (such as {matchLabels: {team: payments}}): a grant to no namespace admits nothing`
// +kubebuilder:validation:XValidation:rule="!has(self.namespaceSelector) || (has(self.namespaceSelector.matchLabels) && size(self.namespaceSelector.matchLabels) > 0) || (has(self.namespaceSelector.matchExpressions) && size(self.namespaceSelector.matchExpressions) > 0)",fieldPath=".namespaceSelector",message=`an empty namespaceSelector selects every namespace: write matchLabels (such as {team: payments}) or matchExpressions, or list namespaces by name`
// +kubebuilder:validation:XValidation:rule="!(has(self.allHosts) && self.allHosts && has(self.namespaceSelector))",fieldPath=".namespaceSelector",message=`allHosts: true is granted to namespaces by name only, so that relabelling a namespace can never hand it every host: list the platform team's namespaces in namespaces and remove namespaceSelector`
type CorsHostGrantSpec struct {
	// Namespaces lists, by name, the namespaces this grant admits, such as
	// ["payments"]. A namespace that does not exist yet is admitted once it
	// is created, so delete grants for namespaces you delete.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelector admits the namespaces whose labels match, such as
	// {matchLabels: {"corsgate.io/team": "payments"}}. Changing a namespace's
	// labels grants or withdraws at once, so select on labels that only the
	// platform team may set (the built-in admin and edit roles cannot change
	// a namespace). It adds to namespaces; it cannot be empty.
	//
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// Hosts lists the hosts the admitted namespaces may write CORS for, in the
	// CorsPolicy host syntax:
	//
	// * "payments.example.com" covers exactly that host.
	// * "*.payments.example.com" covers any subdomain of payments.example.com,
	//   one or more labels deep, and CorsPolicy hosts written with a wildcard
	//   under it ("*.eu.payments.example.com"), but never
	//   "payments.example.com" itself: list both to grant both.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?)*$`
	// +kubebuilder:validation:items:XValidation:rule="!self.startsWith('*.') || self.substring(2).contains('.')",message=`a wildcard host must keep at least two labels, or it would grant every host under a top-level domain: write "*.example.com"`
	Hosts []string `json:"hosts,omitempty"`

	// AllHosts grants every host, and CorsPolicies without hosts (which
	// select every host). It is for the platform team's own namespaces: the
	// grant's name must start with "platform-" (such as
	// "platform-all-hosts"), it cannot be combined with hosts, and it admits
	// namespaces by name only.
	//
	// +optional
	AllHosts bool `json:"allHosts,omitempty"`

	// PathPrefixes, when set, limits the grant to these path prefixes of its
	// hosts, segment by segment as CorsPolicy pathPrefixes match: "/blog"
	// covers a policy for "/blog" or "/blog/admin", not "/blogs" nor "/".
	// Use it to hand one part of a host to another team. Empty or unset
	// covers every path.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:items:Pattern=`^/`
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('[?#[:cntrl:] ]')",message=`a path prefix has no query, fragment, space or control character: write "/blog", not "/blog?v=1", and percent-encode a space as %20`
	PathPrefixes []string `json:"pathPrefixes,omitempty"`
}

// CorsHostGrantStatus is what corsgate observed of a CorsHostGrant.
type CorsHostGrantStatus struct {
	// ObservedGeneration is the metadata.generation the status describes.
	//
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// AdmittedCount is how many CorsPolicies this grant currently admits:
	// served policies with at least one (host, path prefix) covered by it.
	//
	// +optional
	AdmittedCount int32 `json:"admittedCount"`

	// Admitted lists those policies as "namespace/name", sorted, at most 100.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=317
	Admitted []string `json:"admitted,omitempty"`
}

// CorsHostGrant lets the namespaces it selects write CorsPolicies for its
// hosts (and, optionally, only under its path prefixes). Written by the
// platform team; cluster-scoped.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=corsgrant,categories=corsgate
// +kubebuilder:validation:XValidation:rule="!(has(self.spec.allHosts) && self.spec.allHosts) || self.metadata.name.startsWith('platform-')",message=`a grant of every host is for the platform team's own namespaces and is named as such: name it "platform-" followed by what it is for, such as "platform-all-hosts"`
// +kubebuilder:printcolumn:name="Namespaces",type=string,JSONPath=`.spec.namespaces`
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.spec.namespaceSelector`
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`
// +kubebuilder:printcolumn:name="All Hosts",type=boolean,JSONPath=`.spec.allHosts`
// +kubebuilder:printcolumn:name="Prefixes",type=string,JSONPath=`.spec.pathPrefixes`
// +kubebuilder:printcolumn:name="Admitted",type=integer,JSONPath=`.status.admittedCount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CorsHostGrant struct {
	metav1.TypeMeta `json:",inline"`

	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says which namespaces may claim which hosts and path prefixes.
	//
	// +required
	Spec CorsHostGrantSpec `json:"spec"`

	// Status lists the policies this grant admits.
	//
	// +optional
	Status CorsHostGrantStatus `json:"status,omitempty"`
}

// CorsHostGrantList is a list of CorsHostGrant objects.
//
// +kubebuilder:object:root=true
type CorsHostGrantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CorsHostGrant `json:"items"`
}

// ReasonHostNotGranted is the reason of a CorsPolicy's Accepted=False and
// Ready=False conditions when, with host ownership on, a (host, path prefix)
// it claims is not covered by a CorsHostGrant to its namespace; the message
// names the host, the namespace and the grant that would admit it.
const ReasonHostNotGranted = "HostNotGranted"

// ReasonPartiallyGranted is the reason of a targetRefs CorsPolicy's
// Accepted=True and Ready=True conditions when CorsHostGrants cover only
// part of what its targets route: the edge serves that part, and the
// message names the hosts and path prefixes left out and the grant that
// would cover them.
const ReasonPartiallyGranted = "PartiallyGranted"
