package engine_test

import (
	"net/http"
	"strings"

	"github.com/corsgate/corsgate/internal/cors"
)

// corsgateHandler is a thin, test-only net/http adapter around the engine: it
// does with a Decision what the ext_proc server does, in net/http terms, so
// that corsgate can stand in the jub0bs/cors-benchmarks harness next to the
// two middleware libraries. It is not a product: corsgate runs at the edge.
//
// It reads the request headers as the ext_proc server reads Envoy's (repeated
// lines joined with ","), answers at the edge for ActionRespond, and for
// ActionContinue sets the decision's headers and Origin in Vary before
// calling the next handler. (The edge sets them on the upstream's response
// and removes the upstream's own Access-Control-* headers; a middleware runs
// before the handler, so it cannot.)
type corsgateHandler struct {
	policy *cors.Policy
	next   http.Handler
}

func newCorsgateHandler(p *cors.Policy, next http.Handler) http.Handler {
	return &corsgateHandler{policy: p, next: next}
}

// varyOrigin is shared by every response; its capacity equals its length, so
// an append by a later handler copies it instead of writing into it.
var varyOrigin = []string{"Origin"}

func (h *corsgateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := cors.Request{Method: r.Method}
	// Direct map reads with canonical keys, as both references do (Get would
	// canonicalise the key on every call), and only those the engine reads:
	// Access-Control-Request-Method only on OPTIONS, the other two only on
	// a preflight, and none once every header of the request has been found.
	hdr := r.Header
	found := 0
	if v, ok := hdr["Origin"]; ok {
		req.Origin, req.HasOrigin = joinLines(v), true
		found++
	}
	if req.HasOrigin && r.Method == http.MethodOptions && found < len(hdr) {
		if v, ok := hdr["Access-Control-Request-Method"]; ok {
			req.AccessControlRequestMethod = joinLines(v)
			found++
		}
		if req.AccessControlRequestMethod != "" && found < len(hdr) {
			if v, ok := hdr["Access-Control-Request-Headers"]; ok {
				req.AccessControlRequestHeaders = joinLines(v)
				found++
			}
			if found < len(hdr) {
				req.AccessControlRequestPrivateNetwork = joinLines(hdr["Access-Control-Request-Private-Network"])
			}
		}
	}

	d := h.policy.Decide(&req)
	switch d.Action {
	case cors.ActionRespond:
		setHeaders(w.Header(), &d)
		w.WriteHeader(d.Status)
	case cors.ActionContinue:
		wh := w.Header()
		setHeaders(wh, &d)
		if v, ok := wh["Vary"]; ok {
			wh["Vary"] = append(v, "Origin")
		} else {
			wh["Vary"] = varyOrigin
		}
		h.next.ServeHTTP(w, r)
	default: // ActionPassThrough
		h.next.ServeHTTP(w, r)
	}
}

// joinLines folds repeated header lines the way Envoy does for inline headers.
func joinLines(v []string) string {
	switch len(v) {
	case 0:
		return ""
	case 1:
		return v[0]
	default:
		return strings.Join(v, ",")
	}
}

// setHeaders writes the decision's headers with one allocation for all their
// values.
func setHeaders(wh http.Header, d *cors.Decision) {
	hs := d.Headers.All()
	if len(hs) == 0 {
		return
	}
	vals := make([]string, len(hs))
	for i, hd := range hs {
		vals[i] = hd.Value
		wh[canonicalName(hd.Name)] = vals[i : i+1 : i+1]
	}
}

// canonicalName maps the engine's lower-case names (Envoy's spelling) to
// net/http's canonical keys without allocating.
func canonicalName(name string) string {
	switch name {
	case cors.HeaderACAO:
		return "Access-Control-Allow-Origin"
	case cors.HeaderACAC:
		return "Access-Control-Allow-Credentials"
	case cors.HeaderACAM:
		return "Access-Control-Allow-Methods"
	case cors.HeaderACAH:
		return "Access-Control-Allow-Headers"
	case cors.HeaderACMA:
		return "Access-Control-Max-Age"
	case cors.HeaderACEH:
		return "Access-Control-Expose-Headers"
	case cors.HeaderACAPN:
		return "Access-Control-Allow-Private-Network"
	case cors.HeaderVary:
		return "Vary"
	default:
		return http.CanonicalHeaderKey(name)
	}
}
