// Package cors is corsgate's CORS engine. It validates and compiles a policy
// spec into an immutable Policy, and decides requests into plain Decisions,
// following the WHATWG Fetch standard's CORS protocol
// (https://fetch.spec.whatwg.org/#http-cors-protocol).
//
// It knows nothing of Kubernetes, gRPC or Envoy: callers translate from their
// world into Config and Request, and from Decision into theirs.
package cors

// Mode says whether a policy acts on traffic.
type Mode uint8

const (
	// ModeEnforce answers preflights and sets response headers.
	ModeEnforce Mode = iota
	// ModeDryRun decides and records, and changes nothing.
	ModeDryRun
)

// UnmatchedPreflight says what happens to a preflight the policy does not allow.
type UnmatchedPreflight uint8

const (
	// PreflightReject answers 403 without CORS headers (Fetch §3.2.3 names 403
	// as the explicit denial).
	PreflightReject UnmatchedPreflight = iota
	// PreflightForward passes the preflight to the upstream untouched.
	PreflightForward
)

// Config is the plain, uncompiled form of a policy: the CORS fields of a
// CorsPolicy spec. Compile validates it.
type Config struct {
	AllowOrigins        []string
	AllowOriginRegexes  []string
	AllowMethods        []string
	AllowHeaders        []string
	ExposeHeaders       []string
	MaxAge              *int32
	AllowCredentials    bool
	AllowPrivateNetwork bool
	UnmatchedPreflight  UnmatchedPreflight
	Mode                Mode
	// CrossOriginProtection refuses cross-origin state-changing requests from
	// untrusted origins (crossorigin.go).
	CrossOriginProtection CrossOriginMode
}
