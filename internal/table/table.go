// Package table is corsgate's policy table: an immutable index from
// (host, path) to the one compiled policy that decides a request, built whole
// and swapped atomically (Store).
//
// Precedence (docs/design.md#which-policy-applies): an exact host beats a
// wildcard host (longer suffix first), which beats a policy for every host;
// then the longest path prefix. Where several entries claim the same host
// and prefix, the namespace with the oldest claim decides (Entry.Since:
// Gateway API route precedence across teams), and within that namespace the
// highest attachment rank, then the oldest object, then the name.
// A lookup costs one map probe per host label and per path segment: it does
// not grow with the number of policies.
package table

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/corsgate/corsgate/internal/cors"
)

// Entry is one policy as the table sees it.
type Entry struct {
	// Namespace and Name identify the source object.
	Namespace, Name string
	// Hosts are host patterns: "api.example.com", "*.example.com" (any
	// subdomain, never the apex). Empty means every host. See NormalizeHost.
	Hosts []string
	// PathPrefixes are segment-wise path prefixes. Empty means "/".
	PathPrefixes []string
	// Created orders policies that claim the same host and prefix: oldest wins.
	Created time.Time
	// Rank orders the entries of one namespace that claim the same host and
	// prefix, before Created: the higher wins. It is the attachment level of
	// a Gateway API targetRefs policy (GEP-713: route rule, route, listener,
	// Gateway; internal/compile), 0 for a hosts/pathPrefixes policy. Rank
	// never orders entries of different namespaces: a team attaching to a
	// rule of its own newer route must not take a request from another
	// team's older claim.
	Rank int
	// Since orders entries of different namespaces that claim the same host
	// and prefix: the oldest claim wins, as the Gateway API routes identical
	// matches to the oldest route. It is the creation time of the route (or
	// Gateway) an attached entry came through; zero means Created (a
	// hosts/pathPrefixes policy claims since it exists).
	Since  time.Time
	Policy *cors.Policy
}

// Key is "namespace/name".
func (e *Entry) Key() string { return e.Namespace + "/" + e.Name }

// ClaimedSince is when the entry's claim began: Since, or Created.
func (e *Entry) ClaimedSince() time.Time {
	if e.Since.IsZero() {
		return e.Created
	}
	return e.Since
}

// Beats reports whether e wins a host and prefix that e and other both
// claim, where other came first in the table's order (Entries): only an
// entry of the same namespace with a higher rank takes a claim from the
// entry that holds it.
func (e *Entry) Beats(other *Entry) bool {
	return e.Namespace == other.Namespace && e.Rank > other.Rank
}

// precedes is the table's order: the oldest claim first, then namespace,
// so that the first claimant of a host and prefix is of the namespace that
// decides it; then the highest rank, the oldest object and the name. It is
// a total order; Beats then lets a namespace's higher-ranked entry with a
// younger claim take the key from its own namespace's first claimant.
func precedes(a, b *Entry) int {
	if c := a.ClaimedSince().Compare(b.ClaimedSince()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Rank, a.Rank); c != 0 {
		return c
	}
	if c := a.Created.Compare(b.Created); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// Conflict records a claim lost to another entry (Beats and the table's
// order say which).
type Conflict struct {
	Loser, Winner *Entry
	// Host is the contested host pattern ("" for every host); Prefix the path prefix.
	Host, Prefix string
}

// Table is immutable once built; share it freely.
type Table struct {
	exact    map[string]*pathIndex
	wildcard map[string]*pathIndex // keyed by the suffix after "*."
	any      *pathIndex
	entries  []*Entry
}

// pathIndex maps normalized prefixes ("" for "/", "/api" for "/api/") to the
// winning entry. A host usually has one or two prefixes: up to smallIndex of
// them are kept in a slice and compared directly, which spares a map per host
// (100,000 of them at 10,000 policies, most of a rebuild's cost) and hashing
// per lookup; a host with more moves them to a map.
type pathIndex struct {
	small  []prefixClaim
	large  map[string]*Entry // nil until small is full
	maxLen int               // longest prefix: longer candidates are never probed
}

type prefixClaim struct {
	key   string
	entry *Entry
}

const smallIndex = 8

// get returns the entry that claimed key, or nil.
func (idx *pathIndex) get(key string) *Entry {
	if idx.large != nil {
		return idx.large[key]
	}
	for i := range idx.small {
		if idx.small[i].key == key {
			return idx.small[i].entry
		}
	}
	return nil
}

// put records e's claim of key, which must be unclaimed.
func (idx *pathIndex) put(key string, e *Entry) {
	if idx.large == nil && len(idx.small) < smallIndex {
		idx.small = append(idx.small, prefixClaim{key, e})
		return
	}
	if idx.large == nil {
		idx.large = make(map[string]*Entry, 2*smallIndex)
		for _, c := range idx.small {
			idx.large[c.key] = c.entry
		}
		idx.small = nil
	}
	idx.large[key] = e
}

// replace gives a claimed key to e.
func (idx *pathIndex) replace(key string, e *Entry) {
	if idx.large != nil {
		idx.large[key] = e
		return
	}
	for i := range idx.small {
		if idx.small[i].key == key {
			idx.small[i].entry = e
		}
	}
}

func (idx *pathIndex) empty() bool { return len(idx.small) == 0 && len(idx.large) == 0 }

// New builds a table. Entries are expected to be valid (see NormalizeHost and
// NormalizePathPrefix); New does not modify them, but keeps pointers to
// their elements (Entries, Lookup and each Conflict's Loser and Winner point
// into entries), so the caller must not modify them afterwards. It reports
// every claim that lost to another policy.
func New(entries []Entry) (*Table, []Conflict) {
	// Sized up front: at 10,000 policies the host maps hold 100,000 keys, and
	// growing them one insert at a time (rehashing as they go) was most of the
	// cost of a rebuild.
	nExact, nWild := 0, 0
	for i := range entries {
		for _, h := range entries[i].Hosts {
			if strings.HasPrefix(h, "*.") {
				nWild++
			} else {
				nExact++
			}
		}
	}
	t := &Table{exact: make(map[string]*pathIndex, nExact), wildcard: make(map[string]*pathIndex, nWild), any: newPathIndex()}
	// One allocation for every host's index, and one for their claims,
	// instead of one each.
	slab := make([]pathIndex, nExact+nWild)
	nClaims := 0
	for i := range entries {
		nClaims += len(entries[i].Hosts) * max(len(entries[i].PathPrefixes), 1)
	}
	claims := make([]prefixClaim, nClaims)
	t.entries = make([]*Entry, len(entries))
	for i := range entries {
		t.entries[i] = &entries[i]
	}
	slices.SortStableFunc(t.entries, precedes)
	var conflicts []Conflict
	claim := func(idx *pathIndex, host string, e *Entry) {
		prefixes := e.PathPrefixes
		if len(prefixes) == 0 {
			prefixes = []string{"/"}
		}
		for _, p := range prefixes {
			key := prefixKey(p)
			w := idx.get(key)
			switch {
			case w == nil:
				idx.put(key, e)
				idx.maxLen = max(idx.maxLen, len(key))
			case w == e:
			case e.Beats(w):
				idx.replace(key, e)
				// Those who lost the key to w lost it to e.
				for i := range conflicts {
					if c := &conflicts[i]; c.Winner == w && c.Host == host && prefixKey(c.Prefix) == key {
						c.Winner = e
					}
				}
				conflicts = append(conflicts, Conflict{Loser: w, Winner: e, Host: host, Prefix: p})
			default:
				conflicts = append(conflicts, Conflict{Loser: e, Winner: w, Host: host, Prefix: p})
			}
		}
	}
	for _, e := range t.entries {
		if len(e.Hosts) == 0 {
			claim(t.any, "", e)
			continue
		}
		for _, h := range e.Hosts {
			m, key := t.exact, h
			if suffix, ok := strings.CutPrefix(h, "*."); ok {
				m, key = t.wildcard, suffix
			}
			idx := m[key]
			if idx == nil {
				idx = &slab[0]
				slab = slab[1:]
				// Room for this entry's claims; a later entry claiming
				// other prefixes of the same host makes append copy.
				k := min(max(len(e.PathPrefixes), 1), len(claims))
				idx.small, claims = claims[:0:k], claims[k:]
				m[key] = idx
			}
			claim(idx, h, e)
		}
	}
	return t, conflicts
}

func newPathIndex() *pathIndex { return &pathIndex{} }

// Len is the number of entries.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Entries returns the entries in the table's order (precedes: the oldest
// claim, namespace, highest rank, oldest object, name). Do not modify them.
func (t *Table) Entries() []*Entry { return t.entries }

// Lookup returns the entry that decides a request for authority (":authority",
// a port is ignored, case-insensitive) and path (":path", the query is
// ignored), or nil when no policy applies (or t is nil: no table yet). It
// reads the path as its bytes are: serving uses Match, which also reads it as
// an upstream may and refuses a path whose readings disagree.
func (t *Table) Lookup(authority, path string) *Entry {
	if t == nil {
		return nil
	}
	var buf [maxHostLen]byte
	host, ok := hostOf(buf[:0], authority)
	return t.lookupHost(host, ok, path)
}

// lookupHost is Lookup for a host already lower-cased by hostOf (ok is
// hostOf's verdict).
func (t *Table) lookupHost(host []byte, ok bool, path string) *Entry {
	if !ok {
		return t.any.lookup(path)
	}
	if idx := t.exact[string(host)]; idx != nil {
		if e := idx.lookup(path); e != nil {
			return e
		}
	}
	if len(t.wildcard) > 0 {
		// Longest suffix first, keeping at least one label in front: a wildcard
		// never matches its apex.
		for i := 1; i < len(host); i++ {
			if host[i] != '.' {
				continue
			}
			if idx := t.wildcard[string(host[i+1:])]; idx != nil {
				if e := idx.lookup(path); e != nil {
					return e
				}
			}
		}
	}
	return t.any.lookup(path)
}

// lookup finds the longest prefix that matches path segment-wise: the whole
// path, then the path cut at each '/' from the right, then "/".
func (idx *pathIndex) lookup(path string) *Entry {
	if idx.empty() {
		return nil
	}
	return idx.lookupPath(cutQuery(path))
}

// cutQuery returns path without its query and fragment. A loop rather than
// strings.IndexAny, which builds its character set on every call: this runs
// for every request.
func cutQuery(path string) string {
	for i := 0; i < len(path); i++ {
		if path[i] == '?' || path[i] == '#' {
			return path[:i]
		}
	}
	return path
}

// lookupPath is lookup for a path without query or fragment.
func (idx *pathIndex) lookupPath(path string) *Entry {
	for path != "" {
		path = strings.TrimRight(path, "/")
		if len(path) <= idx.maxLen {
			if e := idx.get(path); e != nil {
				return e
			}
		}
		i := strings.LastIndexByte(path, '/')
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return idx.get("")
}

// prefixKey normalizes a configured prefix: "/" → "", "/api/" → "/api".
func prefixKey(p string) string { return strings.TrimRight(p, "/") }

// PrefixKey is how the table reads a path prefix: without its trailing "/"
// ("/" is ""), so "/api/" and "/api" claim the same paths. Everything that
// compares prefixes (host grants, explain) compares these keys, so that a
// trailing "/" can never make one side read a prefix as another.
func PrefixKey(p string) string { return prefixKey(p) }

const maxHostLen = 253

// hostOf lower-cases the host of an authority into dst, dropping the port.
func hostOf(dst []byte, authority string) ([]byte, bool) {
	h := authority
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			h = h[:i+1]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".") // "example.com." names the same host
	if h == "" || len(h) > maxHostLen {
		return nil, false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}
