package explain_test

import (
	"strings"
	"testing"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/explain"
	"github.com/corsgate/corsgate/test/gen"
)

// The text output carries each browser's words, the notes, and how long a
// preflight answer may outlive a policy change.
func TestWriteText(t *testing.T) {
	t.Parallel()
	maxAge := int32(86400)
	policies := objects(gen.CorsPolicy("cached", gen.WithHosts("api.example.com"), gen.WithSpec(v1alpha1.CorsPolicySpec{
		Hosts: []string{"api.example.com"}, AllowOrigins: []string{"https://app.example.com"}, AllowMethods: []string{"PUT"},
		AllowHeaders: []string{"content-type"}, MaxAge: &maxAge,
	})))
	for _, tc := range []struct {
		desc string
		req  explain.Request
		want []string
	}{
		{desc: "allowed preflight: cached per engine", req: preflight("https://api.example.com/x", "https://app.example.com", "PUT", "content-type"),
			want: []string{"Cache:     cached for up to Chromium 2 h, Firefox 24 h, WebKit 10 min"}},
		{desc: "refused preflight: an earlier answer may still be cached", req: preflight("https://api.example.com/x", "https://app.example.com", "PATCH", ""),
			want: []string{"  Safari:  Preflight response is not successful. Status code: 403", "Cache:     a browser that cached an earlier answer allowing this preflight"}},
		{desc: "blocked actual request: WebKit's words too", req: explain.Request{URL: "https://api.example.com/x", Headers: []string{"Origin: https://evil.example"}},
			want: []string{"  Chrome:  Access to fetch at", "  Firefox: Cross-Origin Request Blocked", "  Safari:  Origin https://evil.example is not allowed by Access-Control-Allow-Origin."}},
		{desc: "an upstream's ACAH * relied on for Authorization", req: explain.Request{
			Method: "OPTIONS", URL: "https://other.example.com/x",
			Headers:  []string{"Origin: https://app.example.com", "Access-Control-Request-Method: PUT", "Access-Control-Request-Headers: authorization"},
			Upstream: []string{"Access-Control-Allow-Origin: https://app.example.com", "Access-Control-Allow-Methods: PUT", "Access-Control-Allow-Headers: *"},
		}, want: []string{"Browser:   allowed", "  note:    the preflight answer allows Authorization only through Access-Control-Allow-Headers: *", "whatwg/fetch#1919"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			res, err := explain.Explain(policies, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := res.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("the text lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}
