package explain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/filesource"
)

// Fix is the smallest policy change found that lets the browser through. It
// is checked: explain applies it, compiles the result as the server would and
// explains the request again before suggesting it.
type Fix struct {
	// Policy is the policy to change, namespace/name, or the one to create.
	Policy string `json:"policy"`
	New    bool   `json:"new,omitempty"`
	Source string `json:"source,omitempty"`
	// Changes are the edits, in words.
	Changes []string `json:"changes,omitempty"`
	// YAML is the policy after the change.
	YAML string `json:"yaml,omitempty"`
	// None says why there is no safe change, when there is none.
	None string `json:"none,omitempty"`
	// Warnings are the changed policy's warnings (a change may be legal and
	// still risky, such as credentials for a plain-http origin).
	Warnings []string `json:"warnings,omitempty"`
}

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

	work := slices.Clone(policies)
	idx := -1
	fix := &Fix{}
	if res.Policy == nil {
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
			if work[i].Policy.Namespace+"/"+work[i].Policy.Name == *res.Policy {
				idx = i
			}
		}
		if idx < 0 {
			return nil
		}
		fix.Source = work[idx].File
	}
	obj := work[idx].Policy.DeepCopy()
	work[idx].Policy = *obj
	spec := &work[idx].Policy.Spec
	fix.Policy = obj.Namespace + "/" + obj.Name

	cur := res
	if fix.New {
		cur = nil
	}
	for step := 0; step < maxFixSteps; step++ {
		if cur != nil && (cur.Browser.Allowed || cur.Browser.NotCORS) {
			if warnings, err := compileWarnings(&work[idx].Policy); err == nil {
				fix.Warnings = warnings
			}
			out, _ := sigsyaml.Marshal(minimal(&work[idx].Policy))
			fix.YAML = string(out)
			return fix
		}
		var change, none string
		if cur == nil {
			change, none = seedNewPolicy(spec, &creq, req.Credentials)
		} else {
			change, none = nextChange(spec, cur, &creq, req.Credentials)
		}
		if none != "" {
			return &Fix{Policy: fix.Policy, New: fix.New, Source: fix.Source, None: none}
		}
		fix.Changes = append(fix.Changes, change)
		if _, err := compileWarnings(&work[idx].Policy); err != nil {
			return &Fix{Policy: fix.Policy, New: fix.New, Source: fix.Source,
				None: fmt.Sprintf("the change that would allow it (%s) makes the policy invalid: %s", strings.Join(fix.Changes, "; "), compile.Message(err))}
		}
		next, err := ExplainWith(work, withoutFixSearch(req), opts)
		if err != nil {
			return nil
		}
		if next.Policy == nil || *next.Policy != fix.Policy {
			return &Fix{Policy: fix.Policy, New: fix.New, Source: fix.Source,
				None: fmt.Sprintf("after %s another policy decides the request; change that one, or its hosts and path prefixes", strings.Join(fix.Changes, "; "))}
		}
		cur = next
	}
	return &Fix{Policy: fix.Policy, New: fix.New, Source: fix.Source, None: "no change of this policy found that lets the browser through"}
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
