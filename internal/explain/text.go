package explain

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/header"
)

// WriteText writes the explanation for people. Scripts read the JSON form.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	req := r.Request
	p("Request:   %s %s%s", req.Method, req.Authority, req.Path)
	if req.Origin != "" || r.Kind != cors.KindNotCORS.String() {
		p("Origin:    %s%s", req.Origin, map[bool]string{true: " (with credentials)", false: ""}[req.Credentials])
	}
	p("Kind:      %s", r.Kind)
	if r.Policy == nil {
		p("Policy:    none: no CorsPolicy selects this host and path; the edge changes nothing")
	} else {
		src := ""
		if r.Source != "" {
			src = " (" + r.Source + ")"
		}
		p("Policy:    %s%s, by %s", *r.Policy, src, claimText(*r.Claim))
	}
	if r.Ambiguous {
		p("  ambiguous: the path selects different policies raw and decoded; no policy grants the request")
	}
	for _, l := range r.Losers {
		p("  lost:    %s, by %s: %s", l.Policy, claimText(l.Claim), l.Why)
	}
	for _, inv := range r.Invalid {
		p("  not served: %s decides nothing: %s", inv.Policy, inv.Error)
	}
	for _, g := range r.PartlyGranted {
		p("  granted in part: %s serves only what grants cover: %s", g.Policy, g.Error)
	}
	for _, wn := range r.Warnings {
		p("  warning: %s", wn)
	}
	p("Outcome:   %s", r.Outcome)
	reason := r.Reason
	if r.Detail != "" {
		reason += fmt.Sprintf(" (%q)", r.Detail)
	}
	p("Reason:    %s", reason)

	switch {
	case !r.Upstream:
		p("Edge:      answers %d itself; the upstream never sees the request", r.Status)
		p("Details:   %s", r.Details)
		if len(r.headerOrder) > 0 {
			p("Headers:")
		}
		writeHeaders(p, r.headerOrder)
	case r.Outcome == cors.OutcomeForwarded.String() || r.Outcome == cors.OutcomeNoPolicy.String():
		p("Edge:      forwards the request and changes neither it nor the response")
	default:
		p("Edge:      forwards the request; on the upstream's response it")
		if len(r.Remove) > 0 {
			p("           removes %s", strings.Join(r.Remove, ", "))
		} else {
			p("           removes every access-control-* header the upstream sends")
		}
		if len(r.headerOrder) == 0 {
			p("           sets no CORS header")
		} else {
			p("           sets (overwriting):")
		}
		writeHeaders(p, r.headerOrder)
	}
	if len(r.Response) > 0 {
		p("Browser receives (CORS headers):")
		writeMap(p, r.Response)
	}
	if e := r.Enforce; e != nil {
		p("Enforce:   would be %s", e.Outcome)
		if e.Status != 0 {
			p("           answering %d", e.Status)
		}
		writeMap(p, e.Headers)
	}

	br := r.Browser
	switch {
	case br.NotCORS:
		p("Browser:   no Origin header: the browser runs no CORS check (same-origin, or not a browser)")
	case br.Unknown:
		p("Browser:   %s", br.Note)
	case br.Allowed && r.Kind == cors.KindPreflight.String():
		p("Browser:   allowed: the preflight passes and the browser sends the request")
	case br.Allowed:
		p("Browser:   allowed: the page reads the response")
	default:
		p("Browser:   blocked (%s)", br.Failure)
		p("  Chrome:  %s", br.Chrome)
		p("  Firefox: %s", br.Firefox)
		if br.Safari != "" {
			p("  Safari:  %s", br.Safari)
		}
	}
	if br.Note != "" && !br.Unknown {
		p("  note:    %s", br.Note)
	}
	if r.Kind == cors.KindPreflight.String() && !br.Unknown {
		// Preflight caches (Fetch §4.8 step 7.8) outlive policy changes.
		maxAge, ok := r.Headers["access-control-max-age"]
		if !ok {
			maxAge = r.Response["access-control-max-age"]
		}
		switch c := CachedFor(maxAge); {
		case br.Allowed && c != "":
			p("Cache:     %s", c)
		case !br.Allowed:
			p("Cache:     %s", StaleAllowance())
		}
	}
	if r.Fix != nil {
		r.Fix.writeText(p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func claimText(c Claim) string {
	host := "every host"
	if c.Host != "" {
		host = "host " + c.Host
	}
	return host + ", path prefix " + c.PathPrefix
}

func writeHeaders(p func(string, ...any), hs []header.Field) {
	for _, h := range hs {
		p("           %s: %s", h.Name, h.Value)
	}
}

func writeMap(p func(string, ...any), m map[string]string) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p("           %s: %s", n, m[n])
	}
}
