//go:build e2e

package e2e_test

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// crossSiteFormPOST: a form on another page POSTs to the API with the user's
// cookie. A form submission is a navigation, not a fetch: no preflight, no
// CORS check on the answer (Fetch §4.1 main fetch: "navigate" mode), so CORS
// alone lets it reach the application. Cross-origin protection refuses it at
// the edge, and lets the same POST from the allowed origin through.
//
// The attacking page is evil.example.test, a sibling of the API under
// example.test: Sec-Fetch-Site is "same-site", and a SameSite cookie would not
// stop it either.
func crossSiteFormPOST(t *testing.T, s *suite) {
	const path = "/v1/transfers/new"
	appTab := s.browser.open(t, app)
	readable(t, appTab.fetch(t, request{URL: api + "/v1/session/login", Credentials: "include"}), 200)

	evilTab := s.browser.open(t, evil)
	posted := func(n int) func() bool { return func() bool { return len(s.edge.matching("POST", path)) >= n } }
	evilTab.submitForm(t, api+path, posted(1))
	refused := count(t, "POSTs at the edge from "+evil, s.edge.matching("POST", path), 1)
	if len(refused) == 1 {
		r := refused[0]
		if r.Status != 403 {
			t.Errorf("the edge answered the cross-site form POST %d, want 403", r.Status)
		}
		if r.Header.Get("Cookie") != "session=s3cr3t" || r.Header.Get("Origin") != evil || r.Header.Get("Sec-Fetch-Site") == "" {
			t.Errorf("the browser sent Cookie %q, Origin %q, Sec-Fetch-Site %q; want the session cookie, %s, and a Sec-Fetch-Site",
				r.Header.Get("Cookie"), r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site"), evil)
		}
	}
	count(t, "POSTs at the upstream after the attack", s.upstream.matching("POST", path), 0)

	appTab.submitForm(t, api+path, posted(2))
	if got := count(t, "POSTs at the upstream from "+app, s.upstream.matching("POST", path), 1); len(got) == 1 {
		if c := got[0].Header.Get("Cookie"); c != "session=s3cr3t" {
			t.Errorf("the allowed POST reached the upstream with Cookie %q, want session=s3cr3t", c)
		}
	}
}

// submitForm submits a POST form to action from the page, as a user clicking
// "submit" would, and waits until answered() says the edge has answered it.
// The browser's own state is not waited on: a 403 without a body lands on
// Chromium's error page, and evaluating script during the navigation is not
// reliable.
func (tb *tab) submitForm(t *testing.T, action string, answered func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	// The submit runs after the script returns, so that the evaluation is not
	// cut short by the navigation it starts.
	js := `(() => { const f = document.createElement("form"); f.method = "POST"; f.action = ` + strconv.Quote(action) + `;
		const i = document.createElement("input"); i.name = "amount"; i.value = "1000"; f.appendChild(i);
		document.body.appendChild(f); setTimeout(() => f.submit(), 0); return "submitted"; })()`
	if _, err := tb.drv.eval(ctx, js); err != nil {
		t.Fatalf("submitting a form to %s from %s: %v", action, tb.origin, err)
	}
	for !answered() {
		select {
		case <-ctx.Done():
			t.Fatalf("the edge never answered the form POST from %s to %s", tb.origin, action)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
