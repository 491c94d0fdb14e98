package webdriver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/corsgate/corsgate/test/e2e/internal/webdriver"
)

// fakeDriver answers the commands as WebKitWebDriver does, and records what
// it was sent.
func fakeDriver(t *testing.T, got map[string]string) string {
	t.Helper()
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, value any) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"value": value})
	}
	record := func(r *http.Request) {
		var b json.RawMessage
		json.NewDecoder(r.Body).Decode(&b)
		got[r.Method+" "+r.URL.Path] = string(b)
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"ready": true, "message": ""})
	})
	mux.HandleFunc("POST /session", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		reply(w, 200, map[string]any{"sessionId": "s1", "capabilities": map[string]any{"browserName": "MiniBrowser"}})
	})
	mux.HandleFunc("POST /session/s1/url", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		reply(w, 200, nil)
	})
	mux.HandleFunc("POST /session/s1/execute/async", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		reply(w, 200, `{"ok":true}`)
	})
	mux.HandleFunc("POST /session/s1/execute/sync", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		reply(w, 500, map[string]any{"error": "javascript error", "message": "boom", "stacktrace": ""})
	})
	mux.HandleFunc("GET /session/s1/screenshot", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, "iVBORw==")
	})
	mux.HandleFunc("DELETE /session/s1", func(w http.ResponseWriter, r *http.Request) {
		got["DELETE /session/s1"] = ""
		reply(w, 200, nil)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := map[string]string{}
	base := fakeDriver(t, got)

	if ok, err := webdriver.Ready(ctx, base); !ok || err != nil {
		t.Fatalf("Ready = %v, %v", ok, err)
	}
	s, err := webdriver.NewSession(ctx, base, map[string]any{"acceptInsecureCerts": false})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "s1" || s.Capabilities["browserName"] != "MiniBrowser" {
		t.Errorf("session %q %v", s.ID, s.Capabilities)
	}
	if want := `{"capabilities":{"alwaysMatch":{"acceptInsecureCerts":false}}}`; got["POST /session"] != want {
		t.Errorf("POST /session sent %s, want %s", got["POST /session"], want)
	}
	if err := s.Navigate(ctx, "https://app.example.test/"); err != nil {
		t.Fatal(err)
	}
	if want := `{"url":"https://app.example.test/"}`; got["POST /session/s1/url"] != want {
		t.Errorf("navigate sent %s", got["POST /session/s1/url"])
	}
	var out string
	if err := s.ExecuteAsync(ctx, "arguments[1](arguments[0])", []any{"x"}, &out); err != nil || out != `{"ok":true}` {
		t.Errorf("ExecuteAsync = %q, %v", out, err)
	}
	if want := `{"args":["x"],"script":"arguments[1](arguments[0])"}`; got["POST /session/s1/execute/async"] != want {
		t.Errorf("execute/async sent %s", got["POST /session/s1/execute/async"])
	}
	var we *webdriver.Error
	if err := s.ExecuteSync(ctx, "throw 1", nil, nil); !errors.As(err, &we) || we.Code != "javascript error" || we.Status != 500 {
		t.Errorf("ExecuteSync error %v, want a 500 javascript error", err)
	}
	if got["POST /session/s1/execute/sync"] != `{"args":[],"script":"throw 1"}` {
		t.Errorf("execute/sync sent %s: args must be a list, never null", got["POST /session/s1/execute/sync"])
	}
	if png, err := s.Screenshot(ctx); err != nil || string(png[1:4]) != "PNG" {
		t.Errorf("Screenshot = %q, %v", png, err)
	}
	if err := s.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["DELETE /session/s1"]; !ok {
		t.Error("Delete sent nothing")
	}
}
