package envoystandin

// Envoy stores some header names in a single "inline" slot. A repeated inline
// header is folded into one entry joined with "," (no space), both when the
// codec parses a request or response and when a filter calls addCopy
// (docs/envoy.md#repeated-and-inline-headers, docs/envoy.md#how-request-headers-arrive). Which names are inline depends on the Envoy build: the
// built-in lists come from source/common/http/headers.h
// (INLINE_REQ_HEADERS, INLINE_REQ_RESP_STRING_HEADERS, INLINE_RESP_HEADERS),
// and filters register more at start-up — the CORS filter registers origin,
// access-control-request-* and every access-control-allow-*/expose/max-age
// response header; the compressor and cache filters register vary. The sets
// below are those of a standard build with the CORS filter linked in, which is
// every official Envoy image.

// reqRespInline are inline in both request and response maps.
var reqRespInline = []string{
	"connection", "content-length", "content-type", "keep-alive", "proxy-connection",
	"proxy-status", "transfer-encoding", "upgrade", "via", "x-request-id",
	"x-envoy-decorator-operation", "x-envoy-attempt-count",
}

var requestInline = setOf(reqRespInline,
	":authority", ":method", ":path", ":protocol", ":scheme",
	"expect", "grpc-timeout", "te", "user-agent",
	"x-client-trace-id", "x-forwarded-client-cert", "x-forwarded-for",
	"x-forwarded-host", "x-forwarded-proto",
	"x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node",
	"x-envoy-external-address", "x-envoy-force-trace", "x-envoy-internal",
	"x-envoy-original-path", "x-envoy-original-url", "x-envoy-retry-on",
	// Registered by the CORS filter (cors_filter.cc).
	"origin", "access-control-request-method", "access-control-request-headers",
	"access-control-request-private-network",
)

var responseInline = setOf(reqRespInline,
	":status", "date", "location", "server", "grpc-status", "grpc-message",
	"x-envoy-upstream-service-time", "x-envoy-degraded", "x-envoy-ratelimited",
	"x-envoy-upstream-canary", "x-envoy-immediate-health-check-fail",
	// Registered by the CORS filter (cors_filter.cc).
	"access-control-allow-origin", "access-control-allow-credentials",
	"access-control-allow-methods", "access-control-allow-headers",
	"access-control-max-age", "access-control-expose-headers",
	"access-control-allow-private-network",
	// Registered by the compressor and cache filters.
	"vary",
)

// codecDropped are connection-specific headers that Envoy's HTTP/1 codec and
// ConnectionManagerUtility::mutateRequestHeaders remove before any HTTP filter
// runs, so ext_proc never sees them (docs/envoy.md#how-request-headers-arrive). "te" survives only as
// "te: trailers" (Utility::sanitizeConnectionHeader).
var codecDropped = setOf(nil,
	"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
)

// hopByHop are the headers a proxy must not forward (RFC 9110 §7.6.1; the
// same list as net/http/httputil.ReverseProxy). Proxy strips them in both
// directions, also when the ext_proc server added one.
var hopByHop = setOf(nil,
	"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
	"proxy-authenticate", "proxy-authorization", "trailer",
)

func setOf(base []string, names ...string) map[string]bool {
	m := make(map[string]bool, len(base)+len(names))
	for _, n := range base {
		m[n] = true
	}
	for _, n := range names {
		m[n] = true
	}
	return m
}
