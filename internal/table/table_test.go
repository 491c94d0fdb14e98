package table_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

var policy = func() *cors.Policy {
	p, _, err := cors.Compile(cors.Config{AllowOrigins: []string{"https://app.example.com"}})
	if err != nil {
		panic(err)
	}
	return p
}()

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func entry(name string, age int, hosts []string, prefixes ...string) table.Entry {
	return table.Entry{Namespace: "ns", Name: name, Hosts: hosts, PathPrefixes: prefixes, Created: t0.Add(time.Duration(age) * time.Minute), Policy: policy}
}

func TestLookupPrecedence(t *testing.T) {
	t.Parallel()
	tbl, conflicts := table.New([]table.Entry{
		entry("any-root", 0, nil),
		entry("any-api", 1, nil, "/api"),
		entry("wild", 2, []string{"*.example.com"}),
		entry("wild-deep", 3, []string{"*.eu.example.com"}, "/"),
		entry("exact", 4, []string{"api.example.com"}, "/v1", "/v2/"),
		entry("exact-root", 5, []string{"api.example.com"}),
	})
	if len(conflicts) != 0 {
		t.Fatalf("unexpected conflicts: %+v", conflicts)
	}
	cases := []struct {
		desc, authority, path, want string
	}{
		{desc: "exact host, longest prefix", authority: "api.example.com", path: "/v1/users", want: "exact"},
		{desc: "prefix matches itself", authority: "api.example.com", path: "/v1", want: "exact"},
		{desc: "trailing slash on the configured prefix", authority: "api.example.com", path: "/v2/x", want: "exact"},
		{desc: "segment-wise: /v1 does not match /v1x", authority: "api.example.com", path: "/v1x", want: "exact-root"},
		{desc: "query is ignored", authority: "api.example.com", path: "/v1?x=/v2", want: "exact"},
		{desc: "port and case are ignored", authority: "API.Example.COM:8443", path: "/v1", want: "exact"},
		{desc: "exact host beats wildcard", authority: "api.example.com", path: "/other", want: "exact-root"},
		{desc: "wildcard: one label", authority: "www.example.com", path: "/", want: "wild"},
		{desc: "longer wildcard suffix first", authority: "a.eu.example.com", path: "/x", want: "wild-deep"},
		{desc: "wildcard never matches its apex", authority: "example.com", path: "/api/x", want: "any-api"},
		{desc: "wildcard keeps label boundaries", authority: "evilexample.com", path: "/", want: "any-root"},
		{desc: "wildcard host beats any-host even with a longer prefix", authority: "www.example.com", path: "/api", want: "wild"},
		{desc: "any host, longest prefix", authority: "other.test", path: "/api/v1", want: "any-api"},
		{desc: "empty authority falls to any host", authority: "", path: "/", want: "any-root"},
		{desc: "IPv6 authority", authority: "[::1]:8080", path: "/", want: "any-root"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			e := tbl.Lookup(tc.authority, tc.path)
			if e == nil || e.Name != tc.want {
				t.Errorf("Lookup(%q, %q) = %v, want %s", tc.authority, tc.path, e, tc.want)
			}
		})
	}
}

func TestLookupNoPolicy(t *testing.T) {
	t.Parallel()
	tbl, _ := table.New([]table.Entry{entry("exact", 0, []string{"api.example.com"}, "/v1")})
	for _, req := range [][2]string{{"api.example.com", "/v2"}, {"other.example.com", "/v1"}, {"api.example.com", "/"}} {
		if e := tbl.Lookup(req[0], req[1]); e != nil {
			t.Errorf("Lookup(%q, %q) = %s, want no policy", req[0], req[1], e.Key())
		}
	}
}

func TestConflictsOldestWinsThenName(t *testing.T) {
	t.Parallel()
	tbl, conflicts := table.New([]table.Entry{
		entry("young", 10, []string{"api.example.com"}, "/v1"),
		entry("old", 1, []string{"api.example.com"}, "/v1/"),
		entry("b-twin", 5, []string{"*.example.com"}),
		entry("a-twin", 5, []string{"*.example.com"}),
	})
	if e := tbl.Lookup("api.example.com", "/v1"); e == nil || e.Name != "old" {
		t.Errorf("winner for /v1 = %v, want old", e)
	}
	if e := tbl.Lookup("www.example.com", "/"); e == nil || e.Name != "a-twin" {
		t.Errorf("winner for *.example.com = %v, want a-twin", e)
	}
	got := map[string]string{}
	for _, c := range conflicts {
		got[c.Loser.Name] = c.Winner.Name + " " + c.Host + " " + c.Prefix
	}
	want := map[string]string{"young": "old api.example.com /v1", "b-twin": "a-twin *.example.com /"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("conflicts = %v, want %v", got, want)
	}
}

func TestLookupAllocatesNothing(t *testing.T) {
	tbl, _ := table.New([]table.Entry{entry("exact", 0, []string{"api.example.com"}, "/v1"), entry("wild", 1, []string{"*.example.com"})})
	if n := testing.AllocsPerRun(100, func() { _ = tbl.Lookup("A.B.Example.com:443", "/v1/x/y?z") }); n != 0 {
		t.Errorf("Lookup allocates %v times, want 0", n)
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"API.example.com", "api.example.com", true}, {"*.example.com", "*.example.com", true},
		{"*", "", false}, {"*.com", "", false}, {"api.*.com", "", false}, {"api.example.com:443", "", false},
		{"a..b", "", false}, {"ünïcode.example", "", false},
	} {
		got, err := table.NormalizeHost(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{{"/api", true}, {"/", true}, {"api", false}, {"/a?b", false}, {"/a b", false}} {
		if _, err := table.NormalizePathPrefix(tc.in); (err == nil) != tc.ok {
			t.Errorf("NormalizePathPrefix(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestStore(t *testing.T) {
	t.Parallel()
	var s table.Store
	if s.Load() != nil {
		t.Fatal("Load before Swap must be nil")
	}
	select {
	case <-s.Ready():
		t.Fatal("Ready before Swap")
	default:
	}
	tbl, _ := table.New(nil)
	s.Swap(tbl)
	<-s.Ready()
	if s.Load() != tbl {
		t.Fatal("Load after Swap returned another table")
	}
	s.Swap(tbl) // a second Swap must not close Ready twice
}

// Within a namespace, a higher-ranked entry takes a key from the older entry
// that claimed it first, whether the host's prefixes fit the small index or
// fill the map it moves to past smallIndex; the older entry keeps its other
// prefixes, and the conflict names the higher-ranked entry the winner.
func TestRankTakesKeyInEitherIndex(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 12} {
		prefixes := make([]string, n)
		for i := range prefixes {
			prefixes[i] = fmt.Sprintf("/p%d", i)
		}
		hosts := entry("hosts", 0, []string{"api.example.com"}, prefixes...)
		attached := entry("attached", 1, []string{"api.example.com"}, "/p1/")
		attached.Rank = 2
		tbl, conflicts := table.New([]table.Entry{hosts, attached})
		if e := tbl.Lookup("api.example.com", "/p1/x"); e == nil || e.Name != "attached" {
			t.Errorf("%d prefixes: /p1/x decided by %v, want attached (higher rank, same namespace)", n, e)
		}
		if e := tbl.Lookup("api.example.com", "/p0/x"); e == nil || e.Name != "hosts" {
			t.Errorf("%d prefixes: /p0/x decided by %v, want hosts", n, e)
		}
		if len(conflicts) != 1 || conflicts[0].Loser.Name != "hosts" || conflicts[0].Winner.Name != "attached" {
			t.Errorf("%d prefixes: conflicts %+v, want hosts losing to attached", n, conflicts)
		}
	}
}
