//go:build e2e

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// hangGuard bounds one browser action or wait. It only turns a hang into a
// failure with a message; nothing here asserts how fast anything is.
const hangGuard = 2 * time.Minute

// debugEvents (E2E_DEBUG_EVENTS=1, or E2E_DEBUG_CDP=1 as before) prints every
// protocol event of every tab to stderr: how a browser reports a request is
// easiest to learn by watching it.
var debugEvents = os.Getenv("E2E_DEBUG_EVENTS") != "" || os.Getenv("E2E_DEBUG_CDP") != ""

// The engines the suite drives, and what each can observe beside the page.
const (
	chromium = "chromium" // CDP, through chromedp
	firefox  = "firefox"  // WebDriver BiDi, Firefox's own remote agent
	webkit   = "webkit"   // W3C WebDriver, WebKitWebDriver driving MiniBrowser
)

// browser is one engine, started for one suite. Every engine reaches the
// suite's names through the same CONNECT proxy (proxy_test.go) and trusts
// exactly the suite's certificate, each in its own precise way.
type browser interface {
	// open opens a page on origin (e.g. "https://app.example.test") for the
	// scenario t; the tab closes when t ends.
	open(t *testing.T, origin string) *tab
}

// browserEnv is what every engine is started with.
type browserEnv struct {
	pki       *testPKI
	proxy     string // host:port of the CONNECT proxy
	artifacts string
	edge      *recorder // what the edge answered: the closest equivalent for engines that report no network events
}

// tabDriver is one page in one engine.
type tabDriver interface {
	// eval evaluates a JavaScript expression whose value (or the value its
	// promise resolves to) is a string, and returns that string.
	eval(ctx context.Context, expr string) (string, error)
	screenshot(ctx context.Context) ([]byte, error)
}

// tab is one page, opened on an origin's page, with everything its engine
// reported about it. ev is nil for an engine that reports no console and no
// network events (WebKitWebDriver): what such a tab cannot observe, it says
// by name (t.Log) and falls back to the closest equivalent it has.
type tab struct {
	engine string
	origin string
	drv    tabDriver
	ev     *tabEvents
	edge   *recorder
	// mark is how many console lines there were when the last fetch()
	// began: the lines about that fetch come after it.
	mark int
}

// request is what the page's JavaScript passes to fetch().
type request struct {
	URL         string            `json:"url"`
	Method      string            `json:"method,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Body        string            `json:"body,omitempty"`
	Credentials string            `json:"credentials,omitempty"` // omit | same-origin | include
	// Read lists response header names the page reads with
	// response.headers.get.
	Read []string `json:"read,omitempty"`
}

// outcome is what the page's JavaScript saw: a readable response, or the
// error fetch() rejected with.
type outcome struct {
	OK     bool               `json:"ok"`
	Status int                `json:"status"`
	Type   string             `json:"type"` // Response.type: "cors" for a readable cross-origin response
	Body   string             `json:"body"`
	Read   map[string]*string `json:"read"`    // header name → headers.get() (nil: null)
	Names  []string           `json:"visible"` // every header name the page can see
	Error  string             `json:"error"`   // e.g. "TypeError: Failed to fetch" when fetch() rejected
}

func (o outcome) String() string {
	if o.Error != "" {
		return "rejected with " + o.Error
	}
	return fmt.Sprintf("status %d, type %s, headers %v, body %.120q", o.Status, o.Type, o.Names, o.Body)
}

// blocked reports whether fetch() rejected the way the Fetch standard says a
// CORS failure rejects: a network error, which is a TypeError to script.
func (o outcome) blocked() bool { return strings.HasPrefix(o.Error, "TypeError: ") }

func (o outcome) header(name string) string {
	if v := o.Read[name]; v != nil {
		return *v
	}
	return "<null>"
}

func (o outcome) echo(t *testing.T) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(o.Body), &e); err != nil {
		t.Fatalf("the page read %q, not the upstream's JSON echo: %v", o.Body, err)
	}
	return e
}

// typeErrors is the message each engine's fetch() rejects with on a CORS
// failure: the only part of a failure the page itself can read.
var typeErrors = map[string]string{
	chromium: "TypeError: Failed to fetch",
	firefox:  "TypeError: NetworkError when attempting to fetch resource.",
	webkit:   "TypeError: Load failed",
}

// checkLoaded fails unless the tab shows the suite's page at its origin (an
// engine's own error page has another origin or title).
func (tb *tab) checkLoaded(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	got, err := tb.drv.eval(ctx, `location.origin + " " + document.title`)
	if want := tb.origin + " corsgate e2e"; err != nil || got != want {
		t.Fatalf("%s: the page is %q (%v), want %q", tb.engine, got, err, want)
	}
}

// fetch runs fetch() in the page, through the page's own script (edge_test.go),
// and returns what the page saw.
func (tb *tab) fetch(t *testing.T, r request) outcome {
	t.Helper()
	spec, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if tb.ev != nil {
		tb.mark = len(tb.ev.consoleLines())
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	raw, err := tb.drv.eval(ctx, `corsProbe(`+string(spec)+`).then(JSON.stringify)`)
	if err != nil {
		t.Fatalf("%s: fetch %s %s from %s: %v", tb.engine, r.Method, r.URL, tb.origin, err)
	}
	var o outcome
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	method := r.Method
	if method == "" {
		method = "GET"
	}
	t.Logf("%s page %s: fetch(%s %s, credentials %q): %v", tb.engine, tb.origin, method, r.URL, r.Credentials, o)
	return o
}

// cannot says, by name, what this tab's engine cannot observe: never a
// silent skip.
func (tb *tab) cannot(t *testing.T, what string) {
	t.Helper()
	t.Logf("%s cannot observe %s: not checked in this engine", tb.engine, what)
}

// corsReason checks the machine-readable reason Chromium gives for the
// failure of the page's last fetch of url (Network.loadingFailed's
// corsErrorStatus): want is its exact name, or a prefix ending in "*".
// Only Chromium has one; the others say so (their console line, checked
// against explain's wording, is the closest equivalent).
func (tb *tab) corsReason(t *testing.T, url, want string) {
	t.Helper()
	if tb.engine != chromium {
		tb.cannot(t, "a machine-readable CORS error reason (Chromium's corsErrorStatus "+want+"; "+
			map[string]string{firefox: "BiDi reports none", webkit: "WebKitWebDriver reports no network events"}[tb.engine]+")")
		return
	}
	var got string
	tb.ev.wait(t, func() bool {
		id, ok := tb.ev.last(url, kindFetch)
		if !ok {
			return false
		}
		reason, ok := tb.ev.failed[id]
		got = reason
		return ok
	}, "the failure of "+url)
	if p, ok := strings.CutSuffix(want, "*"); ok && strings.HasPrefix(got, p) || got == want {
		return
	}
	t.Errorf("Chromium's CORS error = %q, want %q", got, want)
}

// received is a response as the browser's network stack received it, before
// any CORS check or filtering.
type received struct {
	status int
	// headers by lower-case name; repeated header lines are joined by "\n".
	headers map[string]string
	// blockedCookies are the Set-Cookie lines the browser refused to store
	// (Chromium only).
	blockedCookies []string
}

// response waits until the browser has received the response to the page's
// last fetch of url and returns it. For an engine without network events it
// is the response the edge recorded sending, the closest equivalent: no
// proxy stands between the edge and the browser but the CONNECT tunnel.
func (tb *tab) response(t *testing.T, url string) received {
	t.Helper()
	return tb.receivedFor(t, url, kindFetch)
}

// preflight waits until the browser has received the response to the last
// CORS preflight it sent for url and returns it.
func (tb *tab) preflight(t *testing.T, url string) received {
	t.Helper()
	return tb.receivedFor(t, url, kindPreflight)
}

func (tb *tab) receivedFor(t *testing.T, url string, kind requestKind) received {
	t.Helper()
	if tb.ev == nil {
		tb.cannot(t, fmt.Sprintf("the %s response for %s (no network events): the edge's record of what it sent stands in", kind, url))
		return tb.edgeSent(t, url, kind)
	}
	var got received
	tb.ev.wait(t, func() bool {
		id, ok := tb.ev.last(url, kind)
		if !ok {
			return false
		}
		r, ok := tb.ev.received[id]
		if ok {
			got = r
		}
		return ok
	}, fmt.Sprintf("the response to the %s of %s", kind, url))
	return got
}

// edgeSent is the last response the edge recorded for url: the OPTIONS for a
// preflight, any other method for a fetch.
func (tb *tab) edgeSent(t *testing.T, url string, kind requestKind) received {
	t.Helper()
	path := strings.TrimPrefix(url, api)
	deadline := time.Now().Add(hangGuard)
	for {
		all := tb.edge.matching("", path)
		for _, a := range slices.Backward(all) {
			if (a.Method == "OPTIONS") == (kind == kindPreflight) {
				r := received{status: a.Status, headers: map[string]string{}}
				for k, v := range a.RespHeader {
					r.headers[strings.ToLower(k)] = strings.Join(v, "\n")
				}
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge never answered the %s of %s", kind, url)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not an assertion
	}
}

// saveArtifacts writes a screenshot of the tab and every console line to
// dir, and returns their paths.
func (tb *tab) saveArtifacts(t *testing.T, dir, name string) (png, console string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	shot, err := tb.drv.screenshot(ctx)
	if err != nil {
		t.Fatalf("%s: screenshot: %v", tb.engine, err)
	}
	png = filepath.Join(dir, tb.engine+"-"+name+".png")
	console = filepath.Join(dir, tb.engine+"-"+name+".console.log")
	if err := os.WriteFile(png, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	var lines []string
	if tb.ev != nil {
		lines = tb.ev.consoleLines()
	} else {
		lines = []string{"(" + tb.engine + ": the console cannot be read through WebKitWebDriver)"}
	}
	if err := os.WriteFile(console, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return png, console
}

// requestKind tells the page's own fetch() from the browser's preflight.
type requestKind int

const (
	kindFetch requestKind = iota
	kindPreflight
	kindOther // navigations, favicons: never asserted on
)

func (k requestKind) String() string {
	return map[requestKind]string{kindFetch: "fetch", kindPreflight: "preflight", kindOther: "other"}[k]
}

// tabEvents collects a tab's protocol events, whichever engine reports them.
// The engine's reader only records; wait is woken on every event.
type tabEvents struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every event
	console  []string
	requests []sentRequest
	received map[string]received
	failed   map[string]string // request id → the engine's failure reason
}

type sentRequest struct {
	id   string
	url  string
	kind requestKind
}

func newTabEvents() *tabEvents {
	return &tabEvents{changed: make(chan struct{}), received: map[string]received{}, failed: map[string]string{}}
}

// record runs f with mu held and wakes every waiter.
func (e *tabEvents) record(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f()
	close(e.changed)
	e.changed = make(chan struct{})
}

// last is the id of the last request of kind for url. The caller holds mu.
func (e *tabEvents) last(url string, kind requestKind) (string, bool) {
	for _, r := range slices.Backward(e.requests) {
		if r.url == url && r.kind == kind {
			return r.id, true
		}
	}
	return "", false
}

func (e *tabEvents) consoleLines() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.console...)
}

// wait blocks until cond (called with mu held) is true; the hang guard turns
// a condition that never comes into a failure naming what was awaited.
func (e *tabEvents) wait(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.NewTimer(hangGuard)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		ok := cond()
		changed := e.changed
		e.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("the browser never reported %s; console so far:\n%s", what, strings.Join(e.consoleLines(), "\n"))
		}
	}
}
