package compile

import (
	"fmt"
	"sort"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

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
	// NotGranted, when not nil, is why Builder.Admit refused the object,
	// or why Builder.Grant covers nothing its targets route (a
	// *NotGrantedError): it serves nothing.
	NotGranted error
	// PartlyGranted, when not nil, lists what grants do not cover of what a
	// targetRefs policy's targets route (a *NotGrantedError): the policy
	// serves the rest.
	PartlyGranted error
	// Ancestors is a targetRefs policy's status per ancestor Gateway
	// (GEP-713), in the order its targets reach them.
	Ancestors []AncestorResult
	// attachedClaims counts the (host, prefix) claims made through each
	// ancestor, to tell when all of them lost.
	attachedClaims []int
}

// Key is "namespace/name".
func (r *Result) Key() string { return r.Namespace + "/" + r.Name }

type compiled struct {
	uid        string
	generation int64
	entry      table.Entry
	warnings   []cors.Warning
	err        error
	// targets are the spec's targetRefs: when set, entry is expanded by
	// Resolve at every build (the routes change without the policy).
	targets []gwapiv1.LocalPolicyTargetReferenceWithSectionName
}

// Builder compiles objects into tables. It remembers each object's last valid
// compile, so that an edit that breaks a policy keeps its previous spec
// serving, and it reuses compiles of unchanged objects (same UID and
// generation), so that a rebuild after one change costs little more than
// indexing. Not safe for concurrent use.
type Builder struct {
	current   map[string]compiled // last compile of each object, valid or not
	lastValid map[string]compiled
	// Admit, if set, is asked about the entry each object would serve (its
	// current or last valid spec); an object it refuses serves nothing
	// (Result.NotGranted). The Kubernetes source sets it to
	// Ownership.Admit when host ownership is on; files need none.
	Admit func(obj *v1alpha1.CorsPolicy, e *table.Entry) error
	// Grant, if set, narrows each claim a targetRefs policy's attachments
	// make to what grants to its namespace cover (Ownership.Grant). The
	// Kubernetes source sets it with Admit: grants bind every policy,
	// whatever it attaches to.
	Grant func(namespace, key string, c Claim, dst []Claim) []Claim
	// Resolve turns a targetRef into what it covers (attachment.go). The
	// Kubernetes source sets it; without it a targetRefs policy serves
	// nothing and says so.
	Resolve Resolver
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
	var att map[int]attachedEntry           // entries of targetRefs policies (attachment_build.go); nil without
	for i := range objs {
		obj := &objs[i]
		key := obj.Key()
		seen[key] = true
		c, ok := b.current[key]
		// Generation 0 (objects read from files) has no change counter: recompile.
		if !ok || obj.Generation == 0 || c.uid != string(obj.UID) || c.generation != obj.Generation {
			entry, warnings, err := Compile(obj)
			c = compiled{uid: string(obj.UID), generation: obj.Generation, entry: entry, warnings: warnings, err: err, targets: copyTargets(obj.Spec.TargetRefs)}
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
		// A targetRefs spec is granted claim by claim once resolved
		// (attachServing, Builder.Grant); which spec serves, not the current
		// one, says whether this is one.
		if b.Admit != nil && r.Serving != NotServed && !b.servesTargets(obj, r.Serving, c) {
			if err := b.Admit(obj, &entries[len(entries)-1]); err != nil {
				entries, entryOwner = entries[:len(entries)-1], entryOwner[:len(entryOwner)-1]
				r.Serving, r.NotGranted = NotServed, err
			}
		}
		entries, entryOwner = b.attachServing(obj, &r, i, c, entries, entryOwner, &att)
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
		attributeConflicts(entries, conflicts, att, results)
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
		if c.Winner.Namespace != c.Loser.Namespace {
			r.Conflicts = append(r.Conflicts, fmt.Sprintf("%s %s is served by %s, whose namespace claimed it first (its route, or the policy itself, is older: the Gateway API routes an identical match to the oldest route, and attaching closer to the route never takes a request from another namespace): use other hosts or path prefixes, or agree with that team", host, c.Prefix, c.Winner.Key()))
			continue
		}
		if c.Winner.Rank != c.Loser.Rank {
			r.Conflicts = append(r.Conflicts, fmt.Sprintf("%s %s is served by %s, which is attached closer to the route (GEP-713: route rule, route, listener, Gateway, then hosts/pathPrefixes policies)", host, c.Prefix, c.Winner.Key()))
			continue
		}
		r.Conflicts = append(r.Conflicts, fmt.Sprintf("%s %s is served by %s, which is older (or first by namespace/name): give this policy other hosts or path prefixes, or delete one of the two", host, c.Prefix, c.Winner.Key()))
	}
	// An object (a targetRefs policy may have several entries) is not served
	// when every claim of every entry it has lost.
	lostBy := make(map[int]int, len(lost))
	for i, n := range lost {
		lostBy[entryOwner[i]] += n
	}
	claims := make(map[int]int, len(lostBy))
	for i := range entries {
		if o := entryOwner[i]; lostBy[o] > 0 {
			claims[o] += max(1, len(entries[i].Hosts)) * max(1, len(entries[i].PathPrefixes))
		}
	}
	for o, n := range lostBy {
		if n >= claims[o] {
			results[o].Serving = NotServed
		}
	}
}
