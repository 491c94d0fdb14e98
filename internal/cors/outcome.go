package cors

// Outcome is what the edge did with a request, in one word: the vocabulary
// `corsgate explain` prints and the metrics use as a label. It is derived from
// a Decision (OutcomeOf), plus OutcomeNoPolicy for a request no policy covers,
// so the set is closed and the strings are stable.
type Outcome uint8

const (
	// OutcomeNoPolicy: no policy covers the request's host and path; the edge
	// changes nothing.
	OutcomeNoPolicy Outcome = iota
	// OutcomeNotCORS: a policy covers the request, which has no Origin
	// header; it reaches the upstream and its response is not changed.
	OutcomeNotCORS
	// OutcomePreflightAllowed: the edge answered the preflight 204 with CORS
	// headers; the upstream never saw it.
	OutcomePreflightAllowed
	// OutcomePreflightRejected: the edge answered the preflight 403 without
	// CORS headers (Fetch §3.2.3); the upstream never saw it.
	OutcomePreflightRejected
	// OutcomeActualAllowed: the request reached the upstream, and the edge set
	// the CORS headers on its response.
	OutcomeActualAllowed
	// OutcomeActualDenied: the policy denies an actual request, which still
	// reaches the upstream (the browser, not the edge, withholds the
	// response); the edge removes the upstream's CORS headers from the
	// response. (A refusal at the edge is OutcomeRefused.)
	OutcomeActualDenied
	// OutcomeForwarded: the edge changed nothing, neither the request nor its
	// response: a DryRun policy, or a denied preflight under
	// unmatchedPreflight: Forward.
	OutcomeForwarded
	// OutcomeRefused: the edge answered a non-preflight request 403 itself
	// (cross-origin protection); the upstream never saw it.
	OutcomeRefused
)

// NumOutcomes is the number of outcomes, for tables indexed by Outcome.
const NumOutcomes = int(OutcomeRefused) + 1

var outcomeStrings = [...]string{
	OutcomeNoPolicy:          "no-policy",
	OutcomeNotCORS:           "not-cors",
	OutcomePreflightAllowed:  "preflight-allowed",
	OutcomePreflightRejected: "preflight-rejected",
	OutcomeActualAllowed:     "actual-allowed",
	OutcomeActualDenied:      "actual-denied",
	OutcomeForwarded:         "forwarded",
	OutcomeRefused:           "refused",
}

// String is the outcome as explain prints it and metrics label it.
func (o Outcome) String() string {
	if int(o) < len(outcomeStrings) {
		return outcomeStrings[o]
	}
	return "unknown"
}

// ParseOutcome returns the outcome spelt s, for scripts and tests reading
// explain's JSON.
func ParseOutcome(s string) (Outcome, bool) {
	for i, v := range outcomeStrings {
		if v == s {
			return Outcome(i), true
		}
	}
	return 0, false
}

// OutcomeOf is what the edge does with a decision of a policy that covers the
// request: a DryRun decision is forwarded whatever Enforce would have done.
func OutcomeOf(d *Decision) Outcome {
	return outcome(d, d.Action)
}

// EnforceOutcomeOf is what the edge would do with the decision were its
// policy in Enforce mode. It differs from OutcomeOf only for DryRun
// decisions.
func EnforceOutcomeOf(d *Decision) Outcome {
	if d.DryRun {
		return outcome(d, d.EnforceAction)
	}
	return outcome(d, d.Action)
}

func outcome(d *Decision, a Action) Outcome {
	if a == ActionPassThrough {
		return OutcomeForwarded
	}
	if a == ActionRespond && d.Kind != KindPreflight {
		return OutcomeRefused
	}
	switch d.Kind {
	case KindNotCORS:
		return OutcomeNotCORS
	case KindPreflight:
		if d.Allowed {
			return OutcomePreflightAllowed
		}
		return OutcomePreflightRejected
	default:
		if d.Allowed {
			return OutcomeActualAllowed
		}
		return OutcomeActualDenied
	}
}
