// Package extproc is corsgate's Envoy external-processing (ext_proc) server.
//
// Envoy opens one gRPC stream per HTTP request and sends the request headers,
// then (unless told to skip it) the response headers. The server looks the
// request up in the policy table, asks the CORS engine for a decision, and
// translates that decision into Envoy's terms: an ImmediateResponse for a
// preflight answered at the edge, a HeaderMutation on the upstream's response
// for an actual request, and a mode_override that skips the response phase when
// there is nothing to do.
//
// The server reads and writes the wire itself (internal/extprocwire):
// requests are decoded from their bytes keeping only the headers a decision
// reads, and replies written as bytes. Runner serves it, with the standard
// gRPC health service, on every replica.
//
// Protocol faults (a message Envoy would never send in that order) end the
// stream with a gRPC error status. CORS denials are never errors: they are
// answers. The exact Envoy behaviour this relies on is pinned in
// docs/envoy.md, whose headings the comments below link to.
package extproc

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/extprocwire"
	"github.com/corsgate/corsgate/internal/header"
	"github.com/corsgate/corsgate/internal/table"
)

// Observer is told what the server did, for metrics and logs: every
// decision a policy made (ObserveDecision, once per HTTP request a policy
// applies to; requests no policy applies to are not observed), how long the
// server took to answer each message (ObservePhase: the latency corsgate adds
// to that phase of the HTTP exchange), and how long each stream lived
// (ObserveStream: the whole HTTP exchange as Envoy holds it open, the
// upstream's time included). Its methods are called synchronously on the
// stream's goroutine, so they must be quick and must not block.
//
// The decision and the request come by value: a pointer into the stream's
// state would make every stream's state escape to the heap (one allocation
// per HTTP request), while copying them costs a few nanoseconds. Their
// strings are immutable and may be kept. Decision.Detail and the
// RequestInfo are request input; quote them when logging.
type Observer interface {
	ObserveDecision(entry *table.Entry, d cors.Decision, r RequestInfo)
	ObservePhase(p Phase, took time.Duration)
	ObserveStream(took time.Duration)
}

// RequestInfo is what an observer may record of the request a decision was
// made for, besides the decision. The strings alias the request's header
// values as received (immutable; holding one keeps its message alive), and
// are request input: quote and truncate them when logging, copy what you
// keep. Path is the :path with its query and fragment.
type RequestInfo struct {
	Method, Authority, Path, Origin string
}

// Phase is the ext_proc message an Observer is told the latency of.
type Phase uint8

const (
	// PhaseRequestHeaders: request_headers, where the decision is made.
	PhaseRequestHeaders Phase = iota
	// PhaseResponseHeaders: response_headers, where an actual request's
	// CORS headers are set.
	PhaseResponseHeaders
	// PhaseOther: bodies and trailers, passed through.
	PhaseOther
)

// String is the phase as a metric label.
func (p Phase) String() string {
	switch p {
	case PhaseRequestHeaders:
		return "request_headers"
	case PhaseResponseHeaders:
		return "response_headers"
	default:
		return "other"
	}
}

// Option configures a Server.
type Option func(*Server)

// WithObserver sets the observer; without one, nothing is observed.
func WithObserver(o Observer) Option {
	return func(s *Server) { s.observer = o }
}

// WithLogger sets the logger. The server logs only protocol faults and broken
// streams (at V(1), since a misbehaving client could otherwise flood the log);
// decisions go to the Observer.
func WithLogger(l logr.Logger) Option {
	return func(s *Server) { s.log = l }
}

// Server implements envoy.service.ext_proc.v3.ExternalProcessor over a
// table.Store. It is safe for concurrent use: streams share nothing but the
// immutable table they load.
type Server struct {
	store    *table.Store
	observer Observer // nil: none
	log      logr.Logger
}

// NewServer returns a Server that decides with the tables swapped into store.
// Until the first table is swapped in, no policy applies to any request: they
// pass through unchanged (and the health service says NOT_SERVING, see
// Runner).
func NewServer(store *table.Store, opts ...Option) *Server {
	if store == nil {
		panic("extproc.NewServer: store is nil; pass the *table.Store the controller swaps tables into")
	}
	s := &Server{store: store, log: logr.Discard()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Process serves one ext_proc stream, that is one HTTP request, read and
// written by extprocwire.Codec: messages are decoded from their bytes into
// an extprocwire.Request keeping only the headers a decision reads
// (docs/performance.md#the-ext_proc-exchange), and replies written as bytes.
// It is the stream handler Runner registers; a grpc.Server that calls it must
// be built with extprocwire.ServerOption, since grpc-go's own codec cannot
// read into a Request. The loop is Recv → handle → Send until Envoy ends the
// stream; the server never ends it first with OK, because Envoy would then
// silently skip the remaining phases
// (docs/envoy.md#the-rules-that-matter-most rule 7).
func (s *Server) Process(stream grpc.ServerStream) error {
	// One allocation per stream holds the exchange, the request it decodes
	// into (which escapes through RecvMsg's interface) and room for its
	// headers.
	x := &exchange{stream: stream}
	x.req.Headers = x.headers[:0]
	x.req.KeepRequestHeader = readsRequestHeader
	if s.observer == nil {
		return s.loop(x)
	}
	start := time.Now()
	err := s.loop(x)
	s.observer.ObserveStream(time.Since(start))
	return err
}

// headerRoom is how many headers a stream holds without a further
// allocation: the request headers readRequest reads, or a typical
// upstream response's.
const headerRoom = 16

// exchange is one stream's state for the wire: the message being read, the
// answer being written, and their storage.
type exchange struct {
	stream  grpc.ServerStream
	req     extprocwire.Request
	headers [headerRoom]header.Field
	ans     answer
	reply   extprocwire.Reply
}

func (s *Server) loop(x *exchange) error {
	req, a := &x.req, &x.ans
	var st streamState
	for {
		if err := x.stream.RecvMsg(req); err != nil {
			return s.streamEnd(err)
		}
		if !st.loaded {
			// One table per stream, taken at the first message, so that the
			// request and the response phase of one HTTP exchange see the same
			// policy version even if a new table is swapped in between.
			st.table, st.loaded = s.store.Load(), true
		}
		var began time.Time
		if s.observer != nil {
			began = time.Now()
		}
		a.reset()
		err := s.handle(&st, req, a)
		if s.observer != nil {
			s.observer.ObservePhase(phaseOf(req.Kind), time.Since(began))
		}
		if err != nil {
			s.log.V(1).Info("ext_proc protocol fault; ending the stream", "error", err.Error())
			return err
		}
		if req.ObservabilityMode {
			// In observability mode Envoy ignores every reply and asks for none
			// (ProcessingRequest.observability_mode, docs/envoy.md#observability-mode); the
			// decision was still made and observed. Since the reply is not
			// applied, the exchange goes on as if it had passed through:
			// even an answered preflight reaches the upstream and comes back
			// as response_headers.
			st.replyIgnored()
			continue
		}
		if err := x.stream.SendMsg(a.encode(&x.reply)); err != nil {
			return s.streamEnd(err)
		}
	}
}

// streamEnd maps a Recv/Send error to the handler's result. Envoy ends a
// stream with a half-close plus RST_STREAM, which grpc-go reports as io.EOF or
// Canceled (docs/envoy.md#how-a-stream-ends): both are the normal end of an HTTP exchange.
func (s *Server) streamEnd(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
		return nil
	}
	s.log.V(1).Info("ext_proc stream broken", "error", err.Error())
	return err
}

// phase is where a stream is in Envoy's sequence (docs/envoy.md#message-sequence).
type phase uint8

const (
	// phaseStart: nothing received yet.
	phaseStart phase = iota
	// phaseRequest: request_headers answered with a HeadersResponse.
	phaseRequest
	// phaseResponse: response_headers answered.
	phaseResponse
	// phaseResponded: request_headers answered with an ImmediateResponse;
	// Envoy sends no further headers on this stream (docs/envoy.md#what-envoy-does-with-an-immediate-response).
	phaseResponded
)

// streamState is everything one stream remembers between its messages. It
// lives on the Process goroutine's stack and is never shared.
type streamState struct {
	table  *table.Table
	loaded bool
	phase  phase
	// decision is the request phase's outcome; the response phase applies it
	// when apply is set (ActionContinue).
	decision cors.Decision
	apply    bool
}

// replyIgnored records that Envoy did not apply the reply just computed.
func (st *streamState) replyIgnored() {
	if st.phase == phaseResponded {
		st.phase = phaseRequest
	}
	st.apply = false
}

// handle answers one message. It returns a gRPC status error only for a
// message that breaks the protocol, never for a CORS denial.
func (s *Server) handle(st *streamState, req *extprocwire.Request, a *answer) error {
	switch req.Kind {
	case extprocwire.KindRequestHeaders:
		return s.requestHeaders(st, req.Headers, a)
	case extprocwire.KindResponseHeaders:
		return s.responseHeaders(st, req.Headers, a)
	case extprocwire.KindRequestBody:
		// Only an Envoy configured to send bodies sends these; CORS needs
		// none, and an empty answer lets the body through unchanged.
		a.fixed = requestBodyContinue
	case extprocwire.KindResponseBody:
		a.fixed = responseBodyContinue
	case extprocwire.KindRequestTrailers:
		a.fixed = requestTrailersContinue
	case extprocwire.KindResponseTrailers:
		a.fixed = responseTrailersContinue
	default:
		return status.Error(codes.InvalidArgument,
			"extproc: ProcessingRequest carries no request message (the `request` oneof is empty); "+
				"send request_headers, response_headers, a body or trailers. Flow-control-only messages "+
				"are not supported: this server never advertises flow control")
	}
	return nil
}

// phaseOf names a message's phase for the Observer.
func phaseOf(k extprocwire.Kind) Phase {
	switch k {
	case extprocwire.KindRequestHeaders:
		return PhaseRequestHeaders
	case extprocwire.KindResponseHeaders:
		return PhaseResponseHeaders
	default:
		return PhaseOther
	}
}

// protocolError builds the status for a message that arrived out of order.
func protocolError(format string, args ...any) error {
	return status.Errorf(codes.FailedPrecondition, "extproc: "+format, args...)
}
