package table

import (
	"cmp"
	"slices"
	"strings"
)

// Step is the rule of the table's precedence by which one entry beats
// another for a request.
type Step string

// The steps, in the order the table applies them.
const (
	// StepExactHost: an exact host beats a wildcard host or every host.
	StepExactHost Step = "exact-host"
	// StepLongerWildcard: of two wildcard hosts, the longer suffix wins.
	StepLongerWildcard Step = "longer-wildcard"
	// StepHost: a wildcard host beats a policy for every host.
	StepHost Step = "host"
	// StepLongerPrefix: the longer path prefix (segment-wise) wins.
	StepLongerPrefix Step = "longer-prefix"
	// StepOlderClaim: same host and prefix, another namespace; the
	// namespace whose claim is older wins (Entry.Since: the Gateway API
	// routes identical matches to the oldest route), then the first
	// namespace by name.
	StepOlderClaim Step = "older-claim"
	// StepRank: same host, prefix and namespace; the policy attached
	// closer to the route wins (GEP-713: rule, route, listener, Gateway,
	// then hosts/pathPrefixes).
	StepRank Step = "rank"
	// StepOlder: same host, prefix, namespace and rank; the older claim,
	// then the older policy wins.
	StepOlder Step = "older"
	// StepName: all else equal, the first by name wins.
	StepName Step = "name"
)

// Candidate is an entry that claims a request: the best of its claims that
// covers it, and, for all but the first, the step by which the first (the
// deciding entry) beats it.
type Candidate struct {
	Entry *Entry
	// Host is the matching host pattern, "" for every host; Prefix the
	// matching path prefix as configured.
	Host, Prefix string
	// Lost is "" for the deciding entry.
	Lost Step
}

// Candidates lists every entry that claims a request for authority and
// path, the deciding entry first (the one Lookup returns), then the others
// best first, each with the step it lost by. It scans every entry: it is
// for explaining one request (corsgate explain), not for serving.
func (t *Table) Candidates(authority, path string) []Candidate {
	if t == nil {
		return nil
	}
	var buf [maxHostLen]byte
	hb, ok := hostOf(buf[:0], authority)
	host := string(hb)
	path = cutQuery(path)
	type cand struct {
		Candidate
		class, suffix, prefix int // host class (0 exact, 1 wildcard, 2 any), suffix and prefix key lengths
		order                 int // position in t.entries
	}
	var cands []cand
	for i, e := range t.entries {
		best := cand{class: -1}
		hosts := e.Hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		prefixes := e.PathPrefixes
		if len(prefixes) == 0 {
			prefixes = []string{"/"}
		}
		for _, h := range hosts {
			class, suffix, hit := hostMatch(h, host, ok)
			if !hit {
				continue
			}
			for _, p := range prefixes {
				k := prefixKey(p)
				if !prefixMatches(path, k) {
					continue
				}
				c := cand{Candidate: Candidate{Entry: e, Host: h, Prefix: p}, class: class, suffix: suffix, prefix: len(k), order: i}
				if best.class < 0 || better(c.class, c.suffix, c.prefix, best.class, best.suffix, best.prefix) {
					best = c
				}
			}
		}
		if best.class >= 0 {
			cands = append(cands, best)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	// Best claim first; for one claim, the table's order.
	slices.SortStableFunc(cands, func(a, b cand) int {
		if c := cmp.Compare(a.class, b.class); c != 0 {
			return c
		}
		if c := cmp.Compare(b.suffix, a.suffix); c != 0 {
			return c
		}
		if c := cmp.Compare(b.prefix, a.prefix); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	// Among those with the best claim, the first holds the key unless a
	// later one of its namespace beats it, as New decides.
	w := 0
	for i := 1; i < len(cands) && sameClaim(cands[i].Candidate, cands[0].Candidate); i++ {
		if cands[i].Entry.Beats(cands[w].Entry) {
			w = i
		}
	}
	if w != 0 {
		winner := cands[w]
		copy(cands[1:w+1], cands[:w])
		cands[0] = winner
	}
	out := make([]Candidate, len(cands))
	win := cands[0]
	for i, c := range cands {
		out[i] = c.Candidate
		if i == 0 {
			continue
		}
		we, le := win.Entry, c.Entry
		switch {
		case win.class == 0 && c.class != 0:
			out[i].Lost = StepExactHost
		case win.class == 1 && c.class == 1 && win.suffix != c.suffix:
			out[i].Lost = StepLongerWildcard
		case win.class != c.class:
			out[i].Lost = StepHost
		case win.prefix != c.prefix:
			out[i].Lost = StepLongerPrefix
		case we.Namespace != le.Namespace:
			out[i].Lost = StepOlderClaim
		case we.Rank != le.Rank:
			out[i].Lost = StepRank
		case !we.ClaimedSince().Equal(le.ClaimedSince()) || !we.Created.Equal(le.Created):
			out[i].Lost = StepOlder
		default:
			out[i].Lost = StepName
		}
	}
	return out
}

// sameClaim reports whether two candidates claim the request through the
// same host pattern and prefix key: the same key of the same index.
func sameClaim(a, b Candidate) bool {
	return a.Host == b.Host && prefixKey(a.Prefix) == prefixKey(b.Prefix)
}

// better reports whether claim a (host class, wildcard suffix length,
// prefix key length) is more specific than claim b.
func better(ac, as, ap, bc, bs, bp int) bool {
	if ac != bc {
		return ac < bc
	}
	if as != bs {
		return as > bs
	}
	return ap > bp
}

// hostMatch reports whether host pattern h ("" every host) covers host
// (lower-cased; ok false when the authority has no usable host, which only
// "every host" covers), with the pattern's class and wildcard suffix length.
func hostMatch(h, host string, ok bool) (class, suffix int, hit bool) {
	switch {
	case h == "":
		return 2, 0, true
	case !ok:
		return 0, 0, false
	case strings.HasPrefix(h, "*."):
		s := h[1:] // ".example.com"
		return 1, len(s) - 1, len(host) > len(s) && strings.HasSuffix(host, s)
	default:
		return 0, 0, h == host
	}
}

// prefixMatches reports whether prefix key k covers path segment-wise, as
// pathIndex.lookupPath reads it.
func prefixMatches(path, k string) bool {
	if k == "" {
		return true
	}
	return strings.TrimRight(path, "/") == k || strings.HasPrefix(path, k+"/")
}
