package explain

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/header"
)

// Browser is what a browser makes of the response, after the Fetch
// standard's CORS check (§4.9) and CORS-preflight fetch (§4.8), with the
// console message Chrome, Firefox and Safari print for the first failure.
// The messages are the browsers' own words, as the browser suite (test/e2e)
// captures them from Chromium, Firefox and WebKit and compares them with
// these, request by request.
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
	// preflight-status, preflight-redirect, method-not-allowed,
	// header-not-allowed, private-network-not-allowed.
	Failure string `json:"failure,omitempty"`
	Chrome  string `json:"chrome,omitempty"`
	Firefox string `json:"firefox,omitempty"`
	// Safari is WebKit's reason line, where its wording has been captured
	// from a real WebKit; empty otherwise.
	Safari string `json:"safari,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Message is the console message of one engine: "chromium", "firefox" or
// "webkit".
func (b Browser) Message(engine string) string {
	switch engine {
	case "chromium", "chrome":
		return b.Chrome
	case "firefox":
		return b.Firefox
	case "webkit", "safari":
		return b.Safari
	}
	return ""
}

// Exchange is one cross-origin request as a browser sent it and the
// response it received, for Judge.
type Exchange struct {
	// Method is the page's method; for a preflight, the method it asks for.
	Method string
	URL    string
	Origin string
	// RequestHeaders are the names the preflight asks for
	// (Access-Control-Request-Headers).
	RequestHeaders []string
	Credentials    bool
	// Preflight: Status and Headers are the preflight's answer.
	Preflight bool
	Status    int
	// Headers are the response's headers, "Name: value".
	Headers []string
}

// Judge is explain's browser verdict on one exchange, with each browser's
// console message: what explain prints for a request, given the response
// the browser received. The browser suite holds it against what real
// browsers print.
func Judge(x Exchange) (Browser, error) {
	r := cors.Request{Method: x.Method, Origin: x.Origin, HasOrigin: true}
	if x.Preflight {
		r.Method, r.AccessControlRequestMethod = "OPTIONS", x.Method
		names := make([]string, 0, len(x.RequestHeaders))
		for _, n := range x.RequestHeaders {
			names = append(names, strings.ToLower(n))
		}
		slices.Sort(names)
		r.AccessControlRequestHeaders = strings.Join(names, ",")
	}
	var hs []header.Field
	for _, line := range x.Headers {
		h, err := parseHeader(line)
		if err != nil {
			return Browser{}, err
		}
		hs = append(hs, h)
	}
	return browserVerdict(&r, x.Credentials, x.URL, true, x.Status, hs), nil
}

// browserVerdict judges a response (status is known only for an answer at
// the edge; 0 otherwise) the way the browser that sent r would.
func browserVerdict(r *cors.Request, credentials bool, url string, atEdge bool, status int, headers []header.Field) Browser {
	if !r.HasOrigin {
		return Browser{Allowed: true, NotCORS: true}
	}
	view := corsView(headers)
	preflight := kindOf(r) == cors.KindPreflight
	if preflight && !atEdge && status == 0 {
		status = 200 // the upstream's answer, assumed ok: only its headers were given
	}

	// A preflight is never redirected (Fetch §4.8: its response must have
	// an ok status); Chromium and Firefox name the redirect rather than the
	// status, whatever the headers say.
	if preflight && status >= 300 && status <= 399 {
		f := failure{id: "preflight-redirect"}
		return Browser{Failure: f.id, Chrome: chromeMessage(url, r.Origin, true, f), Firefox: firefoxMessage(url, status, f)}
	}

	// The CORS check (Fetch §4.9): ACAO, then ACAC for credentialed requests.
	corsFail := corsCheck(view, r.Origin, credentials)
	if corsFail.id == "multiple-allow-origin" {
		// Repeated header lines reach the check joined by "," with no
		// space (Chromium and Firefox alike), unlike corsView's ", ".
		var values []string
		for _, h := range headers {
			if h.Name == cors.HeaderACAO {
				values = append(values, h.Value)
			}
		}
		if len(values) > 1 {
			corsFail.value = strings.Join(values, ",")
		}
	}
	var statusFail bool
	if preflight && (status < 200 || status > 299) {
		statusFail = true // Fetch §4.8 step 7: an ok status
	}
	f, note := failure{}, ""
	switch {
	case corsFail.id != "" || statusFail:
		// Chromium and Firefox run the CORS check before looking at a
		// preflight's status, WebKit the other way round (Fetch §4.8 step 7
		// requires both and names no order): the same response reads
		// differently.
		chrome := corsFail
		if chrome.id == "" {
			chrome = failure{id: "preflight-status"}
		}
		safari := corsFail
		if statusFail {
			safari = failure{id: "preflight-status"}
		}
		return Browser{
			Failure: chrome.id,
			Chrome:  chromeMessage(url, r.Origin, preflight, chrome),
			Firefox: firefoxMessage(url, status, chrome),
			Safari:  safariMessage(r.Origin, status, safari),
		}
	case preflight:
		f, note = preflightCheck(view, r, credentials)
	}
	if f.id == "" {
		return Browser{Allowed: true, Note: note}
	}
	return Browser{Failure: f.id, Chrome: chromeMessage(url, r.Origin, true, f), Firefox: firefoxMessage(url, status, f), Safari: safariMessage(r.Origin, status, f)}
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

// authorizationByWildcard is explain's note when a preflight answer's
// Access-Control-Allow-Headers: * is all that lets Authorization through.
const authorizationByWildcard = "the preflight answer allows Authorization only through Access-Control-Allow-Headers: *, " +
	"which the Fetch standard says never covers it (§2.2.2, a CORS non-wildcard request-header name); " +
	"Chromium, Firefox and WebKit accept it anyway (whatwg/fetch#1919) and may stop: " +
	"list authorization by name, as corsgate always does"

// preflightCheck is the rest of the CORS-preflight fetch (Fetch §4.8 steps
// 7.3 to 7.7): the method, then each requested header, then (Chromium's
// former Private Network Access) the private network answer. note is set
// when the answer passes only by what browsers accept against the standard.
func preflightCheck(view map[string]string, r *cors.Request, credentials bool) (f failure, note string) {
	methods := splitList(view[cors.HeaderACAM])
	m := r.AccessControlRequestMethod
	if !contains(methods, m, false) && m != "GET" && m != "HEAD" && m != "POST" && (credentials || !contains(methods, "*", false)) {
		return failure{id: "method-not-allowed", value: m}, ""
	}
	names := splitList(view[cors.HeaderACAH])
	for _, n := range splitList(r.AccessControlRequestHeaders) {
		if contains(names, n, true) {
			continue
		}
		// "*" is literal with credentials.
		if credentials || !contains(names, "*", false) {
			return failure{id: "header-not-allowed", value: strings.ToLower(n)}, ""
		}
		// "*" never covers Authorization (a CORS non-wildcard request-header
		// name, Fetch §2.2.2), yet every engine accepts it: the browser
		// suite sees Chromium, Firefox and WebKit send the request.
		if strings.EqualFold(n, "authorization") {
			note = authorizationByWildcard
		}
	}
	if r.AccessControlRequestPrivateNetwork == "true" && view[cors.HeaderACAPN] != "true" {
		return failure{id: "private-network-not-allowed"}, ""
	}
	return failure{}, note
}

func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
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
	case "multiple-allow-origin":
		why = pre + fmt.Sprintf("The 'Access-Control-Allow-Origin' header contains multiple values '%s', but only one is allowed. Have the server send the header with a valid value.", f.value)
	case "allow-origin-mismatch":
		why = pre + fmt.Sprintf("The 'Access-Control-Allow-Origin' header has a value '%s' that is not equal to the supplied origin. Have the server send the header with a valid value.", f.value)
	case "wildcard-origin-with-credentials":
		why = pre + "The value of the 'Access-Control-Allow-Origin' header in the response must not be the wildcard '*' when the request's credentials mode is 'include'."
	case "credentials-not-allowed":
		why = pre + fmt.Sprintf("The value of the 'Access-Control-Allow-Credentials' header in the response is '%s' which must be 'true' when the request's credentials mode is 'include'.", f.value)
	case "preflight-status":
		why = pre + "It does not have HTTP ok status."
	case "preflight-redirect":
		why = pre + "Redirect is not allowed for a preflight request."
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
// the typographic quotes it prints). Some reasons end with the response's
// status, when explain knows it.
func firefoxMessage(url string, status int, f failure) string {
	var why string
	withStatus := false
	switch f.id {
	case "missing-allow-origin":
		why, withStatus = "CORS header ‘Access-Control-Allow-Origin’ missing", true
	case "multiple-allow-origin":
		// A list, in one header line or in repeated ones, does not match.
		why = fmt.Sprintf("CORS header ‘Access-Control-Allow-Origin’ does not match ‘%s’", f.value)
	case "allow-origin-mismatch":
		why = fmt.Sprintf("CORS header ‘Access-Control-Allow-Origin’ does not match ‘%s’", f.value)
	case "wildcard-origin-with-credentials":
		// The one reason whose URL Firefox quotes.
		return fmt.Sprintf("Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at ‘%s’. "+
			"(Reason: Credential is not supported if the CORS header ‘Access-Control-Allow-Origin’ is ‘*’).", url)
	case "credentials-not-allowed":
		why = "expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’"
	case "preflight-status":
		why, withStatus = "CORS preflight response did not succeed", true
	case "preflight-redirect":
		why = "CORS request external redirect not allowed"
	case "method-not-allowed":
		why = "Did not find method in CORS header ‘Access-Control-Allow-Methods’"
	case "header-not-allowed":
		why = fmt.Sprintf("header ‘%s’ is not allowed according to header ‘Access-Control-Allow-Headers’ from CORS preflight response", f.value)
	case "private-network-not-allowed":
		return "Firefox sends no Private Network Access preflight: it reports nothing for this check"
	}
	msg := fmt.Sprintf("Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at %s. (Reason: %s).", url, why)
	if withStatus && status != 0 {
		msg += fmt.Sprintf(" Status code: %d.", status)
	}
	return msg
}

// safariMessage is WebKit's console reason (its "security" line; the line
// that names the URL only says "Fetch API cannot load … due to access
// control checks."), for the failures whose wording was read from a real
// WebKit; "" for the others.
func safariMessage(origin string, status int, f failure) string {
	code := ""
	if status != 0 {
		code = fmt.Sprintf(" Status code: %d", status)
	}
	switch f.id {
	case "missing-allow-origin":
		return "Origin " + origin + " is not allowed by Access-Control-Allow-Origin." + code
	case "wildcard-origin-with-credentials":
		return "Cannot use wildcard in Access-Control-Allow-Origin when credentials flag is true."
	case "preflight-status":
		return "Preflight response is not successful." + code
	}
	return ""
}

// Console is what explain makes of a console message pasted from a
// browser: which engine printed it and which failure it reports.
type Console struct {
	Engine string `json:"engine"` // chromium, firefox, webkit
	// Failure is one of Browser.Failure's names, or local-network-access,
	// or network-error (Firefox's "CORS request did not succeed": the
	// request itself failed, or its preflight did).
	Failure string `json:"failure"`
	// NotCORSPolicy: no CORS header, and so no CorsPolicy, can fix it.
	NotCORSPolicy bool   `json:"notCorsPolicy,omitempty"`
	Note          string `json:"note,omitempty"`
}

// localNetworkAccess is explain's answer to Chrome's Local Network Access
// denial, which DevTools files under CORS errors.
const localNetworkAccess = "not a CORS policy problem: Chrome's Local Network Access (on by default since Chrome 142) " +
	"blocks a public page's requests to a private or loopback address until the user grants the page the " +
	"local-network permission (loopback-network for loopback, from Chrome 145); no response header grants it, " +
	"allowPrivateNetwork included. Have the user allow it (or an enterprise policy such as " +
	"LocalNetworkAllowedForUrls), or serve the API from a public address"

// consoleFailures map the words of each engine's console messages to
// failures, most specific first.
var consoleFailures = []struct {
	engine, words, failure string
}{
	{"chromium", "Permission was denied for this request to access the", "local-network-access"},
	{"chromium", "No 'Access-Control-Allow-Origin' header is present", "missing-allow-origin"},
	{"chromium", "header contains multiple values", "multiple-allow-origin"},
	{"chromium", "that is not equal to the supplied origin", "allow-origin-mismatch"},
	{"chromium", "must not be the wildcard '*' when the request's credentials mode is 'include'", "wildcard-origin-with-credentials"},
	{"chromium", "'Access-Control-Allow-Credentials' header in the response is", "credentials-not-allowed"},
	{"chromium", "It does not have HTTP ok status.", "preflight-status"},
	{"chromium", "is not allowed by Access-Control-Allow-Methods in preflight response", "method-not-allowed"},
	{"chromium", "is not allowed by Access-Control-Allow-Headers in preflight response", "header-not-allowed"},
	{"chromium", "Access-Control-Allow-Private-Network", "private-network-not-allowed"},
	{"chromium", "Redirect is not allowed for a preflight request", "preflight-redirect"},
	{"firefox", "CORS header ‘Access-Control-Allow-Origin’ missing", "missing-allow-origin"},
	{"firefox", "Multiple CORS header ‘Access-Control-Allow-Origin’ not allowed", "multiple-allow-origin"},
	{"firefox", "CORS header ‘Access-Control-Allow-Origin’ does not match", "allow-origin-mismatch"},
	{"firefox", "Credential is not supported if the CORS header ‘Access-Control-Allow-Origin’ is ‘*’", "wildcard-origin-with-credentials"},
	{"firefox", "expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’", "credentials-not-allowed"},
	{"firefox", "CORS preflight response did not succeed", "preflight-status"},
	{"firefox", "Did not find method in CORS header ‘Access-Control-Allow-Methods’", "method-not-allowed"},
	{"firefox", "is not allowed according to header ‘Access-Control-Allow-Headers’", "header-not-allowed"},
	{"firefox", "CORS request external redirect not allowed", "preflight-redirect"},
	{"firefox", "CORS request did not succeed", "network-error"},
	{"chromium", "Failed to load resource: net::ERR_", "network-error"},
	{"webkit", "is not allowed by Access-Control-Allow-Origin.", "missing-allow-origin"},
	{"webkit", "Cannot use wildcard in Access-Control-Allow-Origin when credentials flag is true.", "wildcard-origin-with-credentials"},
	{"webkit", "Preflight response is not successful.", "preflight-status"},
}

// ReadConsole recognises a browser's console message: which engine printed
// it and which failure it reports. ok is false for a message explain does
// not know.
func ReadConsole(msg string) (c Console, ok bool) {
	for _, f := range consoleFailures {
		if !strings.Contains(msg, f.words) {
			continue
		}
		c = Console{Engine: f.engine, Failure: f.failure}
		switch {
		case f.failure == "local-network-access":
			c.NotCORSPolicy, c.Note = true, localNetworkAccess
		case f.failure == "allow-origin-mismatch" && f.engine == "firefox" && strings.Contains(msg, "’ does not match ‘") &&
			strings.Contains(msg[strings.Index(msg, "does not match"):], ","):
			// Firefox words a list in one header as a mismatch.
			c.Failure = "multiple-allow-origin"
		case f.failure == "missing-allow-origin" && f.engine == "webkit":
			// WebKit words a missing and a wrong value alike.
			c.Note = "WebKit says this both when Access-Control-Allow-Origin is missing and when it names another origin"
		case f.failure == "network-error" && f.engine == "firefox":
			c.Note = "Firefox prints this after the line that gives the reason, or alone when the connection itself failed (no response: DNS, TLS, refused)"
		case f.failure == "network-error":
			c.Note = "Chromium prints this after every blocked request; alone, it means no response came at all (DNS, TLS, proxy, refused): not a CORS policy problem"
		}
		return c, true
	}
	return Console{}, false
}

// PreflightCacheCaps are the longest each engine keeps a preflight answer,
// whatever Access-Control-Max-Age asks: Chromium's kMaxTimeout, WebKit's
// maxPreflightCacheTimeout, Firefox's 24 hours.
var PreflightCacheCaps = []struct {
	Engine string
	Cap    time.Duration
}{
	{"Chromium", 2 * time.Hour},
	{"Firefox", 24 * time.Hour},
	{"WebKit", 10 * time.Minute},
}

// CachedFor says how long browsers may keep a preflight answer carrying
// Access-Control-Max-Age: maxAge, per engine: a policy change reaches a
// browser that cached an earlier answer only after that. "" for no caching.
func CachedFor(maxAge string) string {
	secs, err := strconv.Atoi(strings.TrimSpace(maxAge))
	if err != nil || secs <= 0 {
		return ""
	}
	return "cached for up to " + cacheCaps(time.Duration(secs)*time.Second) +
		": a browser that cached an earlier answer sees a policy change only after that"
}

// StaleAllowance is the note for a preflight the policy now refuses: a
// browser may still hold an earlier answer that allowed it.
func StaleAllowance() string {
	return "a browser that cached an earlier answer allowing this preflight keeps sending the request until that expires: " +
		"cached for up to " + cacheCaps(0) + " (the engines' caps; the earlier answer's maxAge may be shorter)"
}

// cacheCaps lists min(d, cap) per engine; d == 0 lists the caps.
func cacheCaps(d time.Duration) string {
	parts := make([]string, 0, len(PreflightCacheCaps))
	for _, c := range PreflightCacheCaps {
		v := c.Cap
		if d > 0 {
			v = min(d, c.Cap)
		}
		parts = append(parts, c.Engine+" "+humanDuration(v))
	}
	return strings.Join(parts, ", ")
}

func humanDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return fmt.Sprintf("%d s", d/time.Second)
}
