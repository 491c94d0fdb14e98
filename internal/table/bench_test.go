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

// BenchmarkLookupDecide is a whole per-request decision: find the policy,
// then decide. It should not grow with the number of policies.
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
					e := tbl.Lookup(r.host, "/v2/admin/users?page=2")
					if e == nil {
						b.Fatal("no policy")
					}
					_ = e.Policy.Decide(&req)
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
