package v1alpha1

// CrossOriginProtection refuses, at the edge, state-changing requests that a
// browser sends from another origin the policy does not trust: the rule of Go's
// net/http.CrossOriginProtection, with "trusted" meaning allowed by this
// policy's allowOrigins and allowOriginRegexes. A request whose method is not
// GET, HEAD or OPTIONS is refused with 403 when its Sec-Fetch-Site header is
// anything but same-origin or none, or, without Sec-Fetch-Site, when its
// Origin's host differs from the request's host; unless its Origin is trusted.
// A request with neither header (not from a browser) passes.
//
// CORS decides who may read a response, not who may send a request: a form on
// another site can POST with the user's cookies without any preflight. This
// closes that gap for the origins you did not list. It is not a CSRF token: a
// trusted origin that an attacker controls (a subdomain takeover) defeats it.
type CrossOriginProtection struct {
	// Mode: Enforce refuses with 403 at the edge; DryRun lets the request
	// through and records, in metrics and logs, that Enforce would refuse it.
	//
	// +required
	Mode CrossOriginProtectionMode `json:"mode"`
}

// CrossOriginProtectionMode is Enforce or DryRun.
//
// +kubebuilder:validation:Enum=Enforce;DryRun
type CrossOriginProtectionMode string

const (
	// CrossOriginProtectionEnforce refuses with 403 at the edge.
	CrossOriginProtectionEnforce CrossOriginProtectionMode = "Enforce"
	// CrossOriginProtectionDryRun records what Enforce would refuse.
	CrossOriginProtectionDryRun CrossOriginProtectionMode = "DryRun"
)
