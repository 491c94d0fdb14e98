package extproc

import (
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/header"
)

// TestReadsRequestHeaderMatchesReadRequest keeps the wire decoder's list of
// request headers (readsRequestHeader) the same as the names readRequest
// reads: a header readRequest reads but the decoder dropped would silently
// never reach a decision.
func TestReadsRequestHeaderMatchesReadRequest(t *testing.T) {
	names := []string{":authority", ":path", ":method", ":scheme", "origin", "host",
		"access-control-request-method", "access-control-request-headers",
		"access-control-request-private-network", "sec-fetch-site", "sec-fetch-mode",
		"user-agent", "cookie", "referer", "x-forwarded-for", "content-type", "vary"}
	for _, name := range names {
		var empty, got cors.Request
		authority, path := readRequest([]header.Field{{Name: name, Value: "v"}}, &got)
		read := got != empty || authority != "" || path != ""
		if read != readsRequestHeader(name) {
			t.Errorf("%s: readRequest reads it: %v; readsRequestHeader says %v", name, read, readsRequestHeader(name))
		}
	}
}
