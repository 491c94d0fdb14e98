package envoystandin

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"time"
)

// upstreamFunc sends the mutated request and its body upstream. A nil
// upstreamResult.body means the response headers carry end_of_stream.
type upstreamFunc func(ctx context.Context, r *UpstreamRequest, body io.Reader) (*upstreamResult, error)

type upstreamResult struct {
	status  int
	headers Headers
	body    io.ReadCloser
}

// route is the router: it sends the mutated request upstream while still
// listening to the stream, since an ImmediateResponse, an error or a clean
// close can arrive between the two phases (docs/envoy.md#which-reply-answers-which-message).
func (x *exchange) route(reqMap *headerMap, body io.Reader, up upstreamFunc) *response {
	ureq := upstreamRequest(reqMap)
	x.upstream = ureq
	if x.dec.bodyReplaced {
		body = bytes.NewReader(x.dec.body) // CONTINUE_AND_REPLACE
	}
	ctx, cancel := context.WithCancel(x.ctx)
	x.cancelUpstream = cancel
	type result struct {
		r   *upstreamResult
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		r, err := up(ctx, ureq, body)
		done <- result{r, err}
	}()
	for {
		select {
		case res := <-done:
			if res.err != nil {
				if x.ctx.Err() != nil {
					x.fail(x.ctx.Err())
					return nil
				}
				// The router's own local reply; it goes through ext_proc's
				// encodeHeaders like any response (docs/envoy.md#streams-that-start-with-response-headers).
				x.logf("upstream request failed: %v", res.err)
				return x.prepareLocalReply(&localReply{
					status:  503,
					body:    "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
					details: "upstream_reset_before_response_started{connection_failure}",
				})
			}
			return x.upstreamResponse(res.r, time.Since(start))
		case ev := <-x.events():
			x.onEvent(ev)
			if x.reply != nil || x.err != nil {
				cancel()
				if res := <-done; res.r != nil {
					closeBody(res.r.body)
				}
				return nil
			}
		case <-x.ctx.Done():
			cancel()
			if res := <-done; res.r != nil {
				closeBody(res.r.body)
			}
			x.fail(x.ctx.Err())
			return nil
		}
	}
}

// upstreamRequest is what the router sends: the request map after ext_proc.
func upstreamRequest(m *headerMap) *UpstreamRequest {
	get := func(k string) string { v, _ := m.first(k); return v }
	return &UpstreamRequest{
		Method:    get(":method"),
		Scheme:    get(":scheme"),
		Authority: get(":authority"),
		Path:      get(":path"),
		Headers:   m.regular(),
	}
}

// upstreamResponse is the upstream codec's response map: ":status" first,
// names lower-cased, repeated inline headers joined, connection-specific
// headers gone; bodyless for HEAD, 1xx, 204 and 304.
func (x *exchange) upstreamResponse(r *upstreamResult, elapsed time.Duration) *response {
	m := newHeaderMap(responseInline)
	m.insert(":status", strconv.Itoa(r.status))
	for _, h := range r.headers {
		key := strings.ToLower(h.Name)
		if codecDropped[key] || strings.HasPrefix(key, ":") {
			continue
		}
		m.addCopy(key, h.Value)
	}
	if x.fc.envoyHeaders {
		m.addCopy("x-envoy-upstream-service-time", strconv.FormatInt(elapsed.Milliseconds(), 10))
	}
	body := r.body
	if x.isHead || r.status < 200 || r.status == 204 || r.status == 304 {
		closeBody(body)
		body = nil
	}
	return &response{headers: m, body: body, details: "via_upstream"}
}
