package table

import "github.com/corsgate/corsgate/internal/cors"

// Decide is how a request is decided, served and explained alike: the
// table's Match for authority and path (":authority" and ":path"), then the
// matched policy's decision, or the ambiguous-path refusal when the path's
// readings select different policies (docs/paths.md). The match's Entry is
// nil when no policy applies (t nil included: no table yet); the edge then
// changes nothing.
func (t *Table) Decide(req *cors.Request, authority, path string) (Match, cors.Decision) {
	m := t.Match(authority, path)
	switch {
	case m.Entry == nil:
		return m, cors.Decision{}
	case m.Ambiguous:
		return m, cors.DecidePathAmbiguous(req, PathOnly(path), m.DryRun)
	default:
		return m, m.Entry.Policy.Decide(req)
	}
}

// PathOnly is a :path without its query and fragment, which may carry
// tokens and have no place in decisions' details or logs: the path as the
// table reads it (cutQuery).
func PathOnly(path string) string { return cutQuery(path) }
