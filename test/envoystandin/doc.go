// Package envoystandin is a stand-in for Envoy, used because no Envoy binary
// can run where corsgate is built and tested. It is not Envoy and not a fake
// server: it is a Go ext_proc *client* that plays Envoy's
// envoy.filters.http.ext_proc filter — with just enough of the HTTP
// connection manager, the filter manager's local replies and the router
// around it — against any envoy.service.ext_proc.v3.ExternalProcessor server,
// over real gRPC. Every behaviour is taken from Envoy's source as described
// in docs/envoy.md, whose headings the comments link to; the numbered items
// below are those of docs/envoy.md#what-the-stand-in-reproduces.
//
//	sim := envoystandin.New(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{AllowModeOverride: true}})
//	res, err := sim.Do(ctx, envoystandin.Request{Method: "OPTIONS", Authority: "api.example.com", Path: "/v1",
//		Headers: envoystandin.NewHeaders("origin", "https://app.example", "access-control-request-method", "PUT")},
//		envoystandin.Upstream{Status: 200})
//
// Proxy wraps the same machinery in an http.Handler for `make run` and
// browser tests.
//
// # Reproduced
//
//   - Configuration is go-control-plane's ExternalProcessor and
//     ExtProcPerRoute with Envoy's defaults (message_timeout 200 ms,
//     SEND/SEND/NONE/NONE/SKIP/SKIP, allow_mode_override false,
//     failure_mode_allow false, status_on_error 500); per-route disabled,
//     processing_mode (replacing the whole mode) and failure_mode_allow;
//     a Version switch for the behaviours that changed between 1.33 and 1.37.
//   - Item 1: one gRPC stream per HTTP request, opened lazily when the first
//     message is sent, all streams multiplexed over the one ClientConn given
//     to New; Do is safe for concurrent use.
//   - Item 2: request_headers as Envoy builds them: lower-case keys,
//     :authority :path :method :scheme first, host folded into :authority,
//     connection-specific headers dropped, repeated inline headers (origin,
//     access-control-request-*, user-agent, x-forwarded-for...) joined with
//     ",", values in raw_value with value empty, end_of_stream, an empty
//     non-nil metadata_context, protocol_config on the first message
//     (>= 1.34), forward_rules; optionally x-forwarded-proto and x-request-id.
//   - Item 3: one message at a time under the message_timeout timer, exactly
//     one reply: override_message_timeout (with max_message_timeout),
//     mode_override gated by allow_mode_override, the body configuration, a
//     pending headers message and allowed_override_modes, with DEFAULT
//     meaning "no change" from 1.34; the matching HeadersResponse;
//     immediate_response at any time unless disable_immediate_response;
//     anything else spurious: 500 from 1.35 unless fail-open, ignored before.
//   - Item 4: the upstream (canned or a callback that sees the mutated
//     request); response_headers with :status first when response headers
//     are SEND and processing is not complete.
//   - Item 5: stream end by CloseSend plus cancelling the stream (a server
//     sees codes.Canceled or io.EOF), at the end of the request or, from
//     1.37, as soon as no further message can be needed; GracefulClose
//     half-closes and waits up to 1 s for the server's status instead.
//   - Item 6: a server that returns OK before processing is done: the request
//     continues unmodified and the remaining phases are skipped.
//   - Item 7: non-OK status or a stream that cannot start →
//     status_on_error with details ext_proc_error_gRPC_error_<code>{<msg>},
//     or continue when fail-open; timeout → 504
//     ext_proc_error_per-message_timeout_exceeded, or continue; a rejected
//     mutation → status_on_error with Envoy's message as details, whatever
//     failure_mode_allow says.
//   - Item 8: a local reply from an earlier filter (Request.LocalReply)
//     opens a fresh stream whose first and only message is response_headers.
//   - Item 9: header mutations exactly as MutationUtils::applyHeaderMutations:
//     remove before set, entries in order, only the deprecated append
//     BoolValue (default false: overwrite), append_action ignored, addCopy on
//     inline names (vary, access-control-*) joining with ",", a value-only
//     header setting an empty value, value plus raw_value an error, invalid
//     characters an error, the 100-header limit, and the default
//     HeaderMutationRules (routing and x-envoy-* headers ignored, ":"
//     headers and host never removed) or the configured ones.
//   - Item 10: local replies as Utility::prepareLocalReply builds them: a
//     missing or < 200 status becomes 200, details with whitespace turned
//     into "_", content-length and content-type removed on an empty body,
//     text/plain by default otherwise, a trailers-only answer to gRPC
//     requests, no body for HEAD.
//   - Item 11: counters mirroring Envoy's stats (Sim.Stats).
//   - Item 12: per-route disabled opens no stream; mode_override can be
//     ignored (allow_mode_override false) so servers must still answer
//     response_headers.
//
// # Not reproduced
//
//   - Body and trailer processing (STREAMED, BUFFERED, FULL_DUPLEX_STREAMED
//     bodies; trailers SEND): Do returns an error when Envoy would send a body
//     message. CONTINUE_AND_REPLACE body replacement is reproduced.
//   - request_attributes / response_attributes (CEL), observability mode,
//     http_service, processing_request_modifier, on_processing_response:
//     Config.Validate refuses them.
//   - Dynamic metadata (metadata_context is always empty, dynamic_metadata
//     in replies is dropped), route cache clearing, route
//     response_headers_to_add, local_reply_config mappers, other HTTP
//     filters in the chain, access logs, tracing.
//   - The exact set of inline header names depends on the Envoy build; the
//     stand-in uses a standard build with the CORS filter linked in (see
//     inline.go).
//   - A processor that cannot be reached fails the stream before it starts
//     (grpc-go), where Envoy's async client counts it as started first: the
//     reply is the same, streams_started differs.
//   - HCM behaviours outside ext_proc's view: path normalisation, x-envoy-*
//     sanitising, x-forwarded-for with use_remote_address, server/date
//     rewriting, request and idle timeouts, circuit breakers.
package envoystandin
