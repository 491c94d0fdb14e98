package table_test

import (
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

// Decide is the server's and explain's one way to decide: no table or no
// policy decides nothing; a matched policy decides; an ambiguous path is
// refused with the path, without its query or fragment, as the detail.
func TestDecide(t *testing.T) {
	t.Parallel()
	req := &cors.Request{Method: "GET", Origin: "https://partner.example", HasOrigin: true}
	var none *table.Table
	if m, d := none.Decide(req, "api.example.com", "/public/x"); m.Entry != nil || d != (cors.Decision{}) {
		t.Errorf("no table: %+v, %+v; want no entry and the zero decision", m, d)
	}
	tbl := publicTable(t)
	if m, d := tbl.Decide(req, "other.example.com", "/public/x"); m.Entry != nil || d != (cors.Decision{}) {
		t.Errorf("no policy: %+v, %+v; want no entry and the zero decision", m, d)
	}
	m, d := tbl.Decide(req, "api.example.com", "/public/x?token=secret")
	if m.Entry == nil || m.Entry.Name != "public" || m.Ambiguous || d != m.Entry.Policy.Decide(req) {
		t.Errorf("plain path: %+v, %+v; want public's own decision", m, d)
	}
	for _, path := range []string{"/public/..%2Fprivate?token=secret", "/public/..%2Fprivate#token=secret", "/public/..%2Fprivate"} {
		m, d := tbl.Decide(req, "api.example.com", path)
		if m.Entry == nil || m.Entry.Name != "strict" || !m.Ambiguous ||
			d.Reason != cors.ReasonPathAmbiguous || d.Kind != cors.KindActual || d.Detail != "/public/..%2Fprivate" {
			t.Errorf("%s: %+v, %+v; want strict, ambiguous, refused with detail /public/..%%2Fprivate", path, m, d)
		}
	}
}
