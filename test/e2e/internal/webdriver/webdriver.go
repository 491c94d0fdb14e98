// Package webdriver is the part of W3C WebDriver (https://w3c.github.io/webdriver/)
// the browser suite needs to drive WebKit through WebKitWebDriver: JSON over
// plain HTTP, one request per command.
//
// The Go clients on the module proxy either drive Selenium-era wire
// protocols or are unmaintained; the handful of commands used here are
// smaller than any of them.
package webdriver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Error is WebDriver's error response (§6.6 "Errors").
type Error struct {
	Command string
	Status  int
	Code    string `json:"error"` // "session not created", "javascript error", ...
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("webdriver %s: %d %s: %s", e.Command, e.Status, e.Code, e.Message)
}

// do sends one command to base+path and decodes the "value" of the answer
// into out (when not nil).
func do(ctx context.Context, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("webdriver %s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("webdriver %s %s: %w", method, url, err)
	}
	var envelope struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &envelope); err != nil {
		return fmt.Errorf("webdriver %s %s: %d %q: %w", method, url, resp.StatusCode, raw, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Command: method + " " + url, Status: resp.StatusCode}
		_ = json.Unmarshal(envelope.Value, e)
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(envelope.Value, out); err != nil {
		return fmt.Errorf("webdriver %s %s: decoding %s: %w", method, url, envelope.Value, err)
	}
	return nil
}

// Ready reports whether the driver at base (http://127.0.0.1:PORT) says it
// can create a session (GET /status).
func Ready(ctx context.Context, base string) (bool, error) {
	var st struct {
		Ready bool `json:"ready"`
	}
	err := do(ctx, http.MethodGet, base+"/status", nil, &st)
	return st.Ready, err
}

// Session is one WebDriver session: one browser.
type Session struct {
	url string // base + "/session/" + id
	ID  string
	// Capabilities are those the driver matched, e.g. browserName and
	// browserVersion.
	Capabilities map[string]any
}

// NewSession creates a session; alwaysMatch is the capabilities object.
func NewSession(ctx context.Context, base string, alwaysMatch any) (*Session, error) {
	var v struct {
		SessionID    string         `json:"sessionId"`
		Capabilities map[string]any `json:"capabilities"`
	}
	in := map[string]any{"capabilities": map[string]any{"alwaysMatch": alwaysMatch}}
	if err := do(ctx, http.MethodPost, base+"/session", in, &v); err != nil {
		return nil, err
	}
	return &Session{url: base + "/session/" + v.SessionID, ID: v.SessionID, Capabilities: v.Capabilities}, nil
}

// Navigate loads url in the current window and returns once it has loaded.
func (s *Session) Navigate(ctx context.Context, url string) error {
	return do(ctx, http.MethodPost, s.url+"/url", map[string]string{"url": url}, nil)
}

// ExecuteSync runs a function body (the script) with args and decodes its
// return value into out.
func (s *Session) ExecuteSync(ctx context.Context, script string, args []any, out any) error {
	return s.execute(ctx, "/execute/sync", script, args, out)
}

// ExecuteAsync runs a function body whose last argument is a callback; the
// value passed to the callback is decoded into out.
func (s *Session) ExecuteAsync(ctx context.Context, script string, args []any, out any) error {
	return s.execute(ctx, "/execute/async", script, args, out)
}

func (s *Session) execute(ctx context.Context, path, script string, args []any, out any) error {
	if args == nil {
		args = []any{}
	}
	return do(ctx, http.MethodPost, s.url+path, map[string]any{"script": script, "args": args}, out)
}

// NewWindow opens a new top-level browsing context and returns its handle;
// the current window does not change.
func (s *Session) NewWindow(ctx context.Context) (string, error) {
	var v struct {
		Handle string `json:"handle"`
	}
	err := do(ctx, http.MethodPost, s.url+"/window/new", map[string]string{"type": "tab"}, &v)
	return v.Handle, err
}

// WindowHandle is the current window's handle.
func (s *Session) WindowHandle(ctx context.Context) (string, error) {
	var h string
	err := do(ctx, http.MethodGet, s.url+"/window", nil, &h)
	return h, err
}

// SwitchToWindow makes handle the current window.
func (s *Session) SwitchToWindow(ctx context.Context, handle string) error {
	return do(ctx, http.MethodPost, s.url+"/window", map[string]string{"handle": handle}, nil)
}

// Screenshot is a PNG of the current window.
func (s *Session) Screenshot(ctx context.Context) ([]byte, error) {
	var b64 string
	if err := do(ctx, http.MethodGet, s.url+"/screenshot", nil, &b64); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(b64)
}

// Delete ends the session (for WebKitWebDriver: MiniBrowser exits; the
// driver keeps running).
func (s *Session) Delete(ctx context.Context) error {
	return do(ctx, http.MethodDelete, s.url, nil, nil)
}
