//go:build e2e

package e2e_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corsgate/corsgate/test/e2e/internal/bidi"
)

// firefoxBrowser is one headless Firefox (Debian's firefox-esr) with a fresh
// profile, driven over WebDriver BiDi by its own remote agent: no
// geckodriver, no display.
type firefoxBrowser struct {
	conn *bidi.Conn
	// first is the tab Firefox starts with. It stays open, blank, as the
	// reference for every new tab: without one, Firefox opens a tab next to
	// the last one used, which a finished scenario may just have closed.
	first string
	mu    sync.Mutex
	tabs  map[string]*tabEvents // browsing context id → its events
}

// firefoxPrefs quiet Firefox's own network traffic (the remote agent's
// "recommended preferences" cover most of the rest); the proxy refuses it
// anyway, but every refused connection is a retry loop in the browser.
const firefoxPrefs = `user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.normandy.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.http.speculative-parallel-limit", 0);
user_pref("services.settings.server", "http://127.0.0.1:9/");
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.region.network.url", "");
user_pref("geo.provider.network.url", "");
user_pref("dom.push.connection.enabled", false);
user_pref("security.OCSP.enabled", 0);
user_pref("media.gmp-manager.updateEnabled", false);
`

var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

func startFirefox(t *testing.T, env browserEnv) browser {
	t.Helper()
	// A fresh profile that trusts exactly the suite's CA (certutil into the
	// profile's NSS database): acceptInsecureCerts stays false, so every
	// other certificate error still fails.
	profile := t.TempDir()
	caFile := filepath.Join(profile, "corsgate-e2e-ca.pem")
	if err := os.WriteFile(caFile, env.pki.caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + profile, "--empty-password"},
		{"-A", "-d", "sql:" + profile, "-n", "corsgate-e2e-ca", "-t", "C,,", "-i", caFile},
	} {
		if out, err := exec.Command(certutilPath, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(firefoxPrefs), 0o644); err != nil {
		t.Fatal(err)
	}

	logFile, err := os.Create(filepath.Join(env.artifacts, "firefox.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	cmd := exec.Command(firefoxPath, "--headless", "--remote-debugging-port=0", "--profile", profile, "--no-remote")
	cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its content processes join the group
	cmd.Stdout = logFile
	stderr, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	proc := startProcess(t, cmd)
	w.Close()

	// The remote agent prints the WebSocket address it listens on.
	wsURL := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stderr, logFile))
		for sc.Scan() {
			if m := bidiListening.FindStringSubmatch(sc.Text()); m != nil {
				wsURL <- m[1]
				break
			}
		}
		io.Copy(logFile, stderr)
	}()
	var addr string
	select {
	case addr = <-wsURL:
	case <-proc.done:
		t.Fatalf("firefox exited before its remote agent listened: %v; see %s", proc.err, logFile.Name())
	case <-time.After(hangGuard):
		t.Fatalf("firefox's remote agent never listened; see %s", logFile.Name())
	}

	b := &firefoxBrowser{tabs: map[string]*tabEvents{}}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	conn, err := bidi.Dial(ctx, addr+"/session", b.event)
	if err != nil {
		t.Fatal(err)
	}
	b.conn = conn
	t.Cleanup(func() { b.close(t, proc) })
	var session struct {
		Capabilities struct {
			BrowserName    string `json:"browserName"`
			BrowserVersion string `json:"browserVersion"`
			UserAgent      string `json:"userAgent"`
		} `json:"capabilities"`
	}
	caps := map[string]any{
		"acceptInsecureCerts": false,
		"proxy":               map[string]any{"proxyType": "manual", "sslProxy": env.proxy, "httpProxy": env.proxy},
	}
	if err := conn.Call(ctx, "session.new", map[string]any{"capabilities": map[string]any{"alwaysMatch": caps}}, &session); err != nil {
		t.Fatal(err)
	}
	t.Logf("firefox: %s %s, %s", session.Capabilities.BrowserName, session.Capabilities.BrowserVersion, session.Capabilities.UserAgent)
	if err := conn.Call(ctx, "session.subscribe", map[string]any{"events": []string{
		"log.entryAdded", "network.beforeRequestSent", "network.responseStarted", "network.responseCompleted", "network.fetchError",
	}}, nil); err != nil {
		t.Fatal(err)
	}
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := conn.Call(ctx, "browsingContext.getTree", map[string]any{"maxDepth": 0}, &tree); err != nil || len(tree.Contexts) == 0 {
		t.Fatalf("firefox: its first tab: %v (%d tabs)", err, len(tree.Contexts))
	}
	b.first = tree.Contexts[0].Context
	return b
}

// close ends the session with browser.close, after which Firefox exits by
// itself; a Firefox that does not is killed, and that is a failure.
func (b *firefoxBrowser) close(t *testing.T, proc *process) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.conn.Call(ctx, "browser.close", nil, nil); err != nil {
		t.Logf("firefox: browser.close: %v", err)
	}
	b.conn.Close()
	select {
	case <-proc.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-proc.cmd.Process.Pid, syscall.SIGKILL)
		<-proc.done
		t.Errorf("firefox did not exit within 30s of browser.close and was killed")
	}
}

func (b *firefoxBrowser) open(t *testing.T, origin string) *tab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	var created struct {
		Context string `json:"context"`
	}
	if err := b.conn.Call(ctx, "browsingContext.create", map[string]any{"type": "tab", "referenceContext": b.first}, &created); err != nil {
		t.Fatalf("firefox: opening a tab: %v", err)
	}
	ev := newTabEvents()
	b.mu.Lock()
	b.tabs[created.Context] = ev
	b.mu.Unlock()
	// Tabs stay open until browser.close: closing one while a parallel
	// scenario opens another made Firefox 153 fail the new tab's
	// browsingContext.create with DiscardedBrowsingContextError.
	if err := b.conn.Call(ctx, "browsingContext.navigate", map[string]any{
		"context": created.Context, "url": origin + "/", "wait": "complete",
	}, nil); err != nil {
		t.Fatalf("firefox: loading %s/: %v", origin, err)
	}
	tb := &tab{engine: firefox, origin: origin, drv: &firefoxTab{b: b, context: created.Context}, ev: ev}
	tb.checkLoaded(t)
	return tb
}

type firefoxTab struct {
	b       *firefoxBrowser
	context string
}

func (f *firefoxTab) eval(ctx context.Context, expr string) (string, error) {
	var res struct {
		Type   string `json:"type"` // success | exception
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := f.b.conn.Call(ctx, "script.evaluate", map[string]any{
		"expression": expr, "target": map[string]string{"context": f.context}, "awaitPromise": true,
	}, &res); err != nil {
		return "", err
	}
	if res.Type != "success" {
		return "", fmt.Errorf("script.evaluate: %s", res.ExceptionDetails.Text)
	}
	if res.Result.Type != "string" {
		return "", fmt.Errorf("script.evaluate: a %s, not a string", res.Result.Type)
	}
	var s string
	err := json.Unmarshal(res.Result.Value, &s)
	return s, err
}

func (f *firefoxTab) screenshot(ctx context.Context) ([]byte, error) {
	var res struct {
		Data string `json:"data"`
	}
	if err := f.b.conn.Call(ctx, "browsingContext.captureScreenshot", map[string]any{"context": f.context}, &res); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(res.Data)
}

// bidiHeaders are BiDi's header list: values are BiDi strings.
type bidiHeaders []struct {
	Name  string `json:"name"`
	Value struct {
		Value string `json:"value"`
	} `json:"value"`
}

func (hs bidiHeaders) get(name string) (string, bool) {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value.Value, true
		}
	}
	return "", false
}

// event records one BiDi event in its tab's events. It runs on the
// connection's read loop.
func (b *firefoxBrowser) event(method string, params json.RawMessage) {
	if debugEvents {
		fmt.Fprintf(os.Stderr, "BiDi %s %s\n", method, params)
	}
	var p struct {
		Context string `json:"context"`
		Source  struct {
			Context string `json:"context"`
		} `json:"source"`
		// log.entryAdded
		Type  string `json:"type"`
		Level string `json:"level"`
		Text  string `json:"text"`
		// network.*
		Request struct {
			ID      string      `json:"request"`
			URL     string      `json:"url"`
			Method  string      `json:"method"`
			Headers bidiHeaders `json:"headers"`
		} `json:"request"`
		Navigation *string `json:"navigation"`
		Response   struct {
			Status  int         `json:"status"`
			Headers bidiHeaders `json:"headers"`
		} `json:"response"`
		ErrorText string `json:"errorText"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return
	}
	ctxID := p.Context
	if method == "log.entryAdded" {
		ctxID = p.Source.Context
	}
	b.mu.Lock()
	e := b.tabs[ctxID]
	b.mu.Unlock()
	if e == nil {
		return
	}
	switch method {
	case "log.entryAdded":
		e.record(func() { e.console = append(e.console, fmt.Sprintf("%s (%s): %s", p.Level, p.Type, p.Text)) })
	case "network.beforeRequestSent":
		kind := kindOther
		_, acrm := p.Request.Headers.get("Access-Control-Request-Method")
		switch {
		// Firefox marks no request as a preflight: it is the browser's own
		// OPTIONS carrying Access-Control-Request-Method (Fetch §4.8).
		case p.Request.Method == http.MethodOptions && acrm:
			kind = kindPreflight
		case p.Navigation == nil:
			kind = kindFetch // the page loads nothing else: its icon is a data: URL
		}
		e.record(func() { e.requests = append(e.requests, sentRequest{id: p.Request.ID, url: p.Request.URL, kind: kind}) })
	case "network.responseStarted", "network.responseCompleted":
		// Reported for responses that then fail the CORS check too, with
		// every header: the equivalent of Chromium's
		// responseReceivedExtraInfo. A preflight that fails gets only
		// responseStarted (then fetchError), so both are recorded.
		r := received{status: p.Response.Status, headers: map[string]string{}}
		for _, h := range p.Response.Headers {
			n := strings.ToLower(h.Name)
			if old, ok := r.headers[n]; ok {
				r.headers[n] = old + "\n" + h.Value.Value
			} else {
				r.headers[n] = h.Value.Value
			}
		}
		e.record(func() { e.received[p.Request.ID] = r })
	case "network.fetchError":
		e.record(func() { e.failed[p.Request.ID] = p.ErrorText })
	}
}
