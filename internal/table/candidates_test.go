package table_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/table"
)

// Candidates is what explain words: its first entry must be the one Lookup
// serves, and every other candidate must really claim the request, on any
// table. Random tables over a few hosts, prefixes, namespaces, ranks and
// ages make every precedence step meet every other.
func TestCandidatesAgreeWithLookup(t *testing.T) {
	t.Parallel()
	hosts := []string{"a.example.com", "*.example.com", "*.b.example.com", "x.b.example.com"}
	prefixes := []string{"/", "/v1", "/v1/", "/v1/x", "/v2"}
	requests := []struct{ host, path string }{
		{"a.example.com", "/v1/x/y"}, {"a.example.com", "/v1"}, {"x.b.example.com", "/v1/x"}, {"y.b.example.com", "/v2?q"},
		{"A.Example.com:8443", "/"}, {"other.test", "/v1/"}, {"c.example.com", "/v1x"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 500 {
		n := 1 + rng.IntN(8)
		entries := make([]table.Entry, n)
		for i := range entries {
			e := entry(string(rune('a'+i)), rng.IntN(3), nil)
			e.Namespace = []string{"a", "b", "c"}[rng.IntN(3)]
			e.Rank = rng.IntN(5)
			if rng.IntN(2) == 0 {
				e.Since = t0.Add(time.Duration(rng.IntN(3)) * time.Minute)
			}
			for range rng.IntN(3) {
				e.Hosts = append(e.Hosts, hosts[rng.IntN(len(hosts))])
			}
			for range rng.IntN(3) {
				e.PathPrefixes = append(e.PathPrefixes, prefixes[rng.IntN(len(prefixes))])
			}
			entries[i] = e
		}
		tbl, _ := table.New(entries)
		for _, r := range requests {
			want := tbl.Lookup(r.host, r.path)
			c := tbl.Candidates(r.host, r.path)
			if want == nil {
				if len(c) != 0 {
					t.Fatalf("round %d %s%s: no entry decides, yet candidates %+v", round, r.host, r.path, c)
				}
				continue
			}
			if len(c) == 0 || c[0].Entry != want || c[0].Lost != "" {
				t.Fatalf("round %d %s%s: Lookup = %s, Candidates[0] = %+v", round, r.host, r.path, want.Key(), c)
			}
			for _, x := range c[1:] {
				if x.Lost == "" {
					t.Fatalf("round %d: candidate %s has no step", round, x.Entry.Key())
				}
				solo, _ := table.New([]table.Entry{*x.Entry})
				if solo.Lookup(r.host, r.path) == nil {
					t.Fatalf("round %d: candidate %s does not claim %s%s", round, x.Entry.Key(), r.host, r.path)
				}
			}
		}
	}
}

// Between namespaces the older claim decides an identical host and prefix,
// whatever the rank; within one, the rank (docs/tenancy.md).
func TestPrecedenceAcrossNamespaces(t *testing.T) {
	t.Parallel()
	victim := entry("victim", 0, []string{"pay.example.com"}, "/v1")
	victim.Namespace = "payments"
	attacker := entry("attacker", 5, []string{"pay.example.com"}, "/v1")
	attacker.Namespace, attacker.Rank, attacker.Since = "orders", 4, t0.Add(3*time.Minute)
	mine := entry("mine", 9, []string{"pay.example.com"}, "/v1")
	mine.Namespace, mine.Rank, mine.Since = "payments", 3, t0.Add(8*time.Minute)
	tbl, conflicts := table.New([]table.Entry{attacker, victim, mine})
	if e := tbl.Lookup("pay.example.com", "/v1/transfers"); e == nil || e.Name != "mine" {
		t.Fatalf("decided by %v, want payments/mine (its namespace claimed first; its rank beats its own hosts policy)", e)
	}
	for _, c := range conflicts {
		if c.Winner.Name != "mine" {
			t.Errorf("%s lost to %s, want to payments/mine", c.Loser.Key(), c.Winner.Key())
		}
	}
	if len(conflicts) != 2 {
		t.Errorf("conflicts = %d, want 2", len(conflicts))
	}
	steps := map[string]table.Step{}
	for _, c := range tbl.Candidates("pay.example.com", "/v1/transfers")[1:] {
		steps[c.Entry.Name] = c.Lost
	}
	if steps["attacker"] != table.StepOlderClaim || steps["victim"] != table.StepRank {
		t.Errorf("steps = %v", steps)
	}
}
