//go:build e2e

package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corsgate/corsgate/test/e2e/internal/webdriver"
)

// webkitBrowser drives WebKitGTK's MiniBrowser through WebKitWebDriver (W3C
// WebDriver over HTTP). MiniBrowser is a GTK program with no headless mode,
// so it runs on the suite's own Xvfb. A WebKitWebDriver holds one session,
// and a session's windows share one current window, so a scenario holds a
// driver and its MiniBrowser for itself while it runs: the scenarios' tabs
// stay apart, and a scenario's tabs share cookies, as one browser's do.
// Sessions are kept for the next scenario (starting one costs a few
// seconds on a loaded machine), so only as many start as scenarios run at
// once; like Chromium's and Firefox's one browser, they keep cookies and
// preflight caches across scenarios, which use URLs of their own.
//
// This build of WebKit offers no BiDi and no log endpoint, and automation
// sessions print no console messages: a WebKit tab reports no events.
type webkitBrowser struct {
	t       *testing.T // the engine's test: sessions outlive scenarios
	env     browserEnv
	display string
	certs   []map[string]string // per host: the exact leaf it may serve

	mu       sync.Mutex
	sessions map[*testing.T]*webkitSession // in use, by scenario
	idle     []*webkitSession
}

type webkitSession struct {
	mu      sync.Mutex // one command at a time: the current window is shared
	s       *webdriver.Session
	current string   // the current window's handle
	free    []string // windows no scenario uses
}

func startWebKit(t *testing.T, env browserEnv) browser {
	t.Helper()
	display := startXvfb(t, env.artifacts)
	// Precise trust: WebKitGTK's per-host "certificates" option allows that
	// exact server certificate for that host (a CA file there is not
	// honoured); acceptInsecureCerts stays false.
	leaf := filepath.Join(t.TempDir(), "leaf.pem")
	if err := os.WriteFile(leaf, env.pki.leafPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	var certs []map[string]string
	for _, name := range certNames {
		certs = append(certs, map[string]string{"host": name, "certificateFile": leaf})
	}
	return &webkitBrowser{t: t, env: env, display: display, certs: certs, sessions: map[*testing.T]*webkitSession{}}
}

// startXvfb starts an X server of the suite's own (not xvfb-run: its process
// is ours to stop) and returns its display, e.g. ":99".
func startXvfb(t *testing.T, artifacts string) string {
	t.Helper()
	logFile, err := os.Create(filepath.Join(artifacts, "xvfb.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// -displayfd: Xvfb picks a free display and writes its number on fd 3
	// once it accepts connections.
	cmd := exec.Command(xvfbPath, "-displayfd", "3", "-screen", "0", "1280x1024x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	proc := startProcess(t, cmd)
	w.Close()
	t.Cleanup(func() { stopQuietly(t, proc, "Xvfb") })
	n := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		n <- strings.TrimSpace(line)
	}()
	select {
	case d := <-n:
		if _, err := strconv.Atoi(d); err != nil {
			t.Fatalf("Xvfb gave display %q; see %s", d, logFile.Name())
		}
		return ":" + d
	case <-time.After(hangGuard):
		t.Fatalf("Xvfb never reported its display; see %s", logFile.Name())
	}
	return ""
}

// stopQuietly stops a helper (Xvfb, WebKitWebDriver) with SIGTERM, and
// SIGKILL after 10 s; unlike corsgate, how it exits is not under test.
func stopQuietly(t *testing.T, p *process, name string) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Logf("%s did not stop within 10s of SIGTERM and was killed", name)
	}
}

// session is the scenario t's WebDriver session: an idle one, or a new one.
// It goes back to the idle ones, every window free, when t ends.
func (b *webkitBrowser) session(t *testing.T) *webkitSession {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.sessions[t]; s != nil {
		return s
	}
	var ws *webkitSession
	if n := len(b.idle); n > 0 {
		ws, b.idle = b.idle[n-1], b.idle[:n-1]
	} else {
		ws = b.newSession(t)
	}
	b.sessions[t] = ws
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.sessions, t)
		b.idle = append(b.idle, ws)
	})
	return ws
}

// newSession starts a WebKitWebDriver and a session in it. Failures are the
// scenario t's; the driver and the session end with the engine's test.
func (b *webkitBrowser) newSession(t *testing.T) *webkitSession {
	t.Helper()
	port := freePort(t)
	logFile, err := os.Create(filepath.Join(b.env.artifacts, "webkitwebdriver-"+port+".log"))
	if err != nil {
		t.Fatal(err)
	}
	b.t.Cleanup(func() { logFile.Close() })
	cmd := exec.Command(webkitDriverPath, "--port="+port)
	cmd.Env = append(os.Environ(), "DISPLAY="+b.display)
	// Its own process group, which MiniBrowser and WebKit's helper processes
	// join: stopping the group stops them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	proc := startProcess(t, cmd)
	// Cleanups run last-in first-out: the session ends, then its driver.
	b.t.Cleanup(func() { stopQuietly(b.t, proc, "WebKitWebDriver") })
	base := "http://127.0.0.1:" + port

	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for {
		if ok, _ := webdriver.Ready(ctx, base); ok {
			break
		}
		if proc.exited() || ctx.Err() != nil {
			t.Fatalf("WebKitWebDriver never became ready (exited: %v); see %s", proc.exited(), logFile.Name())
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not an assertion
	}
	// "--automation" is what makes MiniBrowser accept the driver: without
	// it, POST /session never returns. The proxy is a MiniBrowser flag: the
	// W3C proxy capability makes WebKit speak TLS to the proxy itself.
	// MiniBrowser's default cookie policy, no-third-party, refuses the
	// session cookie api.example.test sets on a fetch from app.example.test
	// (observed with WebKitGTK 2.50.6; Chromium and Firefox store it): with
	// it, the credentialed scenarios would test that policy, not corsgate.
	// docs/browsers.md records the difference.
	s, err := webdriver.NewSession(ctx, base, map[string]any{
		"acceptInsecureCerts": false,
		"webkitgtk:browserOptions": map[string]any{
			"binary":       miniBrowserPath,
			"args":         []string{"--automation", "--proxy=http://" + b.env.proxy, "--cookies-policy=always"},
			"certificates": b.certs,
		},
	})
	if err != nil {
		t.Fatalf("webkit: creating a session: %v; see %s", err, logFile.Name())
	}
	t.Logf("webkit: %v %v, --cookies-policy=always (docs/browsers.md)", s.Capabilities["browserName"], s.Capabilities["browserVersion"])
	b.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Delete(ctx); err != nil {
			b.t.Logf("webkit: ending the session: %v", err)
		}
	})
	first, err := s.WindowHandle(ctx)
	if err != nil {
		t.Fatalf("webkit: the session's window: %v", err)
	}
	return &webkitSession{s: s, current: first, free: []string{first}}
}

func (b *webkitBrowser) open(t *testing.T, origin string) *tab {
	t.Helper()
	ws := b.session(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	ws.mu.Lock()
	var handle string
	var err error
	if n := len(ws.free); n > 0 {
		handle, ws.free = ws.free[n-1], ws.free[:n-1]
	} else {
		handle, err = ws.s.NewWindow(ctx)
	}
	t.Cleanup(func() {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		ws.free = append(ws.free, handle)
	})
	wt := &webkitTab{ws: ws, handle: handle}
	if err == nil {
		err = wt.switchTo(ctx)
	}
	if err == nil {
		err = ws.s.Navigate(ctx, origin+"/")
	}
	ws.mu.Unlock()
	if err != nil {
		t.Fatalf("webkit: opening %s/: %v", origin, err)
	}
	tb := &tab{engine: webkit, origin: origin, drv: wt, edge: b.env.edge}
	tb.checkLoaded(t)
	return tb
}

type webkitTab struct {
	ws     *webkitSession
	handle string
}

// switchTo makes this tab's window the session's current one. The caller
// holds ws.mu.
func (w *webkitTab) switchTo(ctx context.Context) error {
	if w.ws.current == w.handle {
		return nil
	}
	if err := w.ws.s.SwitchToWindow(ctx, w.handle); err != nil {
		return err
	}
	w.ws.current = w.handle
	return nil
}

func (w *webkitTab) eval(ctx context.Context, expr string) (string, error) {
	w.ws.mu.Lock()
	defer w.ws.mu.Unlock()
	if err := w.switchTo(ctx); err != nil {
		return "", err
	}
	var out string
	err := w.ws.s.ExecuteAsync(ctx, `const done = arguments[arguments.length - 1];
Promise.resolve().then(() => `+expr+`).then(done, e => done("exception: " + e));`, nil, &out)
	if err == nil && strings.HasPrefix(out, "exception: ") {
		err = fmt.Errorf("webkit: %s", out)
	}
	return out, err
}

func (w *webkitTab) screenshot(ctx context.Context) ([]byte, error) {
	w.ws.mu.Lock()
	defer w.ws.mu.Unlock()
	if err := w.switchTo(ctx); err != nil {
		return nil, err
	}
	return w.ws.s.Screenshot(ctx)
}

// freePort is a loopback port free a moment ago, for a program that takes
// a port number rather than a listening socket.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
