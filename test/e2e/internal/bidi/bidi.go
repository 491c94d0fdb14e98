// Package bidi is the part of WebDriver BiDi (https://w3c.github.io/webdriver-bidi/)
// the browser suite needs to drive Firefox: commands and their results, and
// events, as JSON messages over one WebSocket. Firefox serves BiDi itself
// (--remote-debugging-port), so no geckodriver runs.
//
// No maintained Go BiDi client exists on the Go module proxy; the protocol is
// small enough that this file is the whole client. Message shapes (WebDriver
// BiDi §"Transport" and §"Protocol"):
//
//	command: {"id": 1, "method": "browsingContext.navigate", "params": {...}}
//	success: {"type": "success", "id": 1, "result": {...}}
//	error:   {"type": "error", "id": 1, "error": "no such frame", "message": "..."}
//	event:   {"type": "event", "method": "log.entryAdded", "params": {...}}
package bidi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/gorilla/websocket"
)

// Conn is one BiDi connection. Call is safe for concurrent use; events are
// delivered in order, on the connection's read goroutine, to the handler
// given to Dial.
type Conn struct {
	ws      *websocket.Conn
	onEvent func(method string, params json.RawMessage)

	wmu sync.Mutex // one writer at a time (gorilla/websocket allows one)

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan message
	err     error         // why the read loop ended; set before done closes
	done    chan struct{} // closed when the read loop ends
}

// Error is a command's error response.
type Error struct {
	Method  string
	Code    string // "invalid argument", "no such frame", ...
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("bidi %s: %s: %s", e.Method, e.Code, e.Message) }

type message struct {
	Type    string          `json:"type"`
	ID      *int64          `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

// Dial connects to a BiDi endpoint (for Firefox, ws://127.0.0.1:PORT/session).
// onEvent, when not nil, receives every event; it must not block for long,
// as it runs on the read loop.
func Dial(ctx context.Context, url string, onEvent func(method string, params json.RawMessage)) (*Conn, error) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bidi: dialing %s: %w", url, err)
	}
	ws.SetReadLimit(64 << 20) // screenshots arrive as one base64 message
	c := &Conn{ws: ws, onEvent: onEvent, pending: map[int64]chan message{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func (c *Conn) readLoop() {
	var err error
	for {
		var m message
		if err = c.ws.ReadJSON(&m); err != nil {
			break
		}
		switch {
		case m.Type == "event":
			if c.onEvent != nil {
				c.onEvent(m.Method, m.Params)
			}
		case m.ID != nil:
			c.mu.Lock()
			ch := c.pending[*m.ID]
			delete(c.pending, *m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("bidi: connection closed: %w", err)
	c.mu.Unlock()
	close(c.done)
}

// Call sends a command and waits for its answer, which it decodes into
// result (when not nil). A command the browser refuses is an *Error.
func (c *Conn) Call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	ch := make(chan message, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()

	c.wmu.Lock()
	err := c.ws.WriteJSON(struct {
		ID     int64  `json:"id"`
		Method string `json:"method"`
		Params any    `json:"params"`
	}{id, method, params})
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("bidi %s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Type == "error" {
			return &Error{Method: method, Code: m.Error, Message: m.Message}
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(m.Result, result); err != nil {
			return fmt.Errorf("bidi %s: decoding %s: %w", method, m.Result, err)
		}
		return nil
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return fmt.Errorf("bidi %s: %w", method, c.err)
	case <-ctx.Done():
		return fmt.Errorf("bidi %s: %w", method, ctx.Err())
	}
}

// Done is closed when the connection has ended (the browser closed it, or
// Close was called).
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection.
func (c *Conn) Close() error {
	err := c.ws.Close()
	<-c.done
	if errors.Is(err, websocket.ErrCloseSent) {
		return nil
	}
	return err
}
