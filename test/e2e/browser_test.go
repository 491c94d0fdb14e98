//go:build e2e

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// hangGuard bounds one browser action or wait. It only turns a hang into a
// failure with a message; nothing here asserts how fast anything is.
const hangGuard = 2 * time.Minute

// debugCDP (E2E_DEBUG_CDP=1) prints every CDP event of every tab to stderr:
// how the browser reports a request is easiest to learn by watching it.
var debugCDP = os.Getenv("E2E_DEBUG_CDP") != ""

// browser is one headless Chromium with a fresh profile. Host-resolver rules
// send https://api.example.test to the edge's port and every other
// https://*.example.test to the page server's port, both on loopback, so that
// origins are real names with the default port.
type browser struct {
	ctx context.Context
}

func startBrowser(t *testing.T, pki *testPKI, edgeAddr, pagesAddr, artifacts string) *browser {
	t.Helper()
	chromeLog, err := os.Create(filepath.Join(artifacts, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chromeLog.Close() })
	rules := strings.Join([]string{
		"MAP api.example.test:443 " + edgeAddr,
		"MAP *.example.test:443 " + pagesAddr,
		"MAP * ~NOTFOUND", // nothing else resolves: the suite needs no other name
	}, ", ")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(900, 700),
		// Some of these are chromedp defaults too; they are listed because
		// without them Chromium's own background connections are refused by
		// a closed network and slow everything down.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("host-resolver-rules", rules),
		// Accept exactly the suite's leaf key; every other certificate error
		// still fails.
		chromedp.Flag("ignore-certificate-errors-spki-list", pki.spki),
		chromedp.CombinedOutput(chromeLog),
	)
	// chromedp makes a fresh --user-data-dir per browser and, on Linux, kills
	// every process that still uses it when the browser ends.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		closeCtx, cancelClose := context.WithTimeout(ctx, 30*time.Second)
		defer cancelClose()
		if err := chromedp.Cancel(closeCtx); err != nil {
			t.Logf("closing chromium: %v", err)
		}
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v (see %s)", chromiumPath, err, chromeLog.Name())
	}
	version, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("browser: %s", version)
	return &browser{ctx: ctx}
}

// tab is one page, opened on an origin's blank page, with everything the
// browser reported about it over CDP.
type tab struct {
	ctx    context.Context
	origin string
	ev     *tabEvents
}

// open opens a new tab on origin (e.g. "https://app.example.test").
func (b *browser) open(t *testing.T, origin string) *tab {
	t.Helper()
	ev := newTabEvents()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(ev.handle))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}

	navCtx, cancelNav := context.WithTimeout(ctx, hangGuard)
	defer cancelNav()
	resp, err := chromedp.Run(navCtx, chromedp.NavigateResponse(origin+"/"))
	if err != nil {
		t.Fatalf("loading %s/: %v", origin, err)
	}
	if resp.Status != 200 {
		t.Fatalf("loading %s/: status %d", origin, resp.Status)
	}
	got, err := chromedp.Run(navCtx, chromedp.Evaluate[string](`location.origin`))
	if err != nil || got != origin {
		t.Fatalf("the page's origin is %q (%v), want %q", got, err, origin)
	}
	return &tab{ctx: ctx, origin: origin, ev: ev}
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
	Error  string             `json:"error"`   // "TypeError: Failed to fetch" when fetch() rejected
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

// fetch runs fetch() in the page, through the page's own script (pages.go),
// and returns what the page saw.
func (tb *tab) fetch(t *testing.T, r request) outcome {
	t.Helper()
	spec, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(tb.ctx, hangGuard)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](`corsProbe(`+string(spec)+`)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetch %s %s from %s: %v", r.Method, r.URL, tb.origin, err)
	}
	var o outcome
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	method := r.Method
	if method == "" {
		method = "GET"
	}
	t.Logf("page %s: fetch(%s %s, credentials %q): %v", tb.origin, method, r.URL, r.Credentials, o)
	return o
}

// consoleLine waits until the browser has logged a console line containing
// every one of parts, and returns it.
func (tb *tab) consoleLine(t *testing.T, parts ...string) string {
	t.Helper()
	var line string
	tb.ev.wait(t, func() bool {
		for _, l := range tb.ev.console {
			if containsAll(l, parts) {
				line = l
				return true
			}
		}
		return false
	}, fmt.Sprintf("a console line with %q", parts))
	return line
}

// corsError waits until the browser has reported the failure of the
// page's last fetch of url, and returns the reason Chromium gave
// (Network.loadingFailed's corsErrorStatus).
func (tb *tab) corsError(t *testing.T, url string) network.CorsError {
	t.Helper()
	var got network.CorsError
	tb.ev.wait(t, func() bool {
		id, ok := tb.ev.last(url, network.ResourceTypeFetch)
		if !ok {
			return false
		}
		f, ok := tb.ev.failed[id]
		if ok && f.CorsErrorStatus != nil {
			got = f.CorsErrorStatus.CorsError
		}
		return ok
	}, "the failure of "+url)
	return got
}

// received is a response as Chromium's network stack received it, before
// any CORS check or filtering (Network.responseReceivedExtraInfo, which is
// reported for responses that then fail the CORS check too).
type received struct {
	status int
	// headers by lower-case name; repeated header lines are joined by "\n".
	headers map[string]string
	// blockedCookies are the Set-Cookie lines the browser refused to store.
	blockedCookies []string
}

// response waits until the browser has received the response to the
// page's last fetch of url and returns it.
func (tb *tab) response(t *testing.T, url string) received {
	t.Helper()
	return tb.receivedFor(t, url, network.ResourceTypeFetch)
}

// preflight waits until the browser has received the response to the last
// CORS preflight it sent for url and returns it.
func (tb *tab) preflight(t *testing.T, url string) received {
	t.Helper()
	return tb.receivedFor(t, url, network.ResourceTypePreflight)
}

func (tb *tab) receivedFor(t *testing.T, url string, typ network.ResourceType) received {
	t.Helper()
	var got received
	tb.ev.wait(t, func() bool {
		id, ok := tb.ev.last(url, typ)
		if !ok {
			return false
		}
		r, ok := tb.ev.received[id]
		if ok {
			got = received{status: int(r.StatusCode), headers: map[string]string{}}
			for k, v := range r.Headers {
				got.headers[strings.ToLower(k)] = fmt.Sprint(v)
			}
			for _, c := range r.BlockedCookies {
				got.blockedCookies = append(got.blockedCookies, c.CookieLine)
			}
		}
		return ok
	}, fmt.Sprintf("the response to the %s of %s", typ, url))
	return got
}

// saveArtifacts writes a screenshot of the tab and every console line to
// dir, and returns their paths.
func (tb *tab) saveArtifacts(t *testing.T, dir, name string) (png, console string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, hangGuard)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	png = filepath.Join(dir, name+".png")
	console = filepath.Join(dir, name+".console.log")
	if err := os.WriteFile(png, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(console, []byte(strings.Join(tb.ev.consoleLines(), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return png, console
}

// tabEvents collects a tab's CDP events. handle runs in chromedp's read loop,
// so it only records; wait is woken on every event.
type tabEvents struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every event
	console  []string
	requests []fetchRequest
	received map[network.RequestID]*network.EventResponseReceivedExtraInfo
	failed   map[network.RequestID]*network.EventLoadingFailed
}

type fetchRequest struct {
	id  network.RequestID
	url string
	typ network.ResourceType // Fetch, or Preflight for the browser's own OPTIONS
}

func newTabEvents() *tabEvents {
	return &tabEvents{
		changed:  make(chan struct{}),
		received: map[network.RequestID]*network.EventResponseReceivedExtraInfo{},
		failed:   map[network.RequestID]*network.EventLoadingFailed{},
	}
}

func (e *tabEvents) handle(ev any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if debugCDP {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(os.Stderr, "CDP %T %s\n", ev, b)
	}
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if a.Value != nil {
				var s string
				if json.Unmarshal(a.Value, &s) == nil {
					parts = append(parts, s)
					continue
				}
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		e.console = append(e.console, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " ")))
	case *log.EventEntryAdded:
		e.console = append(e.console, fmt.Sprintf("%s (%s): %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text))
	case *network.EventRequestWillBeSent:
		typ := ev.Type
		// Chromium reports its CORS preflight as type "Other" with a
		// "preflight" initiator (only the response event says "Preflight").
		if ev.Initiator != nil && ev.Initiator.Type == network.InitiatorTypePreflight {
			typ = network.ResourceTypePreflight
		}
		e.requests = append(e.requests, fetchRequest{id: ev.RequestID, url: ev.Request.URL, typ: typ})
	case *network.EventResponseReceivedExtraInfo:
		e.received[ev.RequestID] = ev
	case *network.EventLoadingFailed:
		e.failed[ev.RequestID] = ev
	default:
		return
	}
	close(e.changed)
	e.changed = make(chan struct{})
}

// last is the id of the last request of type typ (Fetch: a fetch() call;
// Preflight: the browser's CORS preflight) for url. The caller holds mu.
func (e *tabEvents) last(url string, typ network.ResourceType) (network.RequestID, bool) {
	for i := len(e.requests) - 1; i >= 0; i-- {
		if r := e.requests[i]; r.url == url && r.typ == typ {
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

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
