//go:build e2e

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumBrowser is one headless Chromium with a fresh profile, driven over
// CDP by chromedp.
type chromiumBrowser struct {
	ctx context.Context
}

func startChromium(t *testing.T, env browserEnv) browser {
	t.Helper()
	chromeLog, err := os.Create(filepath.Join(env.artifacts, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chromeLog.Close() })
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
		// Every name goes to the suite's CONNECT proxy, the one host mapping
		// all three engines share; it refuses every name but the suite's.
		chromedp.ProxyServer("http://"+env.proxy),
		// Accept exactly the suite's leaf key; every other certificate error
		// still fails.
		chromedp.Flag("ignore-certificate-errors-spki-list", env.pki.spki),
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
	t.Logf("chromium: %s", version)
	return &chromiumBrowser{ctx: ctx}
}

type chromiumTab struct{ ctx context.Context }

func (c *chromiumTab) eval(ctx context.Context, expr string) (string, error) {
	// chromedp runs an action on the tab's context; ctx bounds it.
	runCtx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	return chromedp.Run(runCtx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
}

func (c *chromiumTab) screenshot(ctx context.Context) ([]byte, error) {
	runCtx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	return chromedp.Run(runCtx, chromedp.CaptureScreenshot())
}

func (b *chromiumBrowser) open(t *testing.T, origin string) *tab {
	t.Helper()
	ev := newTabEvents()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(func(e any) { chromiumEvent(ev, e) }))
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
	tb := &tab{engine: chromium, origin: origin, drv: &chromiumTab{ctx: ctx}, ev: ev}
	tb.checkLoaded(t)
	return tb
}

// chromiumEvent records one CDP event. It runs in chromedp's read loop.
func chromiumEvent(e *tabEvents, ev any) {
	if debugEvents {
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
		e.record(func() {
			e.console = append(e.console, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " ")))
		})
	case *log.EventEntryAdded:
		line := fmt.Sprintf("%s (%s): %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text)
		if ev.Entry.Source == log.EntrySourceNetwork && ev.Entry.URL != "" {
			// "Failed to load resource" does not name the resource: the
			// entry's URL does.
			line += " [" + ev.Entry.URL + "]"
		}
		e.record(func() { e.console = append(e.console, line) })
	case *network.EventRequestWillBeSent:
		kind := kindOther
		switch {
		// Chromium reports its CORS preflight as type "Other" with a
		// "preflight" initiator (only the response event says "Preflight").
		case ev.Initiator != nil && ev.Initiator.Type == network.InitiatorTypePreflight:
			kind = kindPreflight
		case ev.Type == network.ResourceTypeFetch:
			kind = kindFetch
		}
		e.record(func() {
			e.requests = append(e.requests, sentRequest{id: string(ev.RequestID), url: ev.Request.URL, kind: kind})
		})
	case *network.EventResponseReceivedExtraInfo:
		// Reported for responses that then fail the CORS check too: the
		// response as received, before any filtering.
		r := received{status: int(ev.StatusCode), headers: map[string]string{}}
		for k, v := range ev.Headers {
			r.headers[strings.ToLower(k)] = fmt.Sprint(v)
		}
		for _, c := range ev.BlockedCookies {
			r.blockedCookies = append(r.blockedCookies, c.CookieLine)
		}
		e.record(func() { e.received[string(ev.RequestID)] = r })
	case *network.EventLoadingFailed:
		reason := ev.ErrorText
		if ev.CorsErrorStatus != nil {
			reason = string(ev.CorsErrorStatus.CorsError)
		}
		e.record(func() { e.failed[string(ev.RequestID)] = reason })
	}
}
