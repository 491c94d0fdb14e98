package cors_test

import (
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
)

func TestDecidePathAmbiguous(t *testing.T) {
	t.Parallel()
	preflight := cors.Request{Method: "OPTIONS", Origin: "https://partner.example", HasOrigin: true, AccessControlRequestMethod: "PUT"}
	actual := cors.Request{Method: "GET", Origin: "https://partner.example", HasOrigin: true}
	for _, tc := range []struct {
		desc   string
		req    cors.Request
		dryRun bool
		want   cors.Decision
	}{
		{desc: "preflight: 403 at the edge, no headers (Fetch §3.2.3)", req: preflight,
			want: cors.Decision{Kind: cors.KindPreflight, Action: cors.ActionRespond, Status: 403}},
		{desc: "actual: to the upstream, no CORS headers on its response", req: actual,
			want: cors.Decision{Kind: cors.KindActual, Action: cors.ActionContinue}},
		{desc: "OPTIONS without Access-Control-Request-Method is an actual request (Fetch §3.2.2)",
			req:  cors.Request{Method: "OPTIONS", Origin: "https://partner.example", HasOrigin: true},
			want: cors.Decision{Kind: cors.KindActual, Action: cors.ActionContinue}},
		{desc: "no Origin: not CORS", req: cors.Request{Method: "GET"},
			want: cors.Decision{Kind: cors.KindNotCORS, Action: cors.ActionContinue}},
		{desc: "DryRun preflight: nothing changes, Enforce would answer 403", req: preflight, dryRun: true,
			want: cors.Decision{Kind: cors.KindPreflight, Action: cors.ActionPassThrough, Status: 403, DryRun: true, EnforceAction: cors.ActionRespond}},
	} {
		d := cors.DecidePathAmbiguous(&tc.req, "/public/..%2Fprivate", tc.dryRun)
		tc.want.Reason, tc.want.Detail = cors.ReasonPathAmbiguous, "/public/..%2Fprivate"
		if d.Allowed || d.Headers.Len() != 0 || d.Kind != tc.want.Kind || d.Action != tc.want.Action || d.Status != tc.want.Status ||
			d.Reason != tc.want.Reason || d.Detail != tc.want.Detail || d.DryRun != tc.want.DryRun || d.EnforceAction != tc.want.EnforceAction {
			t.Errorf("%s: got %+v, want %+v", tc.desc, d, tc.want)
		}
	}
	if got := cors.ReasonPathAmbiguous.String() + " " + cors.ReasonPathAmbiguous.Label(); got != "path ambiguous path_ambiguous" {
		t.Errorf("reason spelt %q", got)
	}
}
