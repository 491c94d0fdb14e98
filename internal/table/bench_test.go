package table_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

// scaleEntries builds n policies over 10 hosts each (exact and wildcard
// mixed) with two path prefixes: 10,000 policies carry 100,000 hosts.
func scaleEntries(b *testing.B, n int) []table.Entry {
	entries := make([]table.Entry, n)
	for i := range entries {
		p, _, err := cors.Compile(cors.Config{
			AllowOrigins: []string{fmt.Sprintf("https://app%d.example.com", i), "https://*.tenants.example.com"},
			AllowMethods: []string{"PUT"}, AllowHeaders: []string{"x-foo"}, AllowCredentials: true,
		})
		if err != nil {
			b.Fatal(err)
		}
		hosts := make([]string, 10)
		for j := range hosts {
			if j%2 == 0 {
				hosts[j] = fmt.Sprintf("api%d-%d.example.com", i, j)
			} else {
				hosts[j] = fmt.Sprintf("*.svc%d-%d.example.net", i, j)
			}
		}
		entries[i] = table.Entry{Namespace: "ns", Name: fmt.Sprint(i), Hosts: hosts, PathPrefixes: []string{"/v1", "/v2/admin"},
			Created: time.Unix(int64(i), 0), Policy: p}
	}
	return entries
}

// BenchmarkLookupDecide is a whole per-request decision as the ext_proc
// server makes it (Table.Decide): find the policy (Match, which reads the
// path as an upstream may), then decide. It should not grow with the number
// of policies, and a plain path costs one lookup and one scan of the path.
func BenchmarkLookupDecide(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		tbl, _ := table.New(scaleEntries(b, n))
		i := n / 2
		exact := fmt.Sprintf("api%d-0.example.com", i)
		wild := fmt.Sprintf("x.svc%d-1.example.net", i)
		origin := fmt.Sprintf("https://app%d.example.com", i)
		for _, r := range []struct {
			name, host string
			req        cors.Request
		}{
			{"preflight-allowed", exact, cors.Request{Method: "OPTIONS", Origin: origin, HasOrigin: true, AccessControlRequestMethod: "PUT", AccessControlRequestHeaders: "x-foo"}},
			{"preflight-denied", wild, cors.Request{Method: "OPTIONS", Origin: "https://evil.example", HasOrigin: true, AccessControlRequestMethod: "PUT"}},
			{"actual-allowed", wild, cors.Request{Method: "GET", Origin: "https://a.tenants.example.com", HasOrigin: true}},
		} {
			b.Run(fmt.Sprintf("policies=%d/req=%s", n, r.name), func(b *testing.B) {
				b.ReportAllocs()
				req := r.req
				for b.Loop() {
					m, _ := tbl.Decide(&req, r.host, "/v2/admin/users?page=2")
					if m.Entry == nil || m.Ambiguous {
						b.Fatal("no policy")
					}
				}
			})
		}
	}
}

func BenchmarkNew(b *testing.B) {
	for _, n := range []int{100, 10000} {
		entries := scaleEntries(b, n)
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				table.New(entries)
			}
		})
	}
}

// BenchmarkMatchPaths is the path lookup alone: Lookup (the raw reading, all
// there was before paths were read as upstreams read them), Match on a plain
// path, and Match on paths that must be read several ways (docs/paths.md).
// None allocates. Paths whose readings agree cost one lookup per reading
// (2^steps, the worst case); an ambiguous path under an Enforce policy stops
// at the first reading that disagrees.
func BenchmarkMatchPaths(b *testing.B) {
	tbl, _ := table.New(scaleEntries(b, 10000))
	host := "api5000-0.example.com"
	for _, c := range []struct{ name, path string }{
		{"lookup-only", "/v2/admin/users?page=2"},
		{"plain", "/v2/admin/users?page=2"},
		{"agreeing-encoded-slash", "/v2/admin/a%2Fb"},
		// One policy owns /v1 and /v2/admin: every reading agrees.
		{"agreeing-dot-slash", "/v2/admin/..%2F..%2Fv1/users"},
		{"ambiguous-dot-slash", "/v2/admin/..%2F..%2Fother"},
		{"ambiguous-every-construct", "/v2/admin/%2e%2e/a%2Fb/..;x/.//y%5Cz"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c.name == "lookup-only" {
					_ = tbl.Lookup(host, c.path)
					continue
				}
				_ = tbl.Match(host, c.path)
			}
		})
	}
}
