package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Bounds on every list and string keep the apiserver's CEL cost estimate for
// the rules below finite and small: an unbounded list of unbounded strings is
// priced as if it filled the whole request, and the CRD is then refused.
// The numbers follow the Gateway API's HTTPCORSFilter where it has one, and
// match the engine's own limits (internal/cors: an origin is at most
// 64 (scheme) + 3 + 253 (host) + 1 + 5 (port) = 326 bytes, a method 64, a
// header name 256, a regex 1024; internal/table: a host 253).

// CorsPolicySpec is the CORS behaviour of the edge for the requests a policy
// selects: those whose host matches Hosts and whose path matches PathPrefixes.
//
// The rules below are the cross-field ones; each message says what to write
// instead. The engine checks the same and more (regexes, public suffixes).
//
// +kubebuilder:validation:XValidation:rule="(has(self.allowOrigins) && size(self.allowOrigins) > 0) || (has(self.allowOriginRegexes) && size(self.allowOriginRegexes) > 0)",fieldPath=".allowOrigins",message=`set allowOrigins (such as ["https://app.example.com"]) or allowOriginRegexes: a policy that allows no origin denies every CORS request`
// +kubebuilder:validation:XValidation:rule="!(has(self.allowCredentials) && self.allowCredentials && has(self.allowOrigins) && '*' in self.allowOrigins)",fieldPath=".allowOrigins",message=`"*" cannot be combined with allowCredentials: true (the Fetch standard forbids a wildcard origin on credentialed requests): list the origins that may send credentials, such as "https://app.example.com", or set allowCredentials to false`
// +kubebuilder:validation:XValidation:rule="!(has(self.allowCredentials) && self.allowCredentials && has(self.allowOrigins) && 'null' in self.allowOrigins)",fieldPath=".allowOrigins",message=`"null" cannot be combined with allowCredentials: true (any sandboxed iframe or local file sends Origin: null, so this would share credentialed responses with anyone): list real origins, such as "https://app.example.com", or set allowCredentials to false`
// +kubebuilder:validation:XValidation:rule="!has(self.targetRefs) || size(self.targetRefs) == 0 || ((!has(self.hosts) || size(self.hosts) == 0) && (!has(self.pathPrefixes) || size(self.pathPrefixes) == 0))",fieldPath=".targetRefs",message=`targetRefs and hosts/pathPrefixes are mutually exclusive: use targetRefs to attach to a Gateway or HTTPRoute (the policy follows its hostnames and paths), or hosts and pathPrefixes to select requests without the Gateway API`
type CorsPolicySpec struct {
	// Hosts selects requests by host: the request's :authority (Host) with the
	// port removed, compared case-insensitively.
	//
	// * "api.example.com" matches exactly that host.
	// * "*.example.com" matches any subdomain, one or more labels deep
	//   ("a.example.com", "a.b.example.com"), but never "example.com" itself.
	//
	// Write host names without a port or a trailing dot, and
	// internationalised names in Punycode. Empty or unset selects every host.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?)*$`
	// +kubebuilder:validation:items:XValidation:rule="!self.startsWith('*.') || self.substring(2).contains('.')",message=`a wildcard host must keep at least two labels, or it would claim every host under a top-level domain: write "*.example.com"`
	Hosts []string `json:"hosts,omitempty"`

	// PathPrefixes selects requests by path, segment by segment: "/api"
	// matches "/api" and "/api/orders", but not "/apiary". The query string is
	// ignored. Each prefix starts with "/".
	//
	// Empty or unset selects every path (as "/" would).
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:items:Pattern=`^/`
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('[?#[:cntrl:] ]')",message=`a path prefix has no query, fragment, space or control character: write "/api", not "/api?v=1", and percent-encode a space as %20`
	PathPrefixes []string `json:"pathPrefixes,omitempty"`

	// TargetRefs attaches the policy to Gateway API objects in its own
	// namespace (GEP-713 direct attachment), instead of selecting requests
	// by hosts and pathPrefixes: the policy then follows what they route.
	//
	// * An HTTPRoute covers its hostnames, as narrowed by the listeners of
	//   the parent Gateways that accepted it, under its rules' PathPrefix
	//   matches. sectionName names one rule (GEP-995).
	// * A Gateway covers every hostname of its listeners under "/".
	//   sectionName names one listener.
	//
	// Only parents that accepted the route (status.parents), and Gateways of
	// the GatewayClasses corsgate serves, count; with host ownership on,
	// only what CorsHostGrants to the policy's namespace cover is served.
	// When several policies cover the same host and path prefix, the
	// namespace whose claim is oldest decides (a route-attached policy
	// claims since its route was created); within it, one on a route rule
	// beats one on the route, which beats one on a listener, then the
	// Gateway, then a hosts policy; then the oldest. Matches the edge cannot
	// express exactly (RegularExpression or Exact paths, header, query or
	// method matches) are not served and are reported in status.ancestors.
	// Set either targetRefs or hosts/pathPrefixes, not both.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(r, r.group == 'gateway.networking.k8s.io' && (r.kind == 'Gateway' || r.kind == 'HTTPRoute'))",message=`a targetRef names a Gateway or an HTTPRoute: write group: gateway.networking.k8s.io with kind: HTTPRoute (or kind: Gateway)`
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, a.group == b.group && a.kind == b.kind && a.name == b.name && has(a.sectionName) == has(b.sectionName) && (!has(a.sectionName) || a.sectionName == b.sectionName)))",message=`each targetRef may be listed once: remove the duplicate`
	TargetRefs []gwapiv1.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs,omitempty"`

	// AllowOrigins lists the origins that may read responses, as browsers
	// serialize them in the Origin header: "scheme://host[:port]", lower case,
	// with no path, no trailing "/" and no default port.
	//
	// * "https://app.example.com" allows exactly that origin.
	// * "http://localhost:3000" allows a local development server.
	// * "https://*.example.com" allows any subdomain of example.com (one or
	//   more labels), never "https://example.com" itself. The wildcard is only
	//   allowed as the leftmost host label.
	// * "*" allows every origin and must be the only entry; it cannot be
	//   combined with allowCredentials.
	// * "null" allows the opaque origin sent by sandboxed iframes and local
	//   files. Anyone can send it, so it is accepted with a warning, and never
	//   with allowCredentials.
	//
	// Origins are compared byte for byte; scheme and port must match exactly.
	// Write internationalised host names in Punycode ("https://xn--bcher-kva.example").
	// At least one of allowOrigins and allowOriginRegexes must be set.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="!('*' in self) || size(self) == 1",message=`"*" allows every origin and must be the only entry of allowOrigins: remove either "*" or the other entries`
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=326
	// +kubebuilder:validation:items:XValidation:rule="self == '*' || self == 'null' || self.matches('^[A-Za-z][A-Za-z0-9+.-]*://.')",message=`an origin is scheme://host[:port], such as "https://app.example.com" or "https://*.example.com"; or "*" for any origin`
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('://.*[/?#@]')",message=`an origin has no path, query, fragment or user info, not even a trailing "/": write "https://app.example.com", not "https://app.example.com/"`
	// +kubebuilder:validation:items:XValidation:rule="self == self.lowerAscii()",message=`origins are lower case, as browsers send them: write "https://app.example.com", not "https://App.Example.com"`
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[!-~]+$')",message=`origins are printable ASCII without spaces: write an internationalised host in Punycode, such as "https://xn--bcher-kva.example" for bücher.example`
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('^https://.*:443$') && !self.matches('^http://.*:80$')",message=`leave out the default port, which browsers never send: write "https://app.example.com", not "https://app.example.com:443"`
	// +kubebuilder:validation:items:XValidation:rule="self == '*' || !self.contains('*') || self.matches('^[^:/]+://[*][.][^*]+$')",message=`a wildcard must be the whole leftmost host label: write "https://*.example.com" for any subdomain of example.com, or "*" alone for any origin`
	AllowOrigins []string `json:"allowOrigins,omitempty"`

	// AllowOriginRegexes lists RE2 regular expressions (Go syntax) that an
	// origin may match instead. Each is matched against the whole origin, as
	// if written "^(?:regex)$", so "https://pr-[0-9]+\.preview\.example\.com"
	// cannot match "https://pr-1.preview.example.com.evil.test". Escape the
	// dots.
	//
	// With allowCredentials, a regex that would also match an arbitrary origin
	// (such as "https://.*") is refused: prefer allowOrigins where a wildcard
	// subdomain is enough.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	AllowOriginRegexes []string `json:"allowOriginRegexes,omitempty"`

	// AllowMethods lists the methods a preflight may ask for, answered in
	// Access-Control-Allow-Methods, such as ["GET", "PUT", "DELETE"].
	// Methods are case-sensitive, as the Fetch standard compares them:
	// browsers upper-case only DELETE, GET, HEAD, OPTIONS, POST and PUT, so
	// fetch(url, {method: "patch"}) asks for "patch", not "PATCH".
	//
	// GET, HEAD and POST are always allowed by browsers and need not be
	// listed. "*" allows every method and must be the only entry. CONNECT,
	// TRACE and TRACK are forbidden methods and are refused.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="!('*' in self) || size(self) == 1",message=`"*" allows every method and must be the only entry of allowMethods: remove either "*" or the other entries`
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:Pattern="^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"
	// +kubebuilder:validation:items:XValidation:rule="!(self.upperAscii() in ['CONNECT', 'TRACE', 'TRACK'])",message=`CONNECT, TRACE and TRACK are forbidden methods that browsers refuse to send (Fetch standard): remove them from allowMethods`
	AllowMethods []string `json:"allowMethods,omitempty"`

	// AllowHeaders lists the request header names a preflight may ask for,
	// answered in Access-Control-Allow-Headers, such as
	// ["content-type", "x-request-id"]. Names are compared case-insensitively.
	//
	// "*" allows every header except Authorization, which must be listed by
	// name (Fetch standard): write ["*"] or ["*", "authorization"]. With
	// allowCredentials the edge answers "*" by echoing the requested names.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="!('*' in self) || self.all(h, h == '*' || h.lowerAscii() == 'authorization')",message=`"*" allows every header except Authorization, the only header to list beside it: write ["*"] or ["*", "authorization"], or list the headers without "*"`
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern="^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"
	AllowHeaders []string `json:"allowHeaders,omitempty"`

	// ExposeHeaders lists the response header names that scripts may read,
	// sent in Access-Control-Expose-Headers, such as ["x-trace-id"].
	// Cache-Control, Content-Language, Content-Length, Content-Type, Expires,
	// Last-Modified and Pragma are always readable.
	//
	// "*" exposes every header and must be the only entry. Browsers read "*"
	// literally on credentialed requests, so with allowCredentials the edge
	// replaces it with the names of the upstream response's own headers.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="!('*' in self) || size(self) == 1",message=`"*" exposes every header and must be the only entry of exposeHeaders: remove either "*" or the other entries`
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern="^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`

	// MaxAge is how long, in seconds, a browser may cache a preflight answer,
	// sent in Access-Control-Max-Age, such as 600. 0 asks browsers not to
	// cache it. Unset sends no header, and browsers then cache for 5 seconds.
	// Browsers cap the value (Chromium at 7200, Firefox at 86400), so a
	// larger value is accepted with a warning.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	MaxAge *int32 `json:"maxAge,omitempty"`

	// AllowCredentials lets scripts read responses to requests made with
	// credentials (cookies, HTTP authentication, client certificates) by
	// sending Access-Control-Allow-Credentials: true. It cannot be combined
	// with the origins "*" or "null", nor with a regex that matches any
	// origin. Default: false.
	//
	// +optional
	AllowCredentials bool `json:"allowCredentials,omitempty"`

	// AllowPrivateNetwork answers preflights that carry
	// Access-Control-Request-Private-Network: true (Private Network Access)
	// with Access-Control-Allow-Private-Network: true. When false, such a
	// preflight is not allowed. Default: false.
	//
	// +optional
	AllowPrivateNetwork bool `json:"allowPrivateNetwork,omitempty"`

	// UnmatchedPreflight says what happens to a preflight that this policy
	// does not allow:
	//
	// * Reject (default): the edge answers 403 without CORS headers, and the
	//   upstream never sees the preflight.
	// * Forward: the preflight goes to the upstream untouched, which may
	//   answer it itself (useful while migrating an application's own CORS).
	//
	// +optional
	// +kubebuilder:default=Reject
	UnmatchedPreflight UnmatchedPreflight `json:"unmatchedPreflight,omitempty"`

	// Mode says whether the policy acts on traffic:
	//
	// * Enforce (default): preflights are answered at the edge and CORS
	//   response headers are set; upstream Access-Control-* headers are
	//   replaced.
	// * DryRun: every request is decided and the decision recorded in
	//   metrics and logs, but no request or response is changed. Use it to
	//   see what a policy would do before enforcing it.
	//
	// +optional
	// +kubebuilder:default=Enforce
	Mode Mode `json:"mode,omitempty"`

	// CrossOriginProtection refuses, at the edge with 403, state-changing
	// requests (any method but GET, HEAD and OPTIONS) that a browser sends
	// from an origin this policy does not allow. CORS decides who may read a
	// response, not who may send a request: a form on another site can POST
	// with the user's cookies without any preflight. The rule is Go's
	// net/http.CrossOriginProtection: Sec-Fetch-Site other than same-origin or
	// none is refused, or without it an Origin whose host is not the
	// request's; a request with neither header passes. It is not a CSRF
	// token: a trusted origin that an attacker controls defeats it. Off when
	// absent.
	//
	// +optional
	CrossOriginProtection *CrossOriginProtection `json:"crossOriginProtection,omitempty"`
}

// UnmatchedPreflight says what happens to a preflight a policy does not allow.
// The empty value means Reject.
//
// +kubebuilder:validation:Enum=Reject;Forward
type UnmatchedPreflight string

const (
	// UnmatchedPreflightReject answers 403 without CORS headers.
	UnmatchedPreflightReject UnmatchedPreflight = "Reject"
	// UnmatchedPreflightForward passes the preflight to the upstream untouched.
	UnmatchedPreflightForward UnmatchedPreflight = "Forward"
)

// Mode says whether a policy acts on traffic. The empty value means Enforce.
//
// +kubebuilder:validation:Enum=Enforce;DryRun
type Mode string

const (
	// ModeEnforce answers preflights and sets CORS response headers.
	ModeEnforce Mode = "Enforce"
	// ModeDryRun decides and records, and changes nothing.
	ModeDryRun Mode = "DryRun"
)

// Condition types of a CorsPolicy.
const (
	// ConditionAccepted says whether the spec is valid. Reasons: ReasonValid
	// (True), ReasonInvalid (False, the message says what to write instead).
	ConditionAccepted = "Accepted"
	// ConditionReady says whether the policy is being served by the edge.
	// Reasons: ReasonServing, ReasonServingLastValid, ReasonNotServing,
	// ReasonConflicted.
	ConditionReady = "Ready"
)

// Condition reasons of a CorsPolicy.
const (
	// ReasonValid: the spec compiled; warnings, if any, are in status.warnings.
	ReasonValid = "Valid"
	// ReasonInvalid: the spec was refused; the message lists every problem.
	ReasonInvalid = "Invalid"
	// ReasonServing: the current generation decides the requests it selects.
	ReasonServing = "Serving"
	// ReasonServingLastValid: the current generation is invalid, and the last
	// generation that was accepted is still served in its place.
	ReasonServingLastValid = "ServingLastValid"
	// ReasonNotServing: no generation of this policy is served, for example
	// because it has never been valid.
	ReasonNotServing = "NotServing"
	// ReasonConflicted: another policy claims the same host and path prefix
	// and wins; the message names it.
	ReasonConflicted = "Conflicted"
)

// Bounds on CorsPolicyStatus that a status writer must respect: the apiserver
// refuses a status beyond them (see the markers on Warnings).
const (
	MaxWarnings      = 32
	MaxWarningLength = 1024
)

// CorsPolicyStatus is what corsgate observed of a CorsPolicy.
type CorsPolicyStatus struct {
	// ObservedGeneration is the metadata.generation the status describes.
	//
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions describe the policy's state:
	//
	// * Accepted: True (reason Valid) when the spec is valid; False (reason
	//   Invalid) with a message that says what to change.
	// * Ready: True (reason Serving) when the edge serves this generation;
	//   otherwise ServingLastValid, NotServing or Conflicted, with a message.
	//
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// Warnings lists settings that are legal but risky, such as a "null"
	// origin, a plain-http origin with credentials, or a maxAge above
	// Chromium's cap of 7200 seconds. The policy is served regardless.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=1024
	Warnings []string `json:"warnings,omitempty"`

	// DeniedOrigins are the origins this policy denied most often (for a
	// DryRun policy: that Enforce would deny), as seen by the replica that
	// writes status since the current spec was served: at most 5, each seen
	// at least 5 times, sorted. Refreshed at most every 10 minutes, and only
	// when the set changes; /debug/corsgate/origins on the metrics port has
	// the counts. Cleared when the spec changes.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:MaxLength=330
	DeniedOrigins []string `json:"deniedOrigins,omitempty"`

	// Ancestors is the status of a targetRefs policy per Gateway it reaches
	// through its targets (GEP-713): Accepted True (reason Accepted), or
	// False with reason Invalid, TargetNotFound (the target does not exist or
	// no Gateway accepted it) or Conflicted (other policies win every
	// request). corsgate writes the entries with controllerName
	// corsgate.io/controller and leaves the others alone.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Ancestors []gwapiv1.PolicyAncestorStatus `json:"ancestors,omitempty"`
}

// CorsPolicy sets the CORS behaviour of the edge for the requests it selects
// by host and path: which origins may read responses, with which methods and
// headers, and whether with credentials.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=cors,categories=corsgate
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`
// +kubebuilder:printcolumn:name="Targets",type=string,JSONPath=`.spec.targetRefs`
// +kubebuilder:printcolumn:name="Origins",type=string,JSONPath=`.spec.allowOrigins`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CorsPolicy struct {
	metav1.TypeMeta `json:",inline"`

	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the CORS behaviour of the edge for the requests this policy
	// selects by hosts and pathPrefixes. When several policies select a
	// request, one decides it: an exact host beats a wildcard host (the longer
	// suffix first), which beats a policy without hosts; then the longest path
	// prefix; then, for the same host and prefix, the namespace whose claim
	// is oldest, and within it the policy attached closest to the route,
	// then the oldest policy, then the name.
	//
	// +required
	Spec CorsPolicySpec `json:"spec"`

	// Status is what corsgate observed.
	//
	// +optional
	Status CorsPolicyStatus `json:"status,omitempty"`
}

// Key is "namespace/name": how corsgate names a policy in status, metrics,
// logs and its tools.
func (p *CorsPolicy) Key() string { return p.Namespace + "/" + p.Name }

// CorsPolicyList is a list of CorsPolicy objects.
//
// +kubebuilder:object:root=true
type CorsPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CorsPolicy `json:"items"`
}
