package cors

import "net/http"

// DecidePathAmbiguous is the decision for a request whose path selects
// different policies depending on how it is read (internal/table's Match):
// no policy grants it. A preflight is answered 403 without CORS headers
// (Fetch §3.2.3), whatever the policies' unmatchedPreflight says: forwarding
// it would let the upstream answer for a path the edge cannot attribute. An
// actual request reaches the upstream, and its response loses the
// upstream's Access-Control-* headers, so the browser withholds it from the
// page. A request without Origin is not CORS and goes through as under any
// policy; it is still counted as path ambiguous, which is what a scanner
// probing paths looks like.
//
// With dryRun (every policy a reading selected is DryRun) nothing changes:
// Action is ActionPassThrough and EnforceAction says what Enforce would do.
// Detail is the path, request input: log it quoted.
func DecidePathAmbiguous(r *Request, path string, dryRun bool) (d Decision) {
	d.Reason, d.Detail = ReasonPathAmbiguous, path
	switch {
	case !r.HasOrigin:
		d.Kind, d.Action = KindNotCORS, ActionContinue
	case r.Method == http.MethodOptions && r.AccessControlRequestMethod != "":
		// Fetch §3.2.2, as in decideCORS.
		d.Kind, d.Action, d.Status = KindPreflight, ActionRespond, http.StatusForbidden
	default:
		d.Kind, d.Action = KindActual, ActionContinue
	}
	if dryRun {
		d.DryRun, d.EnforceAction, d.Action = true, d.Action, ActionPassThrough
	}
	return d
}
