//go:build e2e

package e2e_test

import (
	"fmt"
	"maps"
	"net/textproto"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/corsgate/corsgate/internal/explain"
)

// words is the wording table: for every failure a scenario provokes, the
// line the engine printed beside the one `corsgate explain` prints for the
// same request and response. It is written to E2E_ARTIFACTS_DIR/words.tsv
// and to the log at the end of the run.
var words struct {
	mu   sync.Mutex
	rows map[string]wordsRow // by engine, failure class and scenario
}

type wordsRow struct {
	engine, class, scenario, url, real, explain string
}

// saysWhy checks what the engine printed for the failure of the page's last
// fetch of r (its preflight when preflight is set) against explain's
// message for the same exchange: the request, and the response the browser
// received (its own network events; the edge's record for WebKit). A
// difference fails the scenario: explain must speak each browser's words.
func (tb *tab) saysWhy(t *testing.T, r request, preflight bool) {
	t.Helper()
	got := tb.response
	if preflight {
		got = tb.preflight
	}
	rec := got(t, r.URL)
	x := explain.Exchange{
		Method: r.Method, URL: r.URL, Origin: tb.origin, Credentials: r.Credentials == "include",
		Preflight: preflight, Status: rec.status,
	}
	if x.Method == "" {
		x.Method = "GET"
	}
	for n := range r.Headers {
		x.RequestHeaders = append(x.RequestHeaders, n)
	}
	for n, v := range rec.headers {
		for line := range strings.SplitSeq(v, "\n") {
			x.Headers = append(x.Headers, textproto.CanonicalMIMEHeaderKey(n)+": "+line)
		}
	}
	b, err := explain.Judge(x)
	if err != nil {
		t.Fatal(err)
	}
	if b.Allowed {
		t.Fatalf("explain says the browser allows %s %s from %s (%+v); the %s page was refused", x.Method, x.URL, x.Origin, x, tb.engine)
	}
	want := b.Message(tb.engine)
	if tb.ev == nil {
		tb.cannot(t, fmt.Sprintf("its console, so explain's WebKit wording for %s is not compared (explain: %q)", b.Failure, want))
		addWords(wordsRow{engine: tb.engine, class: b.Failure, scenario: t.Name(), url: r.URL, real: "(console not readable)", explain: want})
		return
	}
	line := tb.failureLine(t, r.URL)
	addWords(wordsRow{engine: tb.engine, class: b.Failure, scenario: t.Name(), url: r.URL, real: line, explain: want})
	if line != want {
		t.Errorf("%s printed (%s):\n  %s\nexplain prints:\n  %s", tb.engine, b.Failure, line, want)
	}
	// And the other way: explain reads the line pasted back to it.
	if c, ok := explain.ReadConsole(line); !ok || c.Engine != tb.engine || c.Failure != b.Failure {
		t.Errorf("explain reads %s's line as %+v (recognised: %v), want %s from %s", tb.engine, c, ok, b.Failure, tb.engine)
	}
}

// failureLine waits for the first console error, since the page's last
// fetch() began, that names url, and returns its text.
func (tb *tab) failureLine(t *testing.T, url string) string {
	t.Helper()
	var line string
	names := func(l string) bool {
		// Chromium quotes the URL '…'; Firefox ends it with ". " or quotes
		// it ‘…’.
		return strings.Contains(l, "'"+url+"'") || strings.Contains(l, url+". ") || strings.Contains(l, "‘"+url+"’")
	}
	tb.ev.wait(t, func() bool {
		for _, l := range tb.ev.console[min(tb.mark, len(tb.ev.console)):] {
			if strings.HasPrefix(l, "error (javascript): ") && names(l) {
				line = strings.TrimPrefix(l, "error (javascript): ")
				return true
			}
		}
		return false
	}, "a console error naming "+url)
	return line
}

// addWords keeps one row per engine, failure class and scenario.
func addWords(r wordsRow) {
	words.mu.Lock()
	defer words.mu.Unlock()
	if words.rows == nil {
		words.rows = map[string]wordsRow{}
	}
	words.rows[r.engine+"\x00"+r.class+"\x00"+r.scenario+"\x00"+r.url] = r
}

// writeWords writes the wording table to dir/words.tsv and returns it as
// text, one row per failure class per engine per scenario.
func writeWords(dir string) string {
	words.mu.Lock()
	defer words.mu.Unlock()
	keys := make([]string, 0, len(words.rows))
	for k := range words.rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("engine\tfailure\tscenario\turl\tbrowser printed\texplain prints\tsame\n")
	for _, k := range keys {
		r := words.rows[k]
		same := fmt.Sprint(r.real == r.explain)
		if r.explain == "" || strings.HasPrefix(r.real, "(") || strings.HasPrefix(r.explain, "(") {
			same = "n/a" // nothing to compare: no console, no captured wording, or recognition only
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.engine, r.class, r.scenario, r.url, r.real, r.explain, same)
	}
	_ = os.WriteFile(filepath.Join(dir, "words.tsv"), []byte(b.String()), 0o644)
	return b.String()
}

// wordsAnswer is a crafted upstream answer that provokes one failure class
// (or, for the Authorization wildcard, none) in a browser.
type wordsAnswer struct {
	preflightStatus int         // 0: 204
	preflight       [][2]string // the preflight's answer
	actual          [][2]string // the actual response's
}

func (a wordsAnswer) headers(preflight bool) [][2]string {
	if preflight {
		return a.preflight
	}
	return a.actual
}

func (a wordsAnswer) status(preflight bool) int {
	if preflight && a.preflightStatus != 0 {
		return a.preflightStatus
	}
	if preflight {
		return 204
	}
	return 200
}

// wordsAnswers, by the last path segment under /dryrun/words/.
var wordsAnswers = map[string]wordsAnswer{
	"mismatch":  {actual: [][2]string{{"Access-Control-Allow-Origin", partner}}},
	"multiple":  {actual: [][2]string{{"Access-Control-Allow-Origin", app + ", " + partner}}},
	"no-acac":   {actual: [][2]string{{"Access-Control-Allow-Origin", app}}},
	"method":    {preflight: [][2]string{{"Access-Control-Allow-Origin", app}, {"Access-Control-Allow-Methods", "GET, POST"}, {"Access-Control-Allow-Headers", "content-type"}}},
	"header":    {preflight: [][2]string{{"Access-Control-Allow-Origin", app}, {"Access-Control-Allow-Methods", "PUT"}, {"Access-Control-Allow-Headers", "content-type"}}},
	"redirect":  {preflightStatus: 307, preflight: [][2]string{{"Location", api + "/dryrun/words/status"}, {"Access-Control-Allow-Origin", app}, {"Access-Control-Allow-Methods", "PUT"}, {"Access-Control-Allow-Headers", "content-type"}}},
	"two-lines": {actual: [][2]string{{"Access-Control-Allow-Origin", app}, {"Access-Control-Allow-Origin", partner}}},
	"status":    {preflightStatus: 500, preflight: [][2]string{{"Access-Control-Allow-Origin", app}, {"Access-Control-Allow-Methods", "PUT"}, {"Access-Control-Allow-Headers", "content-type"}}},
	"auth-wildcard": {
		preflight: [][2]string{{"Access-Control-Allow-Origin", app}, {"Access-Control-Allow-Methods", "PUT"}, {"Access-Control-Allow-Headers", "*"}},
		actual:    [][2]string{{"Access-Control-Allow-Origin", app}},
	},
}

// browserWords provokes every failure class explain knows that an upstream
// (or another proxy) can cause, with crafted answers passed through
// untouched by a DryRun policy, and holds each browser's console line
// against explain's for the same exchange. (Missing Access-Control-Allow-
// Origin, on a simple request and on a preflight, and the wildcard with
// credentials come from the other scenarios, answered by corsgate itself.)
func browserWords(t *testing.T, s *suite) {
	tb := s.browser.open(t, app)
	put := func(path string, headers map[string]string) request {
		h := map[string]string{"Content-Type": "application/json"}
		maps.Copy(h, headers)
		return request{URL: api + "/dryrun/words/" + path, Method: "PUT", Body: `{}`, Headers: h}
	}
	for _, c := range []struct {
		r         request
		preflight bool
	}{
		{r: request{URL: api + "/dryrun/words/mismatch"}},
		{r: request{URL: api + "/dryrun/words/multiple"}},
		{r: request{URL: api + "/dryrun/words/two-lines"}},
		{r: request{URL: api + "/dryrun/words/no-acac", Credentials: "include"}},
		{r: put("method", nil), preflight: true},
		{r: put("header", map[string]string{"X-Request-Id": "1"}), preflight: true},
		{r: put("status", nil), preflight: true},
		{r: put("redirect", nil), preflight: true},
	} {
		blocked(t, tb.fetch(t, c.r))
		tb.saysWhy(t, c.r, c.preflight)
	}

	// No response at all (the proxy refuses the name): a network error,
	// which the page sees exactly as it sees a CORS failure. explain
	// recognises each engine's line and says so.
	down := request{URL: "https://unreachable.invalid/words"}
	if o := tb.fetch(t, down); o.Error != typeErrors[tb.engine] {
		t.Errorf("fetch() of an unreachable name rejected with %q, want %s's %s", o.Error, tb.engine, typeErrors[tb.engine])
	}
	tb.networkErrorSaid(t, down.URL)

	// Access-Control-Allow-Headers: * does not cover Authorization in the
	// Fetch standard (§2.2.2, a CORS non-wildcard request-header name), yet
	// every engine accepts it (whatwg/fetch#1919). corsgate never relies on
	// it (it lists authorization by name); explain says so when an
	// upstream's answer does.
	r := put("auth-wildcard", map[string]string{"Authorization": "Bearer t"})
	readable(t, tb.fetch(t, r), 200)
	pre := tb.preflight(t, r.URL)
	x := explain.Exchange{Method: "PUT", URL: r.URL, Origin: app, RequestHeaders: []string{"authorization", "content-type"}, Preflight: true, Status: pre.status}
	for n, v := range pre.headers {
		x.Headers = append(x.Headers, n+": "+v)
	}
	b, err := explain.Judge(x)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Allowed || !strings.Contains(b.Note, "whatwg/fetch#1919") {
		t.Errorf("%s let the page send Authorization on Access-Control-Allow-Headers: *; explain says allowed %v, note %q: want allowed, with a note on whatwg/fetch#1919", tb.engine, b.Allowed, b.Note)
	}
}

// networkErrorSaid waits for the console line the engine printed for the
// page's last fetch, which reached no server, and checks that explain
// recognises it as a network error.
func (tb *tab) networkErrorSaid(t *testing.T, url string) {
	t.Helper()
	if tb.ev == nil {
		tb.cannot(t, "its console, so its network-error line for "+url+" is not read")
		addWords(wordsRow{engine: tb.engine, class: "network-error", scenario: t.Name(), url: url, real: "(console not readable)"})
		return
	}
	var line string
	tb.ev.wait(t, func() bool {
		for _, l := range tb.ev.console[min(tb.mark, len(tb.ev.console)):] {
			// Chromium's line ends with the URL in brackets (chromium_test.go),
			// Firefox's names it: a late line about an earlier fetch is not it.
			if c, ok := explain.ReadConsole(l); ok && c.Failure == "network-error" && strings.Contains(l, url) {
				line = l
				return true
			}
		}
		return false
	}, "a console line explain reads as a network error, for "+url)
	addWords(wordsRow{engine: tb.engine, class: "network-error", scenario: t.Name(), url: url, real: line, explain: "(recognised: network-error)"})
}
