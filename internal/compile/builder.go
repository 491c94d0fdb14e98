package compile

import (
	"fmt"
	"sort"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/table"
)

// Serving says what the table does with an object.
type Serving string

const (
	// Served: the object's current spec decides its requests.
	Served Serving = "Serving"
	// ServedLastValid: the current spec is invalid; the last valid one serves.
	ServedLastValid Serving = "ServingLastValid"
	// NotServed: never valid, or every claim lost to other policies.
	NotServed Serving = "NotServing"
)

// Result is what happened to one object in a build; the controller turns it
// into status, the file source into log lines.
type Result struct {
	Namespace, Name string
	Generation      int64
	// Err is nil when the current spec is valid.
	Err      error
	Warnings []cors.Warning
	Serving  Serving
	// Conflicts lists claims this object lost, as sentences.
	Conflicts []string
}

// Key is "namespace/name".
func (r *Result) Key() string { return r.Namespace + "/" + r.Name }

type compiled struct {
	uid        string
	generation int64
	entry      table.Entry
	warnings   []cors.Warning
	err        error
}

// Builder compiles objects into tables. It remembers each object's last valid
// compile, so that an edit that breaks a policy keeps its previous spec
// serving, and it reuses compiles of unchanged objects (same UID and
// generation), so that a rebuild after one change costs little more than
// indexing. Not safe for concurrent use.
type Builder struct {
	current   map[string]compiled // last compile of each object, valid or not
	lastValid map[string]compiled
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{current: map[string]compiled{}, lastValid: map[string]compiled{}}
}

// Build compiles objs into a table and reports on each object, in objs order.
// Objects not in objs are forgotten (deleted).
func (b *Builder) Build(objs []v1alpha1.CorsPolicy) (*table.Table, []Result) {
	seen := make(map[string]bool, len(objs))
	results := make([]Result, len(objs))
	entries := make([]table.Entry, 0, len(objs))
	entryOwner := make([]int, 0, len(objs)) // entries[i] belongs to results[entryOwner[i]]
	for i := range objs {
		obj := &objs[i]
		key := obj.Namespace + "/" + obj.Name
		seen[key] = true
		c, ok := b.current[key]
		// Generation 0 (objects read from files) has no change counter: recompile.
		if !ok || obj.Generation == 0 || c.uid != string(obj.UID) || c.generation != obj.Generation {
			entry, warnings, err := Compile(obj)
			c = compiled{uid: string(obj.UID), generation: obj.Generation, entry: entry, warnings: warnings, err: err}
			b.current[key] = c
			if err == nil {
				b.lastValid[key] = c
			}
		}
		if lv, ok := b.lastValid[key]; ok && lv.uid != string(obj.UID) {
			delete(b.lastValid, key) // a new object under an old name starts afresh
		}
		r := Result{Namespace: obj.Namespace, Name: obj.Name, Generation: obj.Generation, Err: c.err, Warnings: c.warnings, Serving: NotServed}
		switch lv, ok := b.lastValid[key]; {
		case c.err == nil:
			r.Serving = Served
			entries, entryOwner = append(entries, c.entry), append(entryOwner, i)
		case ok:
			r.Serving = ServedLastValid
			entries, entryOwner = append(entries, lv.entry), append(entryOwner, i)
		}
		results[i] = r
	}
	for key := range b.current {
		if !seen[key] {
			delete(b.current, key)
			delete(b.lastValid, key)
		}
	}

	t, conflicts := table.New(entries)
	if len(conflicts) > 0 {
		reportConflicts(entries, entryOwner, conflicts, results)
	}
	for i := range results {
		sort.Strings(results[i].Conflicts)
	}
	return t, results
}

// reportConflicts tells each losing object which claims it lost, and marks
// it NotServed when it lost all of them. Conflicts point into entries
// (table.New keeps pointers to the elements it was given), so the owner of a
// loser is found by identity, without per-build maps keyed by name.
func reportConflicts(entries []table.Entry, entryOwner []int, conflicts []table.Conflict, results []Result) {
	index := make(map[*table.Entry]int, len(entries))
	for i := range entries {
		index[&entries[i]] = i
	}
	lost := make(map[int]int)
	for _, c := range conflicts {
		i := index[c.Loser]
		lost[i]++
		host := c.Host
		if host == "" {
			host = "every host"
		}
		r := &results[entryOwner[i]]
		r.Conflicts = append(r.Conflicts, fmt.Sprintf("%s %s is served by %s, which is older (or first by namespace/name): give this policy other hosts or path prefixes, or delete one of the two", host, c.Prefix, c.Winner.Key()))
	}
	for i, n := range lost {
		e := &entries[i]
		if n >= max(1, len(e.Hosts))*max(1, len(e.PathPrefixes)) {
			results[entryOwner[i]].Serving = NotServed
		}
	}
}
