package explain

import (
	"fmt"
	"strings"

	"github.com/corsgate/corsgate/internal/cors"
)

// Browser is what a browser makes of the response, after the Fetch
// standard's CORS check (§4.9) and CORS-preflight fetch (§4.8), with the
// console message Chrome and Firefox print for the first failure.
type Browser struct {
	// Allowed: the page may read the response (for a preflight: the browser
	// goes on to send the actual request).
	Allowed bool `json:"allowed"`
	// NotCORS: the request has no Origin, so the browser runs no CORS check
	// (a same-origin request, or not a browser).
	NotCORS bool `json:"notCors,omitempty"`
	// Unknown: the verdict depends on an answer explain does not see.
	Unknown bool `json:"unknown,omitempty"`
	// Failure names the failed check, stable for scripts:
	// missing-allow-origin, multiple-allow-origin, allow-origin-mismatch,
	// wildcard-origin-with-credentials, credentials-not-allowed,
	// preflight-status, method-not-allowed, header-not-allowed,
	// private-network-not-allowed.
	Failure string `json:"failure,omitempty"`
	Chrome  string `json:"chrome,omitempty"`
	Firefox string `json:"firefox,omitempty"`
	Note    string `json:"note,omitempty"`
}

// browserVerdict judges a response (status is known only for an answer at
// the edge; 0 otherwise) the way the browser that sent r would.
func browserVerdict(r *cors.Request, credentials bool, url string, atEdge bool, status int, headers []cors.Header) Browser {
	if !r.HasOrigin {
		return Browser{Allowed: true, NotCORS: true}
	}
	view := corsView(headers)
	preflight := kindOf(r) == cors.KindPreflight
	if preflight && !atEdge && status == 0 {
		status = 200 // the upstream's answer, assumed ok: only its headers were given
	}

	// The CORS check (Fetch §4.9): ACAO, then ACAC for credentialed requests.
	corsFail := corsCheck(view, r.Origin, credentials)
	var statusFail bool
	if preflight && (status < 200 || status > 299) {
		statusFail = true // Fetch §4.8 step 7: an ok status
	}
	f := failure{}
	switch {
	case corsFail.id != "" || statusFail:
		// Chromium runs the CORS check before looking at the status,
		// Firefox the other way round: the same response reads differently.
		chrome, firefox := corsFail, corsFail
		if statusFail {
			if chrome.id == "" {
				chrome = failure{id: "preflight-status"}
			}
			firefox = failure{id: "preflight-status"}
		}
		b := Browser{Failure: chrome.id}
		b.Chrome = chromeMessage(url, r.Origin, preflight, chrome)
		b.Firefox = firefoxMessage(url, preflight, status, firefox)
		return b
	case preflight:
		f = preflightCheck(view, r, credentials)
	}
	if f.id == "" {
		return Browser{Allowed: true}
	}
	return Browser{Failure: f.id, Chrome: chromeMessage(url, r.Origin, true, f), Firefox: firefoxMessage(url, true, status, f)}
}

type failure struct {
	id    string
	value string // the offending header value, method or header name
}

func corsCheck(view map[string]string, origin string, credentials bool) failure {
	acao, ok := view[cors.HeaderACAO]
	switch {
	case !ok:
		return failure{id: "missing-allow-origin"}
	case strings.Contains(acao, ","):
		return failure{id: "multiple-allow-origin", value: acao}
	case acao == "*" && credentials:
		return failure{id: "wildcard-origin-with-credentials"}
	case acao != "*" && acao != origin:
		return failure{id: "allow-origin-mismatch", value: acao}
	}
	if credentials {
		if acac := view[cors.HeaderACAC]; acac != "true" {
			return failure{id: "credentials-not-allowed", value: acac}
		}
	}
	return failure{}
}

// preflightCheck is the rest of the CORS-preflight fetch (Fetch §4.8 steps
// 7.3 to 7.7): the method, then each requested header, then (Chromium's
// Private Network Access) the private network answer.
func preflightCheck(view map[string]string, r *cors.Request, credentials bool) failure {
	methods := splitList(view[cors.HeaderACAM])
	m := r.AccessControlRequestMethod
	if !contains(methods, m, false) && m != "GET" && m != "HEAD" && m != "POST" && (credentials || !contains(methods, "*", false)) {
		return failure{id: "method-not-allowed", value: m}
	}
	names := splitList(view[cors.HeaderACAH])
	for _, n := range splitList(r.AccessControlRequestHeaders) {
		if contains(names, n, true) {
			continue
		}
		// "*" never covers Authorization (a CORS non-wildcard request-header
		// name, Fetch §2.2.2), and is literal with credentials.
		if credentials || !contains(names, "*", false) || strings.EqualFold(n, "authorization") {
			return failure{id: "header-not-allowed", value: strings.ToLower(n)}
		}
	}
	if r.AccessControlRequestPrivateNetwork == "true" && view[cors.HeaderACAPN] != "true" {
		return failure{id: "private-network-not-allowed"}
	}
	return failure{}
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.Trim(v, " \t"); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func contains(list []string, s string, fold bool) bool {
	for _, v := range list {
		if v == s || fold && strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// chromeMessage is Chromium's console error for the failure (its
// network::cors error strings, as printed for a fetch()).
func chromeMessage(url, origin string, preflight bool, f failure) string {
	var why string
	pre := ""
	if preflight {
		pre = "Response to preflight request doesn't pass access control check: "
	}
	switch f.id {
	case "missing-allow-origin":
		why = pre + "No 'Access-Control-Allow-Origin' header is present on the requested resource."
		if !preflight {
			why += " If an opaque response serves your needs, set the request's mode to 'no-cors' to fetch the resource with CORS disabled."
		}
	case "multiple-allow-origin":
		why = pre + fmt.Sprintf("The 'Access-Control-Allow-Origin' header contains multiple values '%s', but only one is allowed.", f.value)
	case "allow-origin-mismatch":
		why = pre + fmt.Sprintf("The 'Access-Control-Allow-Origin' header has a value '%s' that is not equal to the supplied origin.", f.value)
	case "wildcard-origin-with-credentials":
		why = pre + "The value of the 'Access-Control-Allow-Origin' header in the response must not be the wildcard '*' when the request's credentials mode is 'include'."
	case "credentials-not-allowed":
		why = pre + fmt.Sprintf("The value of the 'Access-Control-Allow-Credentials' header in the response is '%s' which must be 'true' when the request's credentials mode is 'include'.", f.value)
	case "preflight-status":
		why = pre + "It does not have HTTP ok status."
	case "method-not-allowed":
		why = fmt.Sprintf("Method %s is not allowed by Access-Control-Allow-Methods in preflight response.", f.value)
	case "header-not-allowed":
		why = fmt.Sprintf("Request header field %s is not allowed by Access-Control-Allow-Headers in preflight response.", f.value)
	case "private-network-not-allowed":
		why = pre + "No 'Access-Control-Allow-Private-Network' header was present in the preflight response for this private network request targeting the `private` address space."
	}
	return fmt.Sprintf("Access to fetch at '%s' from origin '%s' has been blocked by CORS policy: %s", url, origin, why)
}

// firefoxMessage is Firefox's console error (its CORS* reason strings, with
// the typographic quotes it prints).
func firefoxMessage(url string, preflight bool, status int, f failure) string {
	var why string
	switch f.id {
	case "missing-allow-origin":
		why = "CORS header ‘Access-Control-Allow-Origin’ missing"
	case "multiple-allow-origin":
		why = "Multiple CORS header ‘Access-Control-Allow-Origin’ not allowed"
	case "allow-origin-mismatch":
		why = fmt.Sprintf("CORS header ‘Access-Control-Allow-Origin’ does not match ‘%s’", f.value)
	case "wildcard-origin-with-credentials":
		why = "Credential is not supported if the CORS header ‘Access-Control-Allow-Origin’ is ‘*’"
	case "credentials-not-allowed":
		why = "expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’"
	case "preflight-status":
		why = "CORS preflight response did not succeed"
	case "method-not-allowed":
		why = "Did not find method in CORS header ‘Access-Control-Allow-Methods’"
	case "header-not-allowed":
		why = fmt.Sprintf("header ‘%s’ is not allowed according to header ‘Access-Control-Allow-Headers’ from CORS preflight response", f.value)
	case "private-network-not-allowed":
		return "Firefox sends no Private Network Access preflight: it reports nothing for this check"
	}
	msg := fmt.Sprintf("Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at %s. (Reason: %s).", url, why)
	if preflight && status != 0 {
		msg += fmt.Sprintf(" Status code: %d.", status)
	}
	return msg
}
