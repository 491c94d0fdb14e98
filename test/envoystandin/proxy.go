package envoystandin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
)

// Proxy is an HTTP front proxy built on a Sim: listener, HCM, the ext_proc
// filter and a router to one upstream URL. It exists for `make run` and for
// browser tests, so it is correct for real browsers: bodies stream both ways
// (flushed as they arrive, so server-sent events work), repeated headers such
// as set-cookie stay separate, hop-by-hop headers are not forwarded, HEAD
// and bodyless statuses carry no body.
//
// Not reproduced: upgrades (WebSocket), trailers, 1xx responses other than
// 100-continue (answered by net/http itself), header order (net/http does
// not keep it, so headers reach ext_proc sorted by name), retries, timeouts
// other than ext_proc's.
type Proxy struct {
	sim      *Sim
	upstream *url.URL
	client   *http.Client

	// Route picks the per-route ext_proc config for a request; nil or a nil
	// result means none (docs/envoy.md#per-route-configuration).
	Route func(*http.Request) *extprocfilterv3.ExtProcPerRoute
	// Log, when set, gets one line per request with its status and
	// %RESPONSE_CODE_DETAILS%.
	Log *slog.Logger
}

// NewProxy returns a Proxy that sends requests through sim's ext_proc filter
// to upstream (scheme and host; a path is prefixed to every request path).
func NewProxy(sim *Sim, upstream *url.URL) *Proxy {
	return &Proxy{
		sim:      sim,
		upstream: upstream,
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext, // Envoy's default connect_timeout
				DisableCompression:  true,                                                // pass accept-encoding and encoded bodies through untouched
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     90 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// ServeHTTP runs one request through ext_proc and the upstream.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if p.sim.cfgErr != nil {
		http.Error(w, p.sim.cfgErr.Error(), http.StatusInternalServerError)
		return
	}
	req := Request{
		Method:    r.Method,
		Scheme:    "http",
		Authority: r.Host,
		Path:      requestPath(r),
		Headers:   sortedHeaders(r.Header),
	}
	if r.TLS != nil {
		req.Scheme = "https"
	}
	if p.Route != nil {
		req.Route = p.Route(r)
	}
	hasBody := r.Body != nil && r.Body != http.NoBody

	x := newExchange(r.Context(), p.sim)
	defer x.finish()
	forward := func(ctx context.Context, ur *UpstreamRequest, body io.Reader) (*upstreamResult, error) {
		return p.forward(ctx, ur, body, r.ContentLength)
	}
	res, err := x.run(req, r.Body, hasBody, forward)
	if err != nil {
		p.fail(w, r, err, start)
		return
	}
	// Logged before the response is written, so the line exists by the time
	// the client has the response; the duration is the time to headers.
	p.logLine(r, res.status(), res.details, x.upstream != nil, start)
	p.write(w, r, res)
}

func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error, start time.Time) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	code := http.StatusInternalServerError
	if re, ok := errors.AsType[*RequestError](err); ok {
		code = re.Status
	}
	p.logLine(r, code, "envoystandin_error", false, start)
	http.Error(w, err.Error(), code)
}

// write sends the final response and streams its body.
func (p *Proxy) write(w http.ResponseWriter, r *http.Request, res *response) {
	defer closeBody(res.body)
	h := w.Header()
	for _, e := range res.headers.regular() {
		if hopByHop[e.Name] {
			continue
		}
		h.Add(e.Name, e.Value)
	}
	w.WriteHeader(res.status())
	if res.body == nil || r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := res.body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the client went away
			}
			_ = rc.Flush()
		}
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// The upstream broke mid-body: Envoy resets the downstream stream.
			panic(http.ErrAbortHandler)
		}
	}
}

// forward is the router's upstream request over net/http.
func (p *Proxy) forward(ctx context.Context, ur *UpstreamRequest, body io.Reader, contentLength int64) (*upstreamResult, error) {
	target := p.upstream.Scheme + "://" + p.upstream.Host + strings.TrimSuffix(p.upstream.Path, "/") + ur.Path
	if ur.Path == "*" {
		target = p.upstream.Scheme + "://" + p.upstream.Host
	}
	out, err := http.NewRequestWithContext(ctx, ur.Method, target, nil)
	if err != nil {
		return nil, fmt.Errorf("building the upstream request: %w", err)
	}
	out.Host = ur.Authority
	for _, e := range ur.Headers {
		if hopByHop[e.Name] || e.Name == "content-length" || e.Name == "expect" {
			continue
		}
		out.Header.Add(e.Name, e.Value)
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // keep net/http from adding its own
	}
	switch b := body.(type) {
	case *bytes.Reader: // replaced by CONTINUE_AND_REPLACE
		out.ContentLength = int64(b.Len())
		out.Body = io.NopCloser(b)
	default:
		out.ContentLength = contentLength
		if body != nil && body != http.NoBody {
			out.Body = io.NopCloser(body)
		} else {
			out.Body = http.NoBody
		}
	}
	resp, err := p.client.Do(out)
	if err != nil {
		return nil, err
	}
	res := &upstreamResult{status: resp.StatusCode, headers: sortedHeaders(resp.Header)}
	if resp.ContentLength != 0 {
		res.body = resp.Body
	} else {
		resp.Body.Close()
	}
	return res, nil
}

func (p *Proxy) logLine(r *http.Request, status int, details string, upstream bool, start time.Time) {
	if p.Log == nil {
		return
	}
	p.Log.Info(fmt.Sprintf("%s %s%s %s", r.Method, r.Host, requestPath(r), r.Proto),
		"status", status, "details", details, "upstream", upstream, "duration", time.Since(start).Round(time.Microsecond))
}

// requestPath is :path: the request target as received for origin-form
// targets, path and query otherwise.
func requestPath(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") || r.RequestURI == "*" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// sortedHeaders flattens an http.Header: names sorted (net/http keeps no
// order), every value its own entry, as separate header lines arrive.
func sortedHeaders(h http.Header) Headers {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var out Headers
	for _, k := range names {
		for _, v := range h[k] {
			out = append(out, Header{Name: strings.ToLower(k), Value: v})
		}
	}
	return out
}
