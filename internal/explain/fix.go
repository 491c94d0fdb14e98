package explain

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/table"
)

// Fix is the smallest policy change found that lets the browser through. It
// is checked: explain applies it, compiles the result as the server would and
// explains the request again before suggesting it.
type Fix struct {
	// Policy is the policy to change, namespace/name, or the one to create.
	Policy string `json:"policy"`
	New    bool   `json:"new,omitempty"`
	Source string `json:"source,omitempty"`
	// Note says how explain read the request when a browser would send it
	// differently (a method fetch upper-cases): the fix is for what the
	// browser sends.
	Note string `json:"note,omitempty"`
	// Changes are the edits, in words.
	Changes []string `json:"changes,omitempty"`
	// Effects are what else the change does besides letting this request
	// through: who loses or gains access, which requests the edge starts
	// treating differently. A policy covers more than one request, so every
	// change has some; read them before applying it.
	Effects []Effect `json:"effects,omitempty"`
	// YAML is the policy after the change.
	YAML string `json:"yaml,omitempty"`
	// None says why there is no safe change, when there is none.
	None string `json:"none,omitempty"`
	// Warnings are the changed policy's warnings (a change may be legal and
	// still risky, such as credentials for a plain-http origin).
	Warnings []string `json:"warnings,omitempty"`
}

// Effect is one consequence of a fix beyond the request explained.
type Effect struct {
	// Kind is stable for scripts:
	//   - access-removed: Origins lose access they have today;
	//   - enforcement: every request the policy covers changes how the edge
	//     treats it (DryRun to Enforce);
	//   - starts-serving: a policy that decides nothing today (new, or
	//     invalid) starts deciding every request it covers;
	//   - access-added: Origins (or every allowed origin) gain access beyond
	//     this request: all of the policy's hosts and paths, credentials, a
	//     method, a header, the private network.
	Kind string `json:"kind"`
	// Origins are the origins concerned, as written in the policy ("*" for
	// every origin); empty when the effect is on every origin the policy
	// allows.
	Origins []string `json:"origins,omitempty"`
	// Message says it in words, with what to do about it.
	Message string `json:"message"`
}

// Effect kinds.
const (
	EffectAccessRemoved = "access-removed"
	EffectEnforcement   = "enforcement"
	EffectStartsServing = "starts-serving"
	EffectAccessAdded   = "access-added"
)

// maxFixSteps bounds the search: a preflight can fail on the origin, the
// method, a header and private network access, plus the mode and
// credentials; each step fixes one.
const maxFixSteps = 8

func findFix(policies []filesource.Object, req Request, res *Result, opts Options) *Fix {
	p, err := parse(req)
	if err != nil {
		return nil
	}
	creq, _, _ := extprocRead(p)
	if !creq.HasOrigin {
		return nil
	}
	if f, ok := fixForNormalizedMethod(policies, req, &creq, opts); ok {
		return f
	}

	work := slices.Clone(policies)
	idx := -1
	fix := &Fix{}
	var before *v1alpha1.CorsPolicySpec // the spec that serves today; nil when none does
	repairing := false
	if i := invalidDecider(policies, req, opts); i >= 0 {
		// A policy that does not compile would decide the request: repair
		// it. A new policy beside it would conflict with it (or lose to it)
		// as soon as its owner repairs it.
		idx, repairing = i, true
		fix.Source = work[idx].File
	} else if res.Policy == nil {
		// No policy: propose one for this host and origin.
		host := res.Request.Authority
		if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
			host = host[:i]
		}
		name := "cors-" + strings.NewReplacer(".", "-", "*", "any", "[", "", "]", "", ":", "-").Replace(strings.ToLower(host))
		np := v1alpha1.CorsPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CorsPolicy"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, CreationTimestamp: metav1.NewTime(time.Now())},
			Spec:       v1alpha1.CorsPolicySpec{Hosts: []string{strings.ToLower(host)}},
		}
		work = append(work, filesource.Object{Policy: np})
		idx = len(work) - 1
		fix.New = true
		fix.Changes = append(fix.Changes, fmt.Sprintf("create CorsPolicy default/%s for host %s", name, strings.ToLower(host)))
	} else {
		for i := range work {
			if work[i].Policy.Key() == *res.Policy {
				idx = i
			}
		}
		if idx < 0 {
			return nil
		}
		fix.Source = work[idx].File
		before = work[idx].Policy.Spec.DeepCopy()
	}
	obj := work[idx].Policy.DeepCopy()
	work[idx].Policy = *obj
	spec := &work[idx].Policy.Spec
	fix.Policy = obj.Key()
	none := func(why string) *Fix {
		return &Fix{Policy: fix.Policy, New: fix.New, Source: fix.Source, None: why}
	}
	// again explains the request with the changes so far. ok is false when
	// the search ends, end being its answer: nil when explain fails, or why
	// not when another policy now decides the request.
	again := func() (next *Result, end *Fix, ok bool) {
		next, err := ExplainWith(work, withoutFixSearch(req), opts)
		if err != nil {
			return nil, nil, false
		}
		if next.Policy == nil || *next.Policy != fix.Policy {
			return nil, none(fmt.Sprintf("after %s another policy decides the request; change that one, or its hosts and path prefixes", strings.Join(fix.Changes, "; "))), false
		}
		return next, nil, true
	}

	cur := res
	if fix.New {
		cur = nil
	}
	if repairing {
		changes, why := repair(&work[idx].Policy, &creq, req.Credentials)
		if why != "" {
			return none(fmt.Sprintf("%s would decide this request, but it does not compile and explain cannot repair it: %s", fix.Policy, why))
		}
		fix.Changes = append(fix.Changes, changes...)
		next, end, ok := again()
		if !ok {
			return end
		}
		cur = next
	}
	for range maxFixSteps {
		if cur != nil && (cur.Browser.Allowed || cur.Browser.NotCORS) {
			if warnings, err := compileWarnings(&work[idx].Policy); err == nil {
				fix.Warnings = warnings
			}
			fix.Effects = effects(before, spec, repairing)
			out, _ := sigsyaml.Marshal(minimal(&work[idx].Policy))
			fix.YAML = string(out)
			return fix
		}
		var change, why string
		if cur == nil {
			change, why = seedNewPolicy(spec, &creq, req.Credentials)
		} else {
			change, why = nextChange(spec, cur, &creq, req.Credentials)
		}
		if why != "" {
			return none(why)
		}
		fix.Changes = append(fix.Changes, change)
		if _, err := compileWarnings(&work[idx].Policy); err != nil {
			return none(fmt.Sprintf("the change that would allow it (%s) makes the policy invalid: %s", strings.Join(fix.Changes, "; "), compile.Message(err)))
		}
		next, end, ok := again()
		if !ok {
			return end
		}
		cur = next
	}
	return none("no change of this policy found that lets the browser through")
}

// fixForNormalizedMethod handles a preflight that asks for a method no
// browser asks for: "put" instead of "PUT". fetch normalizes the method
// before the preflight, so the fix is the one for the method the browser
// sends; adding "put" would allow nothing a browser sends. ok is false when
// the requested method is as a browser sends it.
func fixForNormalizedMethod(policies []filesource.Object, req Request, r *cors.Request, opts Options) (*Fix, bool) {
	m := r.AccessControlRequestMethod
	if kindOf(r) != cors.KindPreflight || cors.NormalizeMethod(m) == m {
		return nil, false
	}
	up := cors.NormalizeMethod(m)
	norm := req
	norm.Headers = nil
	for _, line := range req.Headers {
		if name, _, _ := strings.Cut(line, ":"); strings.EqualFold(strings.TrimSpace(name), "access-control-request-method") {
			line = "Access-Control-Request-Method: " + up
		}
		norm.Headers = append(norm.Headers, line)
	}
	note := fmt.Sprintf("no browser asks for %q: fetch upper-cases DELETE, GET, HEAD, OPTIONS, POST and PUT however a page writes them (Fetch §2.2.1, \"normalize a method\"), so a page that writes %q sends %q; the fix is for %q (a client that really sends %q is not a browser)", m, m, up, up, m)
	res, err := ExplainWith(policies, withoutFixSearch(norm), opts)
	if err != nil {
		return nil, true
	}
	if res.Browser.Allowed || res.Browser.NotCORS {
		policy := ""
		if res.Policy != nil {
			policy = *res.Policy
		}
		return &Fix{Policy: policy, Note: note, None: fmt.Sprintf("the browser's request (%s) is already allowed: no policy change is needed", up)}, true
	}
	f := findFix(policies, withoutFixSearch(norm), res, opts)
	if f != nil {
		f.Note = note
	}
	return f, true
}

// invalidDecider is the index of the policy that would decide the request if
// it compiled, when that policy does not compile; -1 when there is none. Each
// policy that does not compile is stood in for by one that does, with the
// same hosts, path prefixes and targetRefs (less the entries that are
// themselves invalid), and the request is looked up again.
func invalidDecider(policies []filesource.Object, req Request, opts Options) int {
	var stubs []filesource.Object
	invalid := map[string]int{}
	for i, o := range policies {
		if _, _, err := compile.Compile(&o.Policy); err == nil {
			stubs = append(stubs, o)
			continue
		}
		s := o.Policy.DeepCopy()
		hosts := validOnly(s.Spec.Hosts, table.NormalizeHost)
		prefixes := validOnly(s.Spec.PathPrefixes, table.NormalizePathPrefix)
		// A list whose every entry is invalid must not become an empty
		// one, which means every host or every path.
		if len(hosts) == 0 && len(s.Spec.Hosts) > 0 || len(prefixes) == 0 && len(s.Spec.PathPrefixes) > 0 {
			continue
		}
		s.Spec = v1alpha1.CorsPolicySpec{Hosts: hosts, PathPrefixes: prefixes, TargetRefs: s.Spec.TargetRefs, AllowOrigins: []string{"*"}}
		stubs = append(stubs, filesource.Object{File: o.File, Policy: *s})
		invalid[s.Key()] = i
	}
	if len(invalid) == 0 {
		return -1
	}
	res, err := ExplainWith(stubs, withoutFixSearch(req), opts)
	if err != nil || res.Policy == nil {
		return -1
	}
	if i, ok := invalid[*res.Policy]; ok {
		return i
	}
	return -1
}

func validOnly(list []string, normalize func(string) (string, error)) []string {
	var out []string
	for _, v := range list {
		if _, err := normalize(v); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// repairableLists are the spec's lists whose invalid entries a repair
// removes: an entry that does not compile serves nobody today, so removing
// it takes access from no one.
var repairableLists = map[string]func(*v1alpha1.CorsPolicySpec) *[]string{
	"hosts":              func(s *v1alpha1.CorsPolicySpec) *[]string { return &s.Hosts },
	"pathPrefixes":       func(s *v1alpha1.CorsPolicySpec) *[]string { return &s.PathPrefixes },
	"allowOrigins":       func(s *v1alpha1.CorsPolicySpec) *[]string { return &s.AllowOrigins },
	"allowOriginRegexes": func(s *v1alpha1.CorsPolicySpec) *[]string { return &s.AllowOriginRegexes },
	"allowMethods":       func(s *v1alpha1.CorsPolicySpec) *[]string { return &s.AllowMethods },
	"allowHeaders":       func(s *v1alpha1.CorsPolicySpec) *[]string { return &s.AllowHeaders },
	"exposeHeaders":      func(s *v1alpha1.CorsPolicySpec) *[]string { return &s.ExposeHeaders },
}

// repair makes obj compile, always by the stricter choice: it removes the
// list entries the compiler refuses ("*" or "null" beside credentials, a
// malformed origin, a bad regex, a duplicate), drops an out-of-range maxAge,
// and, when no origin is left, allows the request's. What it cannot repair
// without guessing the owner's intent, it names (why).
func repair(obj *v1alpha1.CorsPolicy, r *cors.Request, credentials bool) (changes []string, why string) {
	spec := &obj.Spec
	for range maxFixSteps {
		_, _, err := compile.Compile(obj)
		if err == nil {
			return changes, ""
		}
		remove := map[string][]int{}
		progress := false
		for _, fe := range cors.FieldErrors(err) {
			field := strings.TrimPrefix(fe.Field, "spec.")
			name, index, indexed := strings.Cut(field, "[")
			list := repairableLists[name]
			switch {
			case indexed && list != nil:
				i, convErr := strconv.Atoi(strings.TrimSuffix(index, "]"))
				if convErr != nil || i >= len(*list(spec)) || slices.Contains(remove[name], i) {
					continue
				}
				remove[name] = append(remove[name], i)
				changes = append(changes, fmt.Sprintf("remove %q from spec.%s (%s)", (*list(spec))[i], name, fe.Message))
			case field == "maxAge":
				spec.MaxAge = nil
				progress = true
				changes = append(changes, fmt.Sprintf("remove spec.maxAge (%s)", fe.Message))
			case field == "allowOrigins" && len(spec.AllowOrigins) == 0 && len(spec.AllowOriginRegexes) == 0:
				// No origin at all: the request's is added below.
			default:
				return nil, fe.Error()
			}
		}
		for name, idx := range remove {
			list := repairableLists[name](spec)
			wasSet := len(*list) > 0
			slices.Sort(idx)
			for _, i := range slices.Backward(idx) {
				*list = slices.Delete(*list, i, i+1)
			}
			if wasSet && len(*list) == 0 && (name == "hosts" || name == "pathPrefixes") {
				// An empty list means every host or every path: never
				// widen a policy by repairing it.
				return nil, fmt.Sprintf("every entry of spec.%s is invalid: write the hosts and path prefixes it is meant for", name)
			}
			progress = true
		}
		if len(spec.AllowOrigins) == 0 && len(spec.AllowOriginRegexes) == 0 {
			if _, none := originProblem(r.Origin, credentials || spec.AllowCredentials); none != "" {
				return nil, none
			}
			spec.AllowOrigins = []string{r.Origin}
			progress = true
			changes = append(changes, fmt.Sprintf("add %q to spec.allowOrigins (no valid origin is left)", r.Origin))
		}
		if !progress {
			return nil, compile.Message(err)
		}
	}
	return nil, "too many problems to repair one by one"
}

// scope names what a policy covers, for effect messages.
func scope(s *v1alpha1.CorsPolicySpec) string {
	if len(s.TargetRefs) > 0 {
		return "every route its targetRefs attach it to"
	}
	hosts, paths := "every host", "every path"
	if len(s.Hosts) > 0 {
		hosts = "host " + strings.Join(s.Hosts, ", ")
	}
	if len(s.PathPrefixes) > 0 {
		paths = "path prefix " + strings.Join(s.PathPrefixes, ", ")
	}
	return hosts + " (" + paths + ")"
}

// effects compares the spec that serves today (nil: none does) with the
// fixed one and says what the change does to requests other than the one
// explained. repaired: the fixed spec replaces one that does not compile.
func effects(before, after *v1alpha1.CorsPolicySpec, repaired bool) []Effect {
	where := scope(after)
	if before == nil {
		why := "it is new"
		if repaired {
			why = "it does not compile"
		}
		return []Effect{{Kind: EffectStartsServing, Message: fmt.Sprintf(
			"the policy decides nothing today (%s); from now on it decides every CORS request to %s that no closer policy decides: "+
				"preflights from origins it does not list are answered 403, and the edge removes the access-control-* headers the upstream sets for them; "+
				"if the upstream answers CORS itself today, its other callers lose access: list them too", why, where)}}
	}
	var out []Effect
	removed := slices.DeleteFunc(slices.Clone(before.AllowOrigins), func(o string) bool { return slices.Contains(after.AllowOrigins, o) })
	removed = append(removed, slices.DeleteFunc(slices.Clone(before.AllowOriginRegexes), func(o string) bool { return slices.Contains(after.AllowOriginRegexes, o) })...)
	if len(removed) > 0 {
		msg := fmt.Sprintf("%s lose access to %s", quoteList(removed), where)
		if slices.Contains(removed, "*") {
			msg = fmt.Sprintf("every origin other than %s loses access to %s: \"*\" lets any site read its responses today (without credentials), and a credentialed response needs the origin itself (Fetch §4.9, CORS check); "+
				"to keep the public access, leave this policy as it is and give the credentialed endpoints a policy of their own (another host, or a longer path prefix)", quoteList(after.AllowOrigins), where)
		}
		out = append(out, Effect{Kind: EffectAccessRemoved, Origins: removed, Message: msg})
	}
	if before.Mode == v1alpha1.ModeDryRun && after.Mode != v1alpha1.ModeDryRun {
		out = append(out, Effect{Kind: EffectEnforcement, Message: fmt.Sprintf(
			"every request to %s changes enforcement, for every origin, not only this one: in DryRun the edge only records its decisions; in Enforce it answers preflights itself (204, or 403 for origins, methods and headers it does not allow) and sets or removes the CORS headers of responses; "+
				"first read what DryRun would deny (the policy's denied origins: corsgate explain --observed, or the decision log)", where)})
	}
	added := slices.DeleteFunc(slices.Clone(after.AllowOrigins), func(o string) bool { return slices.Contains(before.AllowOrigins, o) })
	if len(added) > 0 && !slices.Contains(before.AllowOrigins, "*") { // "*" allowed them already
		with := "with the policy's methods and headers"
		if after.AllowCredentials && before.AllowCredentials {
			with = "with the policy's methods and headers and with credentials (your users' cookies): add only origins you trust with their sessions"
		}
		out = append(out, Effect{Kind: EffectAccessAdded, Origins: added, Message: fmt.Sprintf(
			"%s may read responses from all of %s, not only from this URL, %s", quoteList(added), where, with)})
	}
	if after.AllowCredentials && !before.AllowCredentials {
		out = append(out, Effect{Kind: EffectAccessAdded, Origins: slices.Clone(after.AllowOrigins), Message: fmt.Sprintf(
			"every origin the policy allows (%s) may send credentialed requests (cookies, HTTP authentication) to %s and read the responses: list only origins you trust with your users' sessions", quoteList(after.AllowOrigins), where)})
	}
	for _, d := range []struct {
		what          string
		before, after []string
	}{
		{"the method", before.AllowMethods, after.AllowMethods},
		{"the request header", before.AllowHeaders, after.AllowHeaders},
	} {
		if n := slices.DeleteFunc(slices.Clone(d.after), func(v string) bool { return slices.Contains(d.before, v) }); len(n) > 0 {
			out = append(out, Effect{Kind: EffectAccessAdded, Message: fmt.Sprintf("every origin the policy allows may send %s %s to %s", d.what, quoteList(n), where)})
		}
	}
	if after.AllowPrivateNetwork && !before.AllowPrivateNetwork {
		out = append(out, Effect{Kind: EffectAccessAdded, Message: fmt.Sprintf("every origin the policy allows may reach %s from a public page (Private Network Access)", where)})
	}
	return out
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

// withoutFixSearch marks a request explained inside the fix search, which
// must not search again.
func withoutFixSearch(r Request) Request {
	r.noFix = true
	return r
}

func extprocRead(p parsed) (cors.Request, string, string) {
	return extproc.ReadRequest(p.headers)
}

func compileWarnings(obj *v1alpha1.CorsPolicy) ([]string, error) {
	_, ws, err := compile.Compile(obj)
	var out []string
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out, err
}

// seedNewPolicy writes the spec of a new policy that allows the request.
func seedNewPolicy(spec *v1alpha1.CorsPolicySpec, r *cors.Request, credentials bool) (string, string) {
	if _, ok := originProblem(r.Origin, credentials); ok != "" {
		return "", ok
	}
	spec.AllowOrigins = []string{r.Origin}
	spec.AllowCredentials = credentials
	return fmt.Sprintf("allowOrigins: [%q]", r.Origin), ""
}

// originProblem says why an origin cannot be allowed, if it cannot.
func originProblem(origin string, credentials bool) (string, string) {
	if origin == "null" && credentials {
		return "", `the request's Origin is "null", which corsgate never allows with credentials (any sandboxed iframe or local file sends it): make the request from a real origin`
	}
	// A trial compile judges the origin as the engine does.
	if _, _, err := cors.Compile(cors.Config{AllowOrigins: []string{origin}}); err != nil {
		return "", fmt.Sprintf("the request's Origin %q is not a serialized origin a browser sends (%s): fix the client, or the Origin given to explain", origin, compile.Message(err))
	}
	return origin, ""
}

// nextChange makes one change to spec for the first failure of cur.
func nextChange(spec *v1alpha1.CorsPolicySpec, cur *Result, r *cors.Request, credentials bool) (string, string) {
	d := &cur.decision
	if cur.Ambiguous {
		return "", "the path reads differently raw and decoded (percent-encoding, dot segments) and the readings select different policies: request the normalised path; no policy change makes an ambiguous path safe to grant"
	}
	if d.DryRun {
		spec.Mode = v1alpha1.ModeEnforce
		return "set spec.mode: Enforce (DryRun changes nothing at the edge)", ""
	}
	if !d.Allowed {
		switch d.Reason {
		case cors.ReasonOriginNotAllowed, cors.ReasonOriginMalformed:
			if _, none := originProblem(r.Origin, credentials || spec.AllowCredentials); none != "" {
				return "", none
			}
			if slices.Contains(spec.AllowOrigins, "*") {
				return "", fmt.Sprintf("the policy allows every origin with %q, which never covers %q: remove \"*\" and list the origins, %q among them", "*", r.Origin, r.Origin)
			}
			spec.AllowOrigins = append(spec.AllowOrigins, r.Origin)
			return fmt.Sprintf("add %q to spec.allowOrigins", r.Origin), ""
		case cors.ReasonMethodNotAllowed:
			m := d.Detail
			if m == "*" || strings.ContainsAny(m, " \t,") || m == "" {
				return "", fmt.Sprintf("the requested method %q is not a method a browser asks for: fix the client", m)
			}
			switch strings.ToUpper(m) {
			case "CONNECT", "TRACE", "TRACK":
				return "", fmt.Sprintf("%s is a forbidden method that browsers never send: fix the client", m)
			}
			spec.AllowMethods = append(spec.AllowMethods, m)
			return fmt.Sprintf("add %q to spec.allowMethods", m), ""
		case cors.ReasonHeaderNotAllowed:
			n := strings.ToLower(d.Detail)
			if n == "*" || n == "" || strings.ContainsAny(n, " \t") {
				return "", fmt.Sprintf("the requested header %q is not a header name: fix the client", d.Detail)
			}
			spec.AllowHeaders = append(spec.AllowHeaders, n)
			return fmt.Sprintf("add %q to spec.allowHeaders", n), ""
		case cors.ReasonHeadersTooLarge:
			return "", "Access-Control-Request-Headers is longer than corsgate reads (4096 bytes), far beyond what a browser sends: fix the client"
		case cors.ReasonCrossOriginRefused:
			// Cross-origin protection lets trusted origins through: the
			// policy's allowed origins.
			if !r.HasOrigin || r.Origin == "" {
				return "", "cross-origin protection refuses a cross-site state-changing request without an Origin to trust: make the request from a page whose origin the policy allows"
			}
			if _, none := originProblem(r.Origin, credentials || spec.AllowCredentials); none != "" {
				return "", none
			}
			spec.AllowOrigins = append(spec.AllowOrigins, r.Origin)
			return fmt.Sprintf("add %q to spec.allowOrigins (cross-origin protection trusts the allowed origins)", r.Origin), ""
		case cors.ReasonPrivateNetworkNotAllowed:
			spec.AllowPrivateNetwork = true
			return "set spec.allowPrivateNetwork: true", ""
		}
	}
	// The edge allowed it and the browser still refuses: credentials.
	switch cur.Browser.Failure {
	case "credentials-not-allowed", "wildcard-origin-with-credentials":
		if _, none := originProblem(r.Origin, true); none != "" {
			return "", none
		}
		if slices.Contains(spec.AllowOrigins, "*") {
			spec.AllowOrigins = []string{r.Origin}
			spec.AllowCredentials = true
			return fmt.Sprintf("replace \"*\" in spec.allowOrigins by %q (credentials need listed origins) and set spec.allowCredentials: true", r.Origin), ""
		}
		spec.AllowCredentials = true
		return "set spec.allowCredentials: true", ""
	case "method-not-allowed":
		spec.AllowMethods = append(spec.AllowMethods, r.AccessControlRequestMethod)
		return fmt.Sprintf("add %q to spec.allowMethods", r.AccessControlRequestMethod), ""
	}
	if cur.Browser.Unknown {
		return "", "the upstream answers this preflight (unmatchedPreflight: Forward); give its answer with --upstream-header to judge it"
	}
	return "", "no policy change lets the browser through: " + cur.Browser.Failure
}

// minimal is the object as one would write it: no status, no server fields.
func minimal(p *v1alpha1.CorsPolicy) any {
	type meta struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	return struct {
		APIVersion string                  `json:"apiVersion"`
		Kind       string                  `json:"kind"`
		Metadata   meta                    `json:"metadata"`
		Spec       v1alpha1.CorsPolicySpec `json:"spec"`
	}{v1alpha1.GroupVersion.String(), "CorsPolicy", meta{p.Name, p.Namespace}, p.Spec}
}

// writeText writes the fix for people: the changes, then what else they do
// (what breaks first), then the policy after the change.
func (f *Fix) writeText(p func(string, ...any)) {
	note := func() {
		if f.Note != "" {
			p("  note:    %s", f.Note)
		}
	}
	if f.None != "" {
		p("Fix:       none: %s", f.None)
		note()
		return
	}
	p("Fix:       smallest change to %s%s:", f.Policy, map[bool]string{true: " (new)", false: ""}[f.New])
	note()
	for _, c := range f.Changes {
		p("  - %s", c)
	}
	for _, e := range f.Effects {
		if e.Kind == EffectAccessRemoved {
			p("  breaks:  %s", e.Message)
		}
	}
	for _, e := range f.Effects {
		if e.Kind != EffectAccessRemoved {
			p("  also:    %s", e.Message)
		}
	}
	for _, wn := range f.Warnings {
		p("  warning: %s", wn)
	}
	for line := range strings.SplitSeq(strings.TrimRight(f.YAML, "\n"), "\n") {
		p("    %s", line)
	}
}
