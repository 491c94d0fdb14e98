package envoystandin

import (
	"bytes"
	"context"
	"fmt"
	"io"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
)

// Sim plays one configured envoy.filters.http.ext_proc filter in front of a
// simulated (or, through Proxy, a real) upstream. All its requests share one
// gRPC connection, each on its own stream, as an Envoy worker does
// (docs/envoy.md#connections-latency-and-health-checks). A Sim is safe for concurrent use.
type Sim struct {
	client extprocv3.ExternalProcessorClient
	fc     *filterConfig
	cfgErr error
	stats  counters
}

// New returns a Sim that talks to the ext_proc server behind conn. An
// invalid cfg does not fail here: Config.Validate explains it, and every Do
// returns that error.
func New(conn grpc.ClientConnInterface, cfg Config) *Sim {
	s := &Sim{client: extprocv3.NewExternalProcessorClient(conn)}
	s.fc, s.cfgErr = resolve(cfg)
	return s
}

// Stats returns the filter's counters so far.
func (s *Sim) Stats() Stats { return s.stats.snapshot() }

// Request is the downstream HTTP request as Envoy's codec hands it to the
// filter chain.
type Request struct {
	Method    string // default GET
	Scheme    string // default http; becomes :scheme
	Authority string // becomes :authority; if empty, the host header is used
	Path      string // path with query, default "/"; becomes :path
	// Headers in arrival order, names in any case. "host" is folded into
	// :authority; connection-specific headers are dropped; pseudo-headers are
	// refused (docs/envoy.md#how-request-headers-arrive).
	Headers Headers
	// Body is the request body; empty means the headers carry end_of_stream.
	Body []byte

	// Route is the merged per-route ExtProcPerRoute for this request (the
	// most specific typed_per_filter_config), or nil (docs/envoy.md#per-route-configuration).
	Route *extprocfilterv3.ExtProcPerRoute

	// LocalReply, when set, is a reply an earlier filter in the chain made
	// (jwt_authn 401, rbac 403...): ext_proc's decodeHeaders never runs, and
	// its encodeHeaders sees only this reply (docs/envoy.md#streams-that-start-with-response-headers).
	LocalReply *LocalReply
}

// LocalReply is a local reply made by a filter before ext_proc.
type LocalReply struct {
	Status  int
	Headers Headers // added by that filter, e.g. www-authenticate
	Body    string
	Details string // e.g. "jwt_authn_access_denied{Jwt_is_missing}"
}

// Upstream is the simulated cluster behind the router.
type Upstream struct {
	// Status, Headers and Body are the canned response (Status default 200).
	// An empty Body means the response headers carry end_of_stream.
	Status  int
	Headers Headers
	Body    []byte

	// Handler, when set, is called instead with the request as the router
	// sends it (after ext_proc's request mutations). An error makes the router
	// answer 503 upstream_reset_before_response_started{connection_failure}.
	Handler func(ctx context.Context, r *UpstreamRequest) (*UpstreamResponse, error)
}

// UpstreamRequest is the request the upstream receives.
type UpstreamRequest struct {
	Method, Scheme, Authority, Path string
	Headers                         Headers // without pseudo-headers, in Envoy's order
	Body                            []byte
}

// UpstreamResponse is what an Upstream.Handler answers.
type UpstreamResponse struct {
	Status  int
	Headers Headers
	Body    []byte
}

// Response is what the downstream client receives.
type Response struct {
	Status  int
	Headers Headers // without :status, in Envoy's order
	Body    []byte
	// Details is %RESPONSE_CODE_DETAILS%: "via_upstream", an
	// ImmediateResponse's details, or ext_proc's error details such as
	// "ext_proc_error_per-message_timeout_exceeded".
	Details string
	// UpstreamReached reports whether the router sent the request upstream;
	// UpstreamRequest is what the upstream saw.
	UpstreamReached bool
	UpstreamRequest *UpstreamRequest
	// Log holds what Envoy would log at debug/warn level about this request's
	// ext_proc processing (ignored mode_override, spurious message, rejected
	// ImmediateResponse headers...), to make failing tests readable.
	Log []string
}

// Do runs one HTTP request through the filter and the upstream, and returns
// the downstream response. An error means the request could not be run
// (invalid Config or Request, a feature the stand-in does not reproduce, or
// ctx ended); Envoy-level failures are responses, as in Envoy.
func (s *Sim) Do(ctx context.Context, req Request, up Upstream) (*Response, error) {
	if s.cfgErr != nil {
		return nil, s.cfgErr
	}
	x := newExchange(ctx, s)
	defer x.finish()
	res, err := x.run(req, bytes.NewReader(req.Body), len(req.Body) > 0, up.serve)
	if err != nil {
		return nil, err
	}
	body, err := readBody(res.body)
	if err != nil {
		return nil, err
	}
	return &Response{
		Status:          res.status(),
		Headers:         res.headers.regular(),
		Body:            body,
		Details:         res.details,
		UpstreamReached: x.upstream != nil,
		UpstreamRequest: x.upstream,
		Log:             x.log,
	}, nil
}

func readBody(rc io.ReadCloser) ([]byte, error) {
	if rc == nil {
		return nil, nil
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("envoystandin: reading the response body: %w", err)
	}
	return b, nil
}

// serve adapts the canned or handler upstream to the exchange.
func (up Upstream) serve(ctx context.Context, r *UpstreamRequest, body io.Reader) (*upstreamResult, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	r.Body = b
	ur := &UpstreamResponse{Status: up.Status, Headers: up.Headers, Body: up.Body}
	if up.Handler != nil {
		if ur, err = up.Handler(ctx, r); err != nil {
			return nil, err
		}
		if ur == nil {
			return nil, fmt.Errorf("envoystandin: Upstream.Handler returned neither a response nor an error")
		}
	}
	res := &upstreamResult{status: ur.Status, headers: ur.Headers}
	if res.status == 0 {
		res.status = 200
	}
	if len(ur.Body) > 0 {
		res.body = io.NopCloser(bytes.NewReader(ur.Body))
	}
	return res, nil
}
