package explain_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/explain"
	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/test/gen"
)

// applyFix replaces (or adds) the fixed policy in objs and explains req
// again: a fix is only worth proposing if the browser is then let through.
func applyFix(t *testing.T, objs []filesource.Object, fix *explain.Fix, req explain.Request) *explain.Result {
	t.Helper()
	fixed, err := filesource.Load(writeFile(t, fix.YAML))
	if err != nil || len(fixed) != 1 {
		t.Fatalf("the fix's YAML does not load as one policy (%v):\n%s", err, fix.YAML)
	}
	out := slices.DeleteFunc(slices.Clone(objs), func(o filesource.Object) bool {
		return o.Policy.Namespace+"/"+o.Policy.Name == fix.Policy
	})
	res, err := explain.Explain(append(out, fixed...), req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Browser.Allowed {
		t.Fatalf("after the fix the browser still blocks it: %+v", res.Browser)
	}
	return res
}

func effectKinds(f *explain.Fix) []string {
	var kinds []string
	for _, e := range f.Effects {
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

// textAndJSON renders the result both ways, as `explain` and `explain -o
// json` print it.
func textAndJSON(t *testing.T, res *explain.Result) (string, map[string]any) {
	t.Helper()
	var b strings.Builder
	if err := res.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return b.String(), m
}

// jsonEffects is fix.effects of explain's JSON output.
func jsonEffects(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	fix, _ := m["fix"].(map[string]any)
	list, _ := fix["effects"].([]any)
	var out []map[string]any
	for _, e := range list {
		out = append(out, e.(map[string]any))
	}
	return out
}

// A fix that takes access from callers other than the one explained must say
// so: a credentialed request against a public policy can only be allowed by
// replacing "*" (a credentialed response must name the origin, Fetch §4.9
// CORS check), and every other site then loses access.
func TestFixSaysWhoLosesAccess(t *testing.T) {
	t.Parallel()
	objs := objects(gen.CorsPolicy("public", gen.WithHosts("public.example.com"), gen.WithOrigins("*")))
	req := explain.Request{URL: "https://public.example.com/x", Headers: []string{"Origin: https://app.example.com"}, Credentials: true}
	res, err := explain.Explain(objs, req)
	if err != nil {
		t.Fatal(err)
	}
	f := res.Fix
	if f == nil || f.None != "" {
		t.Fatalf("fix %+v, want a change with its consequence", f)
	}
	i := slices.IndexFunc(f.Effects, func(e explain.Effect) bool { return e.Kind == explain.EffectAccessRemoved })
	if i < 0 || !slices.Equal(f.Effects[i].Origins, []string{"*"}) || !strings.Contains(f.Effects[i].Message, "every origin other than \"https://app.example.com\" loses access") {
		t.Fatalf("effects %+v, want access-removed for \"*\" saying every other origin loses access", f.Effects)
	}
	if !strings.Contains(f.Effects[i].Message, "policy of their own") {
		t.Errorf("effect %q does not offer the alternative that keeps public access", f.Effects[i].Message)
	}
	text, m := textAndJSON(t, res)
	if !strings.Contains(text, "  breaks:  every origin other than") {
		t.Errorf("text output does not say what breaks:\n%s", text)
	}
	if es := jsonEffects(t, m); len(es) == 0 || es[0]["kind"] != "access-removed" {
		t.Errorf("JSON fix.effects = %v, want access-removed first", es)
	}
	applyFix(t, objs, f, req)
}

// Switching a DryRun policy to Enforce lets this request through and changes
// what the edge does for every request the policy covers.
func TestFixSaysEnforcementChanges(t *testing.T) {
	t.Parallel()
	objs := objects(gen.CorsPolicy("trial", gen.WithHosts("trial.example.com"), gen.WithPathPrefixes("/v1"),
		gen.WithOrigins("https://app.example.com"), func(p *v1alpha1.CorsPolicy) { p.Spec.Mode = v1alpha1.ModeDryRun }))
	req := explain.Request{URL: "https://trial.example.com/v1/x", Headers: []string{"Origin: https://app.example.com"}}
	res, err := explain.Explain(objs, req)
	if err != nil {
		t.Fatal(err)
	}
	f := res.Fix
	if f == nil || f.None != "" || !strings.Contains(strings.Join(f.Changes, ";"), "spec.mode: Enforce") {
		t.Fatalf("fix %+v, want spec.mode: Enforce", f)
	}
	i := slices.IndexFunc(f.Effects, func(e explain.Effect) bool { return e.Kind == explain.EffectEnforcement })
	if i < 0 {
		t.Fatalf("effects %v, want enforcement", effectKinds(f))
	}
	for _, want := range []string{"every request to host trial.example.com (path prefix /v1) changes enforcement", "explain --observed"} {
		if !strings.Contains(f.Effects[i].Message, want) {
			t.Errorf("enforcement effect %q does not say %q", f.Effects[i].Message, want)
		}
	}
	text, m := textAndJSON(t, res)
	if !strings.Contains(text, "  also:    every request to host trial.example.com") {
		t.Errorf("text output does not say enforcement changes:\n%s", text)
	}
	if es := jsonEffects(t, m); len(es) != 1 || es[0]["kind"] != "enforcement" {
		t.Errorf("JSON fix.effects = %v, want one enforcement effect", es)
	}
	applyFix(t, objs, f, req)
}

// Every fix says what else it does, in text and JSON: a policy covers more
// than the one request explained.
func TestEveryFixHasEffects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		req  explain.Request
		kind string
	}{
		{desc: "new origin", req: explain.Request{URL: "https://api.example.com/v2/x", Headers: []string{"Origin: https://new.example"}}, kind: explain.EffectAccessAdded},
		{desc: "new method", req: preflight("https://api.example.com/v2/x", "https://app.example.com", "DELETE", ""), kind: explain.EffectAccessAdded},
		{desc: "new header", req: preflight("https://api.example.com/v2/x", "https://app.example.com", "PUT", "x-trace-id"), kind: explain.EffectAccessAdded},
		{desc: "credentials", req: explain.Request{URL: "https://shop.example.com/", Headers: []string{"Origin: https://app.example.com"}, Credentials: true}, kind: explain.EffectAccessAdded},
		{desc: "new policy", req: explain.Request{URL: "https://api.example.org/", Headers: []string{"Origin: https://app.example.com"}}, kind: explain.EffectStartsServing},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			res, err := explain.Explain(shop, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Fix == nil || res.Fix.None != "" {
				t.Fatalf("fix %+v, want a change", res.Fix)
			}
			if !slices.Contains(effectKinds(res.Fix), tc.kind) {
				t.Errorf("effects %+v, want one of kind %s", res.Fix.Effects, tc.kind)
			}
			text, m := textAndJSON(t, res)
			if !strings.Contains(text, "  also:    ") {
				t.Errorf("text output has no effect line:\n%s", text)
			}
			if len(jsonEffects(t, m)) == 0 {
				t.Errorf("JSON has no fix.effects: %v", m["fix"])
			}
		})
	}
}

// Methods are case-sensitive, and fetch upper-cases DELETE, GET, HEAD,
// OPTIONS, POST and PUT whatever case a page writes them in, sending every
// other method as written (Fetch §2.2.1 "normalize a method"). So no browser
// asks for "put": the fix is for "PUT". It does ask for "patch", which only
// "patch" allows.
func TestFixLowerCaseMethod(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc    string
		allowed []string
		method  string
		add     string // the method the fix adds; "" = no change
		note    bool   // the fix says how a browser sends the method
	}{
		{desc: "put when PUT is allowed: nothing to change", allowed: []string{"PUT"}, method: "put", note: true},
		{desc: "put when PUT is not allowed: add PUT", allowed: []string{"PATCH"}, method: "put", add: "PUT", note: true},
		{desc: "Delete: add DELETE", allowed: []string{"PATCH"}, method: "Delete", add: "DELETE", note: true},
		{desc: "patch is sent as written: add patch", allowed: []string{"PATCH"}, method: "patch", add: "patch"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			objs := objects(gen.CorsPolicy("api", gen.WithHosts("api.example.com"), gen.WithOrigins("https://app.example.com"), gen.WithMethods(tc.allowed...)))
			req := preflight("https://api.example.com/x", "https://app.example.com", tc.method, "")
			res, err := explain.Explain(objs, req)
			if err != nil {
				t.Fatal(err)
			}
			f := res.Fix
			if f == nil {
				t.Fatal("no fix for a blocked preflight")
			}
			if tc.note != strings.Contains(f.Note, `"normalize a method"`) {
				t.Errorf("note %q, want one citing Fetch's normalize a method: %v", f.Note, tc.note)
			}
			text, _ := textAndJSON(t, res)
			if tc.note && !strings.Contains(text, "  note:    no browser asks for "+`"`+tc.method+`"`) {
				t.Errorf("text output does not say how a browser sends %q:\n%s", tc.method, text)
			}
			if tc.add == "" {
				if f.None == "" || len(f.Changes) > 0 || !strings.Contains(f.None, "already allowed") {
					t.Errorf("fix %+v, want none: the browser's PUT is allowed", f)
				}
				return
			}
			if f.None != "" || !slices.Equal(f.Changes, []string{`add "` + tc.add + `" to spec.allowMethods`}) {
				t.Fatalf("changes %q (none %q), want only: add %q", f.Changes, f.None, tc.add)
			}
			// The fix must never contradict itself: no warning that pages
			// send another spelling of what it adds.
			for _, w := range f.Warnings {
				if strings.Contains(w, "fetch sends \""+strings.ToUpper(tc.add)+"\"") {
					t.Errorf("the fix adds %q and warns %q", tc.add, w)
				}
			}
			normalized := req
			if tc.note {
				normalized = preflight("https://api.example.com/x", "https://app.example.com", tc.add, "")
			}
			applyFix(t, objs, f, normalized)
		})
	}
}

// A policy that does not compile decides nothing, but it is the one that
// decides once its owner repairs it: the fix repairs it rather than proposing
// a policy beside it (which would conflict with it, or lose to it), or
// widening a served policy that only decides while it is broken.
func TestFixRepairsTheInvalidDecider(t *testing.T) {
	t.Parallel()
	broken := gen.CorsPolicy("broken", gen.WithHosts("api.example.com"), gen.WithOrigins("*"), gen.WithCredentials())
	trailingSlash := gen.CorsPolicy("slash", gen.WithHosts("api.example.com"), gen.WithOrigins("https://app.example.com/", "https://b.example"))
	wildcard := gen.CorsPolicy("subdomains", gen.WithHosts("*.example.com"), gen.WithOrigins("https://app.example.com"))
	allHostsBad := gen.CorsPolicy("badhosts", gen.WithHosts("https://api.example.com"), gen.WithOrigins("*"), gen.WithCredentials())
	for _, tc := range []struct {
		desc    string
		objs    []filesource.Object
		req     explain.Request
		policy  string
		new     bool
		changes []string
	}{
		{desc: `"*" with credentials, no other policy`, objs: objects(broken),
			req:    explain.Request{URL: "https://api.example.com/x", Headers: []string{"Origin: https://app.example.com"}, Credentials: true},
			policy: "default/broken", changes: []string{`remove "*" from spec.allowOrigins`, `add "https://app.example.com" to spec.allowOrigins`}},
		{desc: "a malformed origin under a served wildcard policy", objs: objects(wildcard, trailingSlash),
			req:    explain.Request{URL: "https://api.example.com/x", Headers: []string{"Origin: https://b.example"}},
			policy: "default/slash", changes: []string{`remove "https://app.example.com/" from spec.allowOrigins`}},
		{desc: "a policy whose every host is invalid is not repaired into one for every host", objs: objects(allHostsBad),
			req:    explain.Request{URL: "https://api.example.com/x", Headers: []string{"Origin: https://app.example.com"}},
			policy: "default/cors-api-example-com", new: true, changes: []string{"create CorsPolicy"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			res, err := explain.Explain(tc.objs, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			f := res.Fix
			if f == nil || f.None != "" || f.Policy != tc.policy || f.New != tc.new {
				t.Fatalf("fix %+v, want a change to %s (new: %v)", f, tc.policy, tc.new)
			}
			if len(f.Changes) < len(tc.changes) {
				t.Fatalf("changes %q, want %q", f.Changes, tc.changes)
			}
			for i, want := range tc.changes {
				if !strings.HasPrefix(f.Changes[i], want) {
					t.Errorf("change %d = %q, want it to start %q", i, f.Changes[i], want)
				}
			}
			if !slices.Contains(effectKinds(f), explain.EffectStartsServing) {
				t.Errorf("effects %v, want starts-serving", effectKinds(f))
			}
			applyFix(t, tc.objs, f, tc.req)
		})
	}
}
