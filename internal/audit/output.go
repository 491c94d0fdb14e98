package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/corsgate/corsgate/internal/importer"
)

// WriteText writes the report for people: grouped by severity, then by
// object, each finding with what the source does, the attacker's gain and
// the fix; the one-line summary last.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "skipped: %s\n", s)
	}
	var sev importer.Severity
	obj := ""
	for i, f := range r.Findings {
		if i == 0 || f.Severity != sev {
			sev, obj = f.Severity, ""
			title := strings.ToUpper(sev.String())
			if sev == importer.Info {
				title += " (broken, not open)"
			}
			fmt.Fprintf(&b, "\n%s\n", title)
		}
		if f.Object != obj {
			obj = f.Object
			fmt.Fprintf(&b, "  %s", obj)
			if f.File != "" {
				fmt.Fprintf(&b, " (%s)", f.File)
			}
			b.WriteString("\n")
		}
		where := f.Field
		if f.Rule != "" {
			where = f.Rule + " " + where
		}
		fmt.Fprintf(&b, "    [%s] %s\n", f.Class, strings.TrimSpace(where))
		fmt.Fprintf(&b, "      does:     %s\n", f.Does)
		fmt.Fprintf(&b, "      attacker: %s\n", f.Attack)
		if f.Fix != "" {
			fmt.Fprintf(&b, "      fix:      %s\n", f.Fix)
		}
		if f.Corsgate != "" {
			fmt.Fprintf(&b, "      migrate:  %s (corsgate import -f writes the policy; -o json has it)\n", f.Corsgate)
		}
	}
	if len(r.Findings) > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "corsgate audit: %s\n", r.Summary())
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes {"objects", "findings": [...], "skipped", "summary"}.
func (r *Report) WriteJSON(w io.Writer) error {
	r.RenderPolicies()
	out := struct {
		*Report
		Summary map[string]int `json:"summary"`
	}{r, map[string]int{}}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	for s, n := range r.Count() {
		out.Summary[s.String()] = n
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteSARIF writes SARIF 2.1.0 for code-scanning UIs: one rule per class,
// one result per finding, located by file (when read from one) and by
// object and field.
func (r *Report) WriteSARIF(w io.Writer) error {
	type msg struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID               string         `json:"id"`
		ShortDescription msg            `json:"shortDescription"`
		Properties       map[string]any `json:"properties,omitempty"`
	}
	type artifact struct {
		URI string `json:"uri"`
	}
	type physical struct {
		Artifact artifact `json:"artifactLocation"`
	}
	type location struct {
		Physical *physical           `json:"physicalLocation,omitempty"`
		Logical  []map[string]string `json:"logicalLocations"`
	}
	type result struct {
		RuleID     string         `json:"ruleId"`
		Level      string         `json:"level"`
		Message    msg            `json:"message"`
		Locations  []location     `json:"locations"`
		Properties map[string]any `json:"properties"`
	}
	var rules []rule
	for _, c := range importer.Classes {
		rules = append(rules, rule{ID: string(c.ID), ShortDescription: msg{c.Title}})
	}
	results := []result{}
	for _, f := range r.Findings {
		loc := location{Logical: []map[string]string{{"fullyQualifiedName": strings.TrimSpace(f.Object + " " + f.Rule + " " + f.Field), "kind": "object"}}}
		if f.File != "" && f.File != "cluster" && f.File != "-" {
			loc.Physical = &physical{artifact{f.File}}
		}
		text := fmt.Sprintf("%s: %s. Attacker: %s.", f.Object, f.Does, f.Attack)
		if f.Fix != "" {
			text += " Fix: " + f.Fix + "."
		}
		results = append(results, result{RuleID: string(f.Class), Level: sarifLevel(f.Severity), Message: msg{text},
			Locations: []location{loc}, Properties: map[string]any{"severity": f.Severity.String()}})
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "corsgate audit", "informationUri": "https://github.com/corsgate/corsgate/blob/main/docs/operator-tools.md",
				"rules": rules,
			}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func sarifLevel(s importer.Severity) string {
	switch {
	case s >= importer.High:
		return "error"
	case s == importer.Medium:
		return "warning"
	default:
		return "note"
	}
}
