// Package audit finds the CORS holes in ingress-nginx Ingresses, Istio
// VirtualServices, Gateway API HTTPRoutes, Envoy Gateway SecurityPolicies and
// corsgate's own CorsPolicies, read-only.
//
// It has no semantics of its own: each source object goes through the
// importer, whose warnings that carry a Class are the findings (what the
// source system really does, what an attacker's page gains, the fix), so
// `corsgate import` and `corsgate audit` can never disagree about an object.
// Audit ranks them and adds the policy import would write as the migration.
package audit

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/importer"
)

// Finding is one hole (or breakage) in one object.
type Finding struct {
	Class    importer.Class    `json:"class"`
	Severity importer.Severity `json:"severity"`
	// Object is "Kind namespace/name"; File where it was read ("cluster"
	// in cluster mode).
	Object string `json:"object"`
	File   string `json:"file,omitempty"`
	Rule   string `json:"rule,omitempty"`
	Field  string `json:"field,omitempty"`
	// Does is what the source system really does; Attack what an
	// attacker's page gains by it; Fix the change to the source object.
	Does   string `json:"does"`
	Attack string `json:"attack"`
	Fix    string `json:"fix,omitempty"`
	// Corsgate is what the policy `corsgate import` writes does instead,
	// and Policy that policy (YAML), the fix by migrating; empty for
	// corsgate's own CorsPolicies and for objects import refuses.
	Corsgate string `json:"corsgate,omitempty"`
	Policy   string `json:"policy,omitempty"`
	// policies are rendered into Policy only for the outputs that show it:
	// YAML for every object of a large cluster costs more than the audit.
	policies []importer.Policy
}

// Report is an audit's result. Objects counts the objects read of the kinds
// audited (with CORS settings or not).
type Report struct {
	Objects  int       `json:"objects"`
	Findings []Finding `json:"findings"`
	// Skipped lists what was not audited, with the reason (a kind whose
	// CRD the cluster does not serve).
	Skipped []string `json:"skipped,omitempty"`
}

// Kinds are the kinds audit reads: import's, then corsgate's own
// CorsPolicy (which import does not read). The cluster mode lists these, and
// the chart's auditor role grants get and list on exactly these.
var Kinds = append(slices.Clip(importer.Kinds), corsPolicyKind)

var corsPolicyKind = schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: "CorsPolicy"}

// Audited reports whether audit reads objects of this kind.
func Audited(o importer.Object) bool {
	return slices.Contains(Kinds, o.GroupKind())
}

// Add audits one object. Objects of other kinds are ignored. It keeps only
// the findings, so a caller that lists a cluster page by page holds one page
// of objects at a time.
func (r *Report) Add(o importer.Object) {
	if !Audited(o) {
		return
	}
	r.Objects++
	if o.GroupKind() == corsPolicyKind {
		var p v1alpha1.CorsPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Doc, &p); err != nil {
			// Not a policy the API server would hold; lint explains it.
			return
		}
		for _, w := range importer.CorsPolicyRisks(o, &p) {
			r.Findings = append(r.Findings, finding(w, o.File))
		}
		return
	}
	res := importer.Import([]importer.Object{o})
	for _, w := range res.Warnings {
		if w.Class == "" {
			continue
		}
		f := finding(w, o.File)
		if len(res.Policies) > 0 {
			f.Corsgate, f.policies = "corsgate "+w.New, res.Policies
		}
		r.Findings = append(r.Findings, f)
	}
}

// RenderPolicies fills each finding's Policy with the YAML import writes.
// The findings of one object share one rendering.
func (r *Report) RenderPolicies() {
	var last []importer.Policy
	var y string
	for i := range r.Findings {
		f := &r.Findings[i]
		if len(f.policies) == 0 {
			continue
		}
		if len(last) == 0 || &last[0] != &f.policies[0] {
			last, y = f.policies, policyYAML(f.policies)
		}
		f.Policy = y
	}
}

func finding(w importer.Warning, file string) Finding {
	return Finding{Class: w.Class, Severity: w.Severity, Object: w.Source, File: file, Rule: w.Rule, Field: w.Field,
		Does: w.Old, Attack: w.Attack, Fix: w.Instead}
}

// policyYAML is what `corsgate import` writes for the object: the fix by
// migrating. The findings of one object share the one string.
func policyYAML(ps []importer.Policy) string {
	var b strings.Builder
	for i, p := range ps {
		y, err := p.YAML()
		if err != nil {
			continue
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.String()
}

// Sort orders the findings: most severe first, then by object, rule and
// class, so reports are stable.
func (r *Report) Sort() {
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Class < b.Class
	})
}

// Count is the number of findings at each severity.
func (r *Report) Count() map[importer.Severity]int {
	n := map[importer.Severity]int{}
	for _, f := range r.Findings {
		n[f.Severity]++
	}
	return n
}

// AtLeast reports whether a finding is at least that severe.
func (r *Report) AtLeast(s importer.Severity) bool {
	for _, f := range r.Findings {
		if f.Severity >= s {
			return true
		}
	}
	return false
}

// Summary is the one-line summary.
func (r *Report) Summary() string {
	n := r.Count()
	objs := map[string]bool{}
	for _, f := range r.Findings {
		objs[f.File+"\x00"+f.Object] = true
	}
	s := fmt.Sprintf("%d object(s) audited, %d with findings: %d critical, %d high, %d medium, %d low, %d info (broken, not open)",
		r.Objects, len(objs), n[importer.Critical], n[importer.High], n[importer.Medium], n[importer.Low], n[importer.Info])
	if len(r.Skipped) > 0 {
		s += fmt.Sprintf("; %d kind(s) skipped", len(r.Skipped))
	}
	return s
}
