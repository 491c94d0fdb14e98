package bidi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/corsgate/corsgate/test/e2e/internal/bidi"
)

// fakeBrowser answers commands the way Firefox's remote agent does: an event
// first for "navigate", an error for "fail", the params echoed back as the
// result otherwise; "hangup" closes the connection without answering.
func fakeBrowser(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			var cmd struct {
				ID     int64           `json:"id"`
				Method string          `json:"method"`
				Params json.RawMessage `json:"params"`
			}
			if ws.ReadJSON(&cmd) != nil {
				return
			}
			switch cmd.Method {
			case "hangup":
				return
			case "fail":
				ws.WriteJSON(map[string]any{"type": "error", "id": cmd.ID, "error": "invalid argument", "message": "no"})
			case "navigate":
				ws.WriteJSON(map[string]any{"type": "event", "method": "log.entryAdded", "params": map[string]string{"text": "hello"}})
				fallthrough
			default:
				ws.WriteJSON(map[string]any{"type": "success", "id": cmd.ID, "result": cmd.Params})
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestCallResultErrorAndEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []string
	c, err := bidi.Dial(ctx, fakeBrowser(t), func(method string, params json.RawMessage) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, method+" "+string(params))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Concurrent calls each get their own answer.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			var got struct{ N int }
			if err := c.Call(ctx, "echo", map[string]int{"n": i}, &got); err != nil || got.N != i {
				t.Errorf("echo %d: got %d, %v", i, got.N, err)
			}
		})
	}
	wg.Wait()

	var be *bidi.Error
	if err := c.Call(ctx, "fail", nil, nil); !errors.As(err, &be) || be.Code != "invalid argument" || be.Method != "fail" {
		t.Errorf("fail: %v, want a *bidi.Error with code invalid argument", err)
	}

	// An event sent before the answer is delivered before Call returns.
	if err := c.Call(ctx, "navigate", nil, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0] != `log.entryAdded {"text":"hello"}` {
		t.Errorf("events %q, want the one log.entryAdded", events)
	}
}

func TestCallEndsWhenTheBrowserHangsUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bidi.Dial(ctx, fakeBrowser(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Call(ctx, "hangup", nil, nil); err == nil || ctx.Err() != nil {
		t.Fatalf("hangup: %v, want a connection error before the deadline", err)
	}
	<-c.Done()
	if err := c.Call(ctx, "echo", nil, nil); err == nil {
		t.Error("a call on a closed connection succeeded")
	}
}
