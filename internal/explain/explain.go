// Package explain answers "why was this request blocked?" for one request:
// which policy decides it and which others matched and lost, what the engine
// decided, the exact status and headers the edge produces, what a browser
// reports, and the smallest policy change that would allow it.
//
// It runs the server's own code for every step that the server takes: the
// compile path (internal/compile), the table's match and decision (table.Decide), the
// request reading and the reply building (extproc.ReadRequest,
// extproc.Answer). Only the browser's side is modelled here, after the Fetch
// standard.
package explain

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/header"
	"github.com/corsgate/corsgate/internal/table"
)

// Request is one HTTP request, given the way curl takes it.
type Request struct {
	// Method defaults to GET.
	Method string
	// URL gives the host (":authority") and the path and query (":path").
	URL string
	// Headers are "Name: value" lines, as curl's -H. A Host header replaces
	// the URL's host, as it does for curl and for Envoy.
	Headers []string
	// Credentials says the browser sends cookies (fetch's credentials:
	// "include"): it changes what the browser accepts, not what the edge does.
	Credentials bool
	// Upstream are the upstream's response headers, "Name: value", for a
	// request that reaches it; none when empty.
	Upstream []string

	noFix bool // set inside the fix search, which must not recurse
}

// Result is the explanation. Its JSON form is explain's -o json output.
type Result struct {
	Request RequestInfo `json:"request"`
	// Policy is the deciding policy, namespace/name; nil when none applies.
	Policy *string `json:"policy"`
	// Source is the file the policy came from, when read from files.
	Source string `json:"source,omitempty"`
	// Claim is the deciding policy's host and path prefix that matched.
	Claim *Claim `json:"claim,omitempty"`
	// Losers are the other policies that match the request, best first.
	Losers []Loser `json:"losers,omitempty"`
	// Invalid are the policies that did not compile, or that host ownership
	// does not admit: they decide nothing.
	Invalid []Invalid `json:"invalid,omitempty"`
	// PartlyGranted are the targetRefs policies that CorsHostGrants cover
	// only in part: what is cut off is not served.
	PartlyGranted []Invalid `json:"partlyGranted,omitempty"`
	// Ambiguous: the path selects different policies depending on how it is
	// read (raw, or decoded as an upstream may read it), so no policy grants
	// the request; Policy names the one the normalised reading selects.
	Ambiguous bool `json:"ambiguous,omitempty"`
	// Warnings are the deciding policy's risky-but-legal settings.
	Warnings []string `json:"warnings,omitempty"`

	Kind    string `json:"kind"`
	Outcome string `json:"outcome"`
	// Reason is the engine's reason label (allowed, origin_not_allowed...).
	Reason string `json:"reason"`
	// Detail names the offending value of a denial.
	Detail string `json:"detail,omitempty"`
	// Upstream says whether the request reaches the upstream.
	Upstream bool `json:"upstream"`
	// Status is the edge's answer when it answers itself (0 otherwise).
	Status int `json:"status,omitempty"`
	// Details is Envoy's %RESPONSE_CODE_DETAILS% for an answer at the edge.
	Details string `json:"details,omitempty"`
	// Headers are the headers the edge answers with, or sets on the
	// upstream's response. Names are lower case.
	Headers map[string]string `json:"headers"`
	// Remove are the upstream response headers the edge removes.
	Remove []string `json:"remove,omitempty"`
	// Response is the CORS view (access-control-* and vary) of the response
	// the browser receives when the request went upstream: the upstream's
	// headers (Request.Upstream) after the edge's change.
	Response map[string]string `json:"response,omitempty"`

	// Enforce is what an enforcing policy would do, when the edge forwards
	// the request instead (a DryRun policy, or a denied preflight under
	// unmatchedPreflight: Forward).
	Enforce *Enforce `json:"enforce,omitempty"`

	// Browser is what the browser makes of the response.
	Browser Browser `json:"browser"`
	// Fix is the smallest policy change that would let the browser through.
	Fix *Fix `json:"fix,omitempty"`

	headerOrder []header.Field // Headers, in the order the edge sends them
	decision    cors.Decision
}

// RequestInfo is the request as explain read it.
type RequestInfo struct {
	Method      string `json:"method"`
	Authority   string `json:"authority"`
	Path        string `json:"path"`
	Origin      string `json:"origin,omitempty"`
	Credentials bool   `json:"credentials"`
}

// Claim is a host pattern ("" for every host) and a path prefix.
type Claim struct {
	Host       string `json:"host"`
	PathPrefix string `json:"pathPrefix"`
}

// Loser is a policy that matches the request and does not decide it.
type Loser struct {
	Policy string `json:"policy"`
	Source string `json:"source,omitempty"`
	Claim  Claim  `json:"claim"`
	Why    string `json:"why"`
}

// Invalid is a policy that did not compile.
type Invalid struct {
	Policy string `json:"policy"`
	Source string `json:"source,omitempty"`
	Error  string `json:"error"`
}

// Enforce is the decision an enforcing policy would carry out.
type Enforce struct {
	Outcome string            `json:"outcome"`
	Status  int               `json:"status,omitempty"`
	Headers map[string]string `json:"headers"`
}

// Explain explains req under the policies, compiled as the server compiles
// them. A request it cannot read (no URL, a header without a colon) is an
// error; invalid policies are not: they are reported in Result.Invalid, as
// they decide nothing.
func Explain(policies []filesource.Object, req Request) (*Result, error) {
	return ExplainWith(policies, req, Options{})
}

// Options are the cluster's parts of the compile path, set as the
// Kubernetes source sets them on its compile.Builder; files need none.
type Options struct {
	// Resolve turns targetRefs into hosts and paths (Builder.Resolve).
	Resolve compile.Resolver
	// Admit and Grant are host ownership (Builder.Admit, Builder.Grant):
	// nil when it is off.
	Admit func(*v1alpha1.CorsPolicy, *table.Entry) error
	Grant func(namespace, key string, c compile.Claim, dst []compile.Claim) []compile.Claim
}

// ExplainWith is Explain with the cluster's parts of the compile path.
func ExplainWith(policies []filesource.Object, req Request, opts Options) (*Result, error) {
	objs := make([]v1alpha1.CorsPolicy, len(policies))
	for i := range policies {
		objs[i] = policies[i].Policy
	}
	b := compile.NewBuilder()
	b.Resolve, b.Admit, b.Grant = opts.Resolve, opts.Admit, opts.Grant
	t, results := b.Build(objs)
	sources := make(map[string]string, len(policies))
	for _, p := range policies {
		sources[p.Policy.Key()] = p.File
	}
	res, err := explainTable(t, sources, req)
	if err != nil {
		return nil, err
	}
	for i, r := range results {
		if r.Err != nil {
			res.Invalid = append(res.Invalid, Invalid{Policy: r.Key(), Source: policies[i].File, Error: compile.Message(r.Err)})
		}
		if r.NotGranted != nil {
			res.Invalid = append(res.Invalid, Invalid{Policy: r.Key(), Source: policies[i].File, Error: "not served, no CorsHostGrant admits it: " + r.NotGranted.Error()})
		}
		if r.PartlyGranted != nil {
			res.PartlyGranted = append(res.PartlyGranted, Invalid{Policy: r.Key(), Source: policies[i].File, Error: r.PartlyGranted.Error()})
		}
		if res.Policy != nil && r.Key() == *res.Policy {
			for _, w := range r.Warnings {
				res.Warnings = append(res.Warnings, w.String())
			}
		}
	}
	if !req.noFix && !res.Browser.Allowed && !res.Browser.NotCORS {
		res.Fix = findFix(policies, req, res, opts)
	}
	return res, nil
}

// parsed is a Request read into what the server sees.
type parsed struct {
	headers   []header.Field // as Envoy sends them: pseudo-headers first
	upstream  []header.Field
	url       string
	authority string
	path      string
}

func parse(req Request) (parsed, error) {
	var p parsed
	if req.URL == "" {
		return p, errors.New("no URL: give the request's URL, such as https://api.example.com/v1/orders")
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return p, fmt.Errorf("URL %q: %w", req.URL, err)
	}
	if u.Host == "" {
		return p, fmt.Errorf("URL %q has no host: write it whole, such as https://api.example.com/v1/orders", req.URL)
	}
	method := req.Method
	if method == "" {
		method = "GET"
	}
	p.url = req.URL
	p.authority, p.path = u.Host, u.RequestURI()
	var rest []header.Field
	for _, line := range req.Headers {
		h, err := parseHeader(line)
		if err != nil {
			return p, err
		}
		if h.Name == "host" {
			p.authority = h.Value // Envoy folds Host into :authority
			continue
		}
		rest = append(rest, h)
	}
	p.headers = append([]header.Field{{Name: ":authority", Value: p.authority}, {Name: ":path", Value: p.path}, {Name: ":method", Value: method}}, rest...)
	for _, line := range req.Upstream {
		h, err := parseHeader(line)
		if err != nil {
			return p, fmt.Errorf("upstream header: %w", err)
		}
		p.upstream = append(p.upstream, h)
	}
	return p, nil
}

func parseHeader(line string) (header.Field, error) {
	name, value, ok := strings.Cut(line, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return header.Field{}, fmt.Errorf("header %q: write it as 'Name: value', such as 'Origin: https://app.example.com'", line)
	}
	return header.Field{Name: strings.ToLower(name), Value: strings.Trim(value, " \t")}, nil
}

// explainTable explains req under a built table.
func explainTable(t *table.Table, sources map[string]string, req Request) (*Result, error) {
	p, err := parse(req)
	if err != nil {
		return nil, err
	}
	creq, authority, path := extproc.ReadRequest(p.headers)
	res := &Result{
		Request: RequestInfo{Method: creq.Method, Authority: authority, Path: path, Origin: creq.Origin, Credentials: req.Credentials},
		Headers: map[string]string{},
	}
	m, d := t.Decide(&creq, authority, path)
	entry := m.Entry
	res.Ambiguous = m.Ambiguous
	cands := t.Candidates(authority, path)
	res.Losers = losers(cands, entry, sources)
	if entry == nil {
		res.Outcome, res.Upstream = cors.OutcomeNoPolicy.String(), true
		res.Kind = kindOf(&creq).String()
		res.Reason = "no_policy"
		res.Response = corsView(p.upstream)
		res.Browser = browserVerdict(&creq, req.Credentials, p.url, false, 0, p.upstream)
		return res, nil
	}
	key := entry.Key()
	res.Policy, res.Source = &key, sources[key]
	c := bestClaim(cands, entry)
	res.Claim = &c

	res.decision = d
	res.Kind, res.Reason, res.Detail = d.Kind.String(), d.Reason.Label(), d.Detail
	res.Outcome = cors.OutcomeOf(&d).String()
	a := extproc.Answer(&d, p.upstream)
	res.Status, res.Details, res.Remove = a.Status, a.Details, a.Remove
	res.headerOrder = a.Headers
	for _, h := range a.Headers {
		res.Headers[h.Name] = h.Value
	}
	res.Upstream = !a.Respond
	if a.Respond {
		res.Browser = browserVerdict(&creq, req.Credentials, p.url, true, a.Status, a.Headers)
	} else {
		final := apply(p.upstream, a)
		res.Response = corsView(final)
		res.Browser = browserVerdict(&creq, req.Credentials, p.url, false, 0, final)
		if d.Kind == cors.KindPreflight {
			// A forwarded preflight is answered by the upstream, which
			// explain does not see: say so rather than guess.
			res.Browser.Note = "the upstream answers this preflight; the browser's verdict depends on that answer (give it with --upstream-header to judge it)"
			if len(p.upstream) == 0 {
				res.Browser.Allowed, res.Browser.Chrome, res.Browser.Firefox, res.Browser.Safari = false, "", "", ""
				res.Browser.Unknown = true
			}
		}
	}
	if cors.EnforceOutcomeOf(&d) != cors.OutcomeOf(&d) {
		ed := d
		ed.Action = d.EnforceAction
		if !d.DryRun { // a denied preflight forwarded: Enforce means Reject
			ed.Action, ed.Status = cors.ActionRespond, 403
		}
		ea := extproc.Answer(&ed, p.upstream)
		e := &Enforce{Outcome: cors.EnforceOutcomeOf(&d).String(), Status: ea.Status, Headers: map[string]string{}}
		if !d.DryRun {
			e.Outcome = cors.OutcomePreflightRejected.String()
		}
		for _, h := range ea.Headers {
			e.Headers[h.Name] = h.Value
		}
		res.Enforce = e
	}
	return res, nil
}

func kindOf(r *cors.Request) cors.Kind {
	switch {
	case !r.HasOrigin:
		return cors.KindNotCORS
	case r.Method == "OPTIONS" && r.AccessControlRequestMethod != "":
		return cors.KindPreflight
	default:
		return cors.KindActual
	}
}

// apply is Envoy's header mutation on the upstream's response: removals
// first, then each set replaces every earlier value.
func apply(upstream []header.Field, a extproc.EdgeAnswer) []header.Field {
	var out []header.Field
	for _, h := range upstream {
		if !slices.Contains(a.Remove, h.Name) && !slices.ContainsFunc(a.Headers, func(s header.Field) bool { return s.Name == h.Name }) {
			out = append(out, h)
		}
	}
	return append(out, a.Headers...)
}

// corsView is the part of a response CORS is about: access-control-* and
// vary, one value per name (joined with ", " when repeated, as a browser
// reads them).
func corsView(hs []header.Field) map[string]string {
	var m map[string]string
	for _, h := range hs {
		if strings.HasPrefix(h.Name, cors.PrefixAccessControl) || h.Name == cors.HeaderVary {
			if m == nil {
				m = map[string]string{}
			}
			if prev, ok := m[h.Name]; ok {
				m[h.Name] = prev + ", " + h.Value
				continue
			}
			m[h.Name] = h.Value
		}
	}
	return m
}

// bestClaim is the entry's claim that covers the request, among the
// table's candidates for it.
func bestClaim(cands []table.Candidate, e *table.Entry) Claim {
	for _, c := range cands {
		if c.Entry == e {
			return Claim{Host: c.Host, PathPrefix: c.Prefix}
		}
	}
	return Claim{}
}

// losers lists the policies, other than the winner, that cover the request,
// best first, each with why it lost: the table's own candidates and steps,
// worded.
func losers(cands []table.Candidate, winner *table.Entry, sources map[string]string) []Loser {
	if len(cands) == 0 {
		return nil
	}
	first := cands[0]
	var out []Loser
	for _, c := range cands {
		if c.Entry == winner {
			continue
		}
		lc := Claim{Host: c.Host, PathPrefix: c.Prefix}
		why := whyLost(first, c)
		if c.Entry == first.Entry {
			// The normalised reading of an ambiguous path chose another
			// policy than the raw one (Result.Ambiguous).
			why = "claims the raw path, which reads differently from the normalised path the deciding policy claims: the request is refused as ambiguous"
		}
		out = append(out, Loser{Policy: c.Entry.Key(), Source: sources[c.Entry.Key()], Claim: lc, Why: why})
	}
	return out
}

// rankNames are compile's attachment ranks, as a sentence names them.
var rankNames = map[int]string{
	compile.RankSelector: "a hosts/pathPrefixes policy", compile.RankGateway: "attached to a Gateway",
	compile.RankListener: "attached to a listener", compile.RankRoute: "attached to an HTTPRoute", compile.RankRule: "attached to a route rule",
}

func whyLost(w, l table.Candidate) string {
	host := func(h string) string {
		if h == "" {
			return "a policy for every host"
		}
		return "host " + h
	}
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
	we, le := w.Entry, l.Entry
	switch l.Lost {
	case table.StepExactHost:
		return fmt.Sprintf("an exact host beats a wildcard or no host: %s (%s) over %s", host(w.Host), we.Key(), host(l.Host))
	case table.StepLongerWildcard:
		return fmt.Sprintf("the longer wildcard suffix wins: %s over %s", host(w.Host), host(l.Host))
	case table.StepHost:
		return fmt.Sprintf("a host beats no host: %s (%s) over %s", host(w.Host), we.Key(), host(l.Host))
	case table.StepLongerPrefix:
		return fmt.Sprintf("the longer path prefix wins: %s (%s) over %s", w.Prefix, we.Key(), l.Prefix)
	case table.StepOlderClaim:
		return fmt.Sprintf("same host and path prefix, another namespace: the namespace whose claim is older decides, as the Gateway API routes an identical match to the oldest route (attaching closer to the route never takes a request from another team): %s claims it since %s, this one since %s",
			we.Key(), stamp(we.ClaimedSince()), stamp(le.ClaimedSince()))
	case table.StepRank:
		return fmt.Sprintf("same host, path prefix and namespace: the policy attached closer to the route wins (GEP-713: route rule, route, listener, Gateway, then hosts/pathPrefixes): %s is %s, this one %s",
			we.Key(), rankNames[we.Rank], rankNames[le.Rank])
	case table.StepOlder:
		if ws, ls := we.ClaimedSince(), le.ClaimedSince(); !ws.Equal(ls) && (!we.Since.IsZero() || !le.Since.IsZero()) {
			return fmt.Sprintf("same host and path prefix; the older claim wins: %s claims it since %s, this one since %s (a policy attached to a route claims since the route was created)",
				we.Key(), stamp(ws), stamp(ls))
		}
		return fmt.Sprintf("same host and path prefix; the older policy wins: %s was created %s, this one %s",
			we.Key(), stamp(we.Created), stamp(le.Created))
	default:
		return fmt.Sprintf("same host, path prefix and age; the first by namespace/name wins: %s", we.Key())
	}
}
