package cors

import "github.com/corsgate/corsgate/internal/header"

// Kind classifies a request the way the Fetch standard does (§3.2.2 "HTTP requests").
type Kind uint8

const (
	// KindNotCORS is a request without an Origin header.
	KindNotCORS Kind = iota
	// KindPreflight is an OPTIONS request with Origin and a non-empty
	// Access-Control-Request-Method.
	KindPreflight
	// KindActual is any other request with an Origin header (an OPTIONS without
	// Access-Control-Request-Method included).
	KindActual
)

func (k Kind) String() string {
	switch k {
	case KindPreflight:
		return "preflight"
	case KindActual:
		return "actual"
	default:
		return "not-cors"
	}
}

// Action is what the edge must do with the request.
type Action uint8

const (
	// ActionContinue lets the request reach the upstream; in the response phase the
	// edge removes the upstream's Access-Control-* headers, sets Decision.Headers
	// and appends Origin to Vary.
	ActionContinue Action = iota
	// ActionRespond answers at the edge with Decision.Status and Decision.Headers;
	// the upstream never sees the request.
	ActionRespond
	// ActionPassThrough changes nothing, neither the request nor its response
	// (DryRun policies, and denied preflights under unmatchedPreflight: Forward).
	ActionPassThrough
)

func (a Action) String() string {
	switch a {
	case ActionRespond:
		return "respond"
	case ActionPassThrough:
		return "pass-through"
	default:
		return "continue"
	}
}

// Reason says why a decision came out the way it did. It feeds metrics labels
// and logs, so the set is closed and the strings are stable.
type Reason uint8

const (
	ReasonAllowed Reason = iota
	ReasonNotCORS
	ReasonOriginMalformed
	ReasonOriginNotAllowed
	ReasonMethodNotAllowed
	ReasonHeaderNotAllowed
	ReasonHeadersTooLarge
	ReasonPrivateNetworkNotAllowed
	// ReasonCrossOriginRefused: cross-origin protection refused a non-safe
	// request from an untrusted origin (crossorigin.go).
	ReasonCrossOriginRefused
	// ReasonCrossOriginDryRun: cross-origin protection in DryRun would have
	// refused the request; it went through.
	ReasonCrossOriginDryRun
	// ReasonPathAmbiguous: the request's path selects different policies
	// depending on how it is read (raw, or decoded and with dot segments
	// removed, as an upstream may read it), so no policy grants it
	// (internal/table's Match, PathAmbiguous).
	ReasonPathAmbiguous
)

var reasonStrings = [...]string{
	ReasonAllowed:                  "allowed",
	ReasonNotCORS:                  "not a CORS request",
	ReasonOriginMalformed:          "origin malformed",
	ReasonOriginNotAllowed:         "origin not allowed",
	ReasonMethodNotAllowed:         "method not allowed",
	ReasonHeaderNotAllowed:         "header not allowed",
	ReasonHeadersTooLarge:          "access-control-request-headers too large",
	ReasonPrivateNetworkNotAllowed: "private network access not allowed",
	ReasonCrossOriginRefused:       "cross-origin request refused",
	ReasonCrossOriginDryRun:        "cross-origin request (dry run: Enforce would refuse it)",
	ReasonPathAmbiguous:            "path ambiguous",
}

func (r Reason) String() string {
	if int(r) < len(reasonStrings) {
		return reasonStrings[r]
	}
	return "unknown"
}

// reasonLabels are the reasons spelt for metric labels and Envoy's response
// code details, where spaces are not welcome.
var reasonLabels = [...]string{
	ReasonAllowed:                  "allowed",
	ReasonNotCORS:                  "not_cors",
	ReasonOriginMalformed:          "origin_malformed",
	ReasonOriginNotAllowed:         "origin_not_allowed",
	ReasonMethodNotAllowed:         "method_not_allowed",
	ReasonHeaderNotAllowed:         "header_not_allowed",
	ReasonHeadersTooLarge:          "request_headers_too_large",
	ReasonPrivateNetworkNotAllowed: "private_network_not_allowed",
	ReasonCrossOriginRefused:       "cross_origin_refused",
	ReasonCrossOriginDryRun:        "cross_origin_dry_run",
	ReasonPathAmbiguous:            "path_ambiguous",
}

// Label is the reason in snake_case, for metric labels and access logs.
func (r Reason) Label() string {
	if int(r) < len(reasonLabels) {
		return reasonLabels[r]
	}
	return "unknown"
}

// NumReasons is the number of reasons, for tables indexed by Reason.
const NumReasons = int(ReasonPathAmbiguous) + 1

// maxHeaders bounds a decision's headers: a preflight answer has at most
// ACAO, ACAC, ACAM, ACAH, ACMA, ACAPN and Vary.
const maxHeaders = 8

// HeaderList is a fixed-capacity list, so that a Decision is built without
// allocating. The zero value is empty.
type HeaderList struct {
	n uint8
	h [maxHeaders]header.Field
}

// All returns the headers in order. The slice aliases the list: do not keep it
// past the Decision's life, and do not append to it.
func (l *HeaderList) All() []header.Field { return l.h[:l.n:l.n] }

// Len is the number of headers.
func (l *HeaderList) Len() int { return int(l.n) }

// Get returns the value of the named header (lower-case name).
func (l *HeaderList) Get(name string) (string, bool) {
	for _, h := range l.h[:l.n] {
		if h.Name == name {
			return h.Value, true
		}
	}
	return "", false
}

func (l *HeaderList) add(name, value string) {
	l.h[l.n] = header.Field{Name: name, Value: value}
	l.n++
}

// Request holds what the engine reads of an HTTP request. Strings are the raw
// header values as received (Envoy joins repeated inline headers with ",").
type Request struct {
	Method string
	// Origin is the Origin header's value; HasOrigin tells an absent header from
	// an empty one (an empty Origin is malformed, not absent).
	Origin                             string
	HasOrigin                          bool
	AccessControlRequestMethod         string
	AccessControlRequestHeaders        string
	AccessControlRequestPrivateNetwork string
	// Host is the request's :authority as received, and SecFetchSite its
	// Sec-Fetch-Site header: read only by cross-origin protection.
	Host         string
	SecFetchSite string
}

// Decision is the engine's answer for one request. It is a plain value: deciding
// allocates nothing, and strings in it are either compiled constants or
// substrings of the Request.
type Decision struct {
	Kind    Kind
	Action  Action
	Allowed bool
	Reason  Reason
	// Detail names the offending value when Reason is a denial (the origin, the
	// method, the header name), for logs. It is request input: log it quoted.
	Detail string
	// Status is the edge's answer with ActionRespond: 204 or 403.
	Status int
	// Headers are the preflight answer's headers with ActionRespond, and the
	// headers to set on the upstream's response with ActionContinue.
	Headers HeaderList
	// ExposeResponseHeaders asks the response phase to list the upstream
	// response's own header names in Access-Control-Expose-Headers: the policy
	// exposes "*" with credentials, where a browser would read "*" literally.
	ExposeResponseHeaders bool
	// DryRun marks a decision of a DryRun policy: Action is ActionPassThrough, and
	// the other fields say what Enforce would have done (EnforceAction).
	DryRun        bool
	EnforceAction Action
}
