package main_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestExplainObserved drives preflights through the Envoy stand-in to the
// binary, then asks `corsgate explain --observed` which origins the deciding
// policy saw: the denied origin is listed with its count, in JSON and text.
func TestExplainObserved(t *testing.T) {
	t.Parallel()
	s, admin := startObserved(t, "testdata/design.yaml")
	sim := envoy(t, s.addr)
	for range 3 {
		if got := preflightStatus(t, sim, "api.example.com", "https://intruder.example", "PUT"); got != 403 {
			t.Fatalf("preflight from an unlisted origin: %d, want 403", got)
		}
	}
	args := []string{"explain", "--policies", "testdata/design.yaml", "--observed", admin, "-X", "OPTIONS",
		"https://api.example.com/", "-H", "Origin: https://intruder.example", "-H", "Access-Control-Request-Method: PUT"}
	out, err := exec.Command(binary, append(args, "-o", "json")...).Output()
	if err != nil {
		t.Fatalf("corsgate explain --observed -o json: %v\n%s", err, out)
	}
	var res struct {
		Policy   *string `json:"policy"`
		Observed *struct {
			Denied struct {
				Origins []struct {
					Origin string `json:"origin"`
					Count  uint64 `json:"count"`
				} `json:"origins"`
			} `json:"denied"`
		} `json:"observed"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if res.Policy == nil || res.Observed == nil || len(res.Observed.Denied.Origins) == 0 {
		t.Fatalf("want the deciding policy and its observed origins, got:\n%s", out)
	}
	if o := res.Observed.Denied.Origins[0]; o.Origin != "https://intruder.example" || o.Count != 3 {
		t.Errorf("denied origins start with %+v, want https://intruder.example seen 3 times", o)
	}
	text, err := exec.Command(binary, args...).Output()
	if err != nil || !strings.Contains(string(text), "Observed:") || !strings.Contains(string(text), "3  https://intruder.example") {
		t.Errorf("text output (%v) lacks the observed origins:\n%s", err, text)
	}
}
