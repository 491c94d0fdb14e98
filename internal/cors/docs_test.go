package cors_test

import (
	"os"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
)

// TestDocsNameEveryLabel fails when docs/design.md or docs/operating.md does
// not name, as `code`, a reason, outcome or request kind the engine defines:
// the values are read from the engine's own String and Label methods, so a
// new reason without docs fails here.
func TestDocsNameEveryLabel(t *testing.T) {
	var values []string
	for r := range cors.Reason(cors.NumReasons) {
		values = append(values, r.Label())
	}
	for o := range cors.Outcome(cors.NumOutcomes) {
		values = append(values, o.String())
	}
	// Kind has no count: its String spells every value out of range as its
	// default, so the distinct spellings of all 256 are the kinds.
	seen := map[string]bool{}
	for k := range 256 {
		if s := cors.Kind(k).String(); !seen[s] {
			seen[s] = true
			values = append(values, s)
		}
	}
	for _, doc := range []string{"design.md", "operating.md"} {
		b, err := os.ReadFile("../../docs/" + doc)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, v := range values {
			if !strings.Contains(text, "`"+v+"`") {
				t.Errorf("docs/%s does not name `%s`", doc, v)
			}
		}
	}
}
