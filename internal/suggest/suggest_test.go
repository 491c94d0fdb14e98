package suggest_test

import (
	"testing"

	"github.com/corsgate/corsgate/internal/suggest"
)

func TestClosest(t *testing.T) {
	t.Parallel()
	fields := []string{"allowCredentials", "allowOrigins", "allowOriginRegexes", "maxAge", "hosts"}
	tools := []string{"explain", "import", "lint", "version"}
	for _, tc := range []struct {
		word       string
		candidates []string
		want       string
	}{
		{"allowCredentails", fields, "allowCredentials"}, // two letters swapped: one edit
		{"allowOrigin", fields, "allowOrigins"},
		{"AllowOrigins", fields, "allowOrigins"}, // case does not count
		{"maxage", fields, "maxAge"},
		{"host", fields, "hosts"},
		{"lnit", tools, "lint"},
		{"explian", tools, "explain"},
		{"serve", tools, ""}, // nothing near: no guess
		{"xyz", fields, ""},
		{"CorsPolicies", []string{"CorsPolicy", "CorsHostGrant"}, "CorsPolicy"},
	} {
		if got := suggest.Closest(tc.word, tc.candidates); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}
