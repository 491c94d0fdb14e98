package envoystandin

import (
	"context"
	"fmt"
	"io"
	"strconv"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/grpc/metadata"
)

// exchange is one HTTP request through the filter: Envoy's ext_proc Filter
// instance (ext_proc.cc) plus just enough of the filter manager and router
// around it. It runs on one goroutine; the stream's receive goroutine and the
// upstream call talk to it through channels, as Envoy's dispatcher would.
type exchange struct {
	sim *Sim
	fc  *filterConfig
	ctx context.Context

	failureModeAllow bool
	initialMetadata  metadata.MD
	dec, enc         processorState

	complete           bool // processing_complete_
	st                 *stream
	protocolConfigSent bool

	// reply is a local reply the filter decided to send (ImmediateResponse or
	// an error); it ends all ext_proc processing for the request.
	reply *localReply
	// err ends the exchange without a response (ctx done, unsupported feature).
	err error

	isHead, isGrpc bool
	upstream       *UpstreamRequest // set once the router has sent the request
	cancelUpstream context.CancelFunc
	log            []string
}

// response is a response travelling through the encoder path.
type response struct {
	headers *headerMap // with :status
	body    io.ReadCloser
	details string
}

func (r *response) status() int {
	v, _ := r.headers.first(":status")
	n, _ := strconv.Atoi(v)
	return n
}

func newExchange(ctx context.Context, s *Sim) *exchange {
	x := &exchange{sim: s, fc: s.fc, ctx: ctx}
	x.enc.outbound = true
	x.dec.setProcessingMode(x.fc.mode())
	x.enc.setProcessingMode(x.fc.mode())
	x.failureModeAllow = x.fc.proto.GetFailureModeAllow()
	x.initialMetadata = headerValuesMD(nil, x.fc.proto.GetGrpcService().GetInitialMetadata())
	return x
}

func (x *exchange) logf(format string, args ...any) {
	x.log = append(x.log, fmt.Sprintf(format, args...))
}

// mergePerRouteConfig applies ExtProcPerRoute (docs/envoy.md#per-route-configuration): disabled turns
// every mode off, so no stream is ever opened; overrides.processing_mode
// replaces the whole mode; overrides.failure_mode_allow and
// grpc_initial_metadata replace the filter's.
func (x *exchange) mergePerRouteConfig(route *extprocfilterv3.ExtProcPerRoute) error {
	if route == nil {
		return nil
	}
	if err := route.ValidateAll(); err != nil {
		return fmt.Errorf("envoystandin: Envoy would reject Request.Route: %w", err)
	}
	if route.GetDisabled() {
		x.dec.setProcessingMode(allDisabledMode())
		x.enc.setProcessingMode(allDisabledMode())
		return nil
	}
	o := route.GetOverrides()
	if m := o.GetProcessingMode(); m != nil {
		x.dec.setProcessingMode(m)
		x.enc.setProcessingMode(m)
	}
	if f := o.GetFailureModeAllow(); f != nil {
		x.failureModeAllow = f.GetValue()
	}
	x.initialMetadata = headerValuesMD(x.initialMetadata, o.GetGrpcInitialMetadata())
	return nil
}

// run takes the request through decodeHeaders, the router and encodeHeaders.
func (x *exchange) run(req Request, body io.Reader, hasBody bool, up upstreamFunc) (*response, error) {
	if err := x.mergePerRouteConfig(req.Route); err != nil {
		return nil, err
	}
	reqMap, err := x.buildRequestMap(req)
	if err != nil {
		return nil, err
	}
	method, _ := reqMap.first(":method")
	ct, _ := reqMap.first("content-type")
	x.isHead = method == "HEAD"
	x.isGrpc = isGrpcContentType(ct)

	var res *response
	if lr := req.LocalReply; lr != nil {
		// docs/envoy.md#streams-that-start-with-response-headers: an earlier filter answered; ext_proc only encodes.
		res = x.prepareLocalReply(&localReply{status: lr.Status, extra: lr.Headers, body: lr.Body, details: lr.Details})
	} else {
		x.decodeHeaders(reqMap, !hasBody)
		if x.err == nil && x.reply == nil {
			res = x.route(reqMap, body, up)
		}
	}
	if x.err != nil {
		return nil, x.err
	}
	if x.reply != nil {
		// A reply made while the request was held goes through the encoder
		// filters, ext_proc's own encodeHeaders included, which skips because
		// processing is complete (docs/envoy.md#which-filters-still-run).
		res = x.takeReply()
	}
	res = x.encodeHeaders(res)
	if x.err != nil {
		closeBody(res.body)
		return nil, x.err
	}
	return res, nil
}

// decodeHeaders is Filter::decodeHeaders for a request without ext_proc body
// processing.
func (x *exchange) decodeHeaders(m *headerMap, endStream bool) {
	x.dec.noBody = endStream
	x.dec.headers = m
	if !x.dec.sendHeaders {
		return
	}
	if x.needsBodyProcessing(&x.dec) {
		return
	}
	if x.onHeaders(&x.dec, m, endStream) {
		x.await(&x.dec)
		x.needsBodyProcessing(&x.dec)
	}
}

// encodeHeaders is Filter::encodeHeaders.
func (x *exchange) encodeHeaders(res *response) *response {
	if x.complete || !x.enc.sendHeaders {
		return res
	}
	endStream := res.body == nil
	x.enc.noBody = endStream
	x.enc.headers = res.headers
	if x.needsBodyProcessing(&x.enc) {
		return res
	}
	if x.onHeaders(&x.enc, res.headers, endStream) {
		x.await(&x.enc)
		x.needsBodyProcessing(&x.enc)
	}
	if x.reply != nil {
		// Response headers exist but are not encoded yet: Envoy sends the
		// reply straight to the codec (sendDirectLocalReply, docs/envoy.md#errors-timeouts-and-fail-open).
		closeBody(res.body)
		return x.takeReply()
	}
	if x.enc.bodyReplaced {
		closeBody(res.body)
		res.body = bodyReader(x.enc.body)
	}
	return res
}

// needsBodyProcessing stops the exchange when Envoy would now send a body
// message, which the stand-in does not reproduce.
func (x *exchange) needsBodyProcessing(p *processorState) bool {
	if p.noBody || p.bodyReplaced || x.complete || p.bodyMode == extprocfilterv3.ProcessingMode_NONE {
		return false
	}
	dir := "request"
	if p.outbound {
		dir = "response"
	}
	x.fail(fmt.Errorf("envoystandin: the %s has a body and its body mode is %s: body processing is not reproduced by the stand-in; use body mode NONE or a bodyless %s", dir, p.bodyMode, dir))
	return true
}

// fail ends the exchange with an error instead of a response.
func (x *exchange) fail(err error) {
	if x.err == nil {
		x.err = err
	}
	x.complete = true
	x.finishCalls()
	x.closeStream()
}

// onHeaders is Filter::onHeaders: open the stream lazily, send one headers
// message and start its timer. It reports whether a reply is now awaited.
func (x *exchange) onHeaders(p *processorState, m *headerMap, endStream bool) bool {
	if !x.openStream() {
		return false
	}
	req := x.buildHeaderRequest(p, m, endStream)
	p.startCall(x.fc.messageTimeout)
	x.st.send(req)
	x.sim.stats.streamMsgsSent.Add(1)
	return true
}

// openStream is Filter::openStream. It reports whether a message can be sent.
func (x *exchange) openStream() bool {
	if x.complete {
		return false
	}
	if x.st != nil {
		return true
	}
	st, err := openStream(x.ctx, x.sim.client, x.initialMetadata)
	if err != nil {
		// The stream failed while starting: Envoy reports it through
		// onGrpcError before start() returns; streams_started is not counted.
		// grpc-go also fails here when the connection cannot be made, which
		// Envoy's async client reports a little later, after counting the
		// stream as started: the reply is the same, only that counter differs.
		x.onGrpcError(err)
		return false
	}
	x.sim.stats.streamsStarted.Add(1)
	x.st = st
	return true
}

// events is the stream's event channel while the filter still listens to it.
func (x *exchange) events() <-chan event {
	if x.st == nil || x.complete {
		return nil
	}
	return x.st.events
}

// await blocks until p's message is answered, the timer fires, or
// processing ends (docs/envoy.md#what-the-stand-in-reproduces item 3).
func (x *exchange) await(p *processorState) {
	for p.waiting && !x.complete && x.err == nil {
		select {
		case ev := <-x.events():
			x.onEvent(ev)
		case <-p.timeout():
			x.onMessageTimeout()
		case <-x.ctx.Done():
			x.fail(x.ctx.Err())
		}
	}
}

// finish is Filter::onDestroy at the end of the HTTP request: stop timers,
// close the stream if still open, release the upstream.
func (x *exchange) finish() {
	x.complete = true
	x.finishCalls()
	if x.st != nil {
		x.closeStreamMaybeGraceful()
	}
	if x.cancelUpstream != nil {
		x.cancelUpstream()
	}
}

// closeStream is Filter::closeStream: half-close and reset.
func (x *exchange) closeStream() {
	if x.st == nil {
		return
	}
	if !x.st.remoteClosed {
		x.sim.stats.streamsClosed.Add(1)
	}
	x.st.abort()
	x.st = nil
}

// closeStreamMaybeGraceful is Filter::closeStreamMaybeGraceful.
func (x *exchange) closeStreamMaybeGraceful() {
	x.complete = true
	if !x.fc.graceful || x.st == nil || x.st.remoteClosed {
		x.closeStream()
		return
	}
	x.sim.stats.streamsClosed.Add(1)
	x.st.closeGracefully()
	x.st = nil
}

// finishCalls is onFinishProcessorCalls / clearAsyncState for both directions.
func (x *exchange) finishCalls() {
	x.dec.finishCall()
	x.enc.finishCall()
}

func closeBody(rc io.ReadCloser) {
	if rc != nil {
		_ = rc.Close()
	}
}
