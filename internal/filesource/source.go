package filesource

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/table"
)

// DefaultSettle is how long the policy files must stay unchanged before they
// are reloaded. Editors and `cat > file` truncate a file and then write it in
// pieces; a reload in between would serve a half-written file. One second
// covers writers that pause a few hundred milliseconds between pieces and
// still picks an edit up quickly. A writer that pauses longer than this in
// the middle of a file can still be read half-written: write a temporary file
// and rename it over the old one (as editors, `kubectl cp` into a volume and
// the kubelet's ConfigMap updates do), which is atomic.
const DefaultSettle = time.Second

// Source serves the policies of a file or folder into a table.Store.
//
// What the source holds is what is served, with three safeguards: a set of
// files that changes while it is read is read again later, never served as
// read; a file that does not parse keeps the whole last table; and a source
// that holds no CorsPolicy at all (a folder emptied, a file deleted or
// truncated, a ConfigMap mounted at the wrong place) never replaces a table
// that served policies unless AllowEmpty is set. Deleting a policy file means
// the same in file and folder mode: its policies are no longer in the source.
// In folder mode the other files' policies keep serving without them (logged
// with the names of the policies dropped); in file mode, or when it was the
// last file, the source is empty and the rule above applies.
type Source struct {
	path  string
	store *table.Store
	log   logr.Logger
	// pipeline builds, swaps and reports: the step the Kubernetes source
	// shares (compile.Pipeline).
	pipeline *compile.Pipeline
	// Settle is how long the files must stay unchanged before a reload.
	// Zero means DefaultSettle.
	Settle time.Duration
	// AllowEmpty lets a source without any CorsPolicy start, and replace a
	// table that served policies: for a deployment where "no policy" is
	// intended.
	AllowEmpty bool
	// OnServe, if set, is called after each table the source swaps in, once
	// its status is recorded, with how long the read and the build took: the
	// one "a table was swapped in" hook, as the Kubernetes source's
	// (controllers.TableBuilder.OnServe).
	OnServe func(t *table.Table, took time.Duration)
	// OnReload, if set, is called after every reload attempt Watch makes,
	// with its error: refused reloads too, which swap nothing (tests wait on
	// it).
	OnReload func(error)

	mu     sync.Mutex
	status Status
	// unwatched, when not empty, is why changes cannot be watched now;
	// watching is set once Watch has its watches in place.
	unwatched string
	watching  bool
	// served maps each file to the policies of it that the current table
	// serves, to name what a deletion dropped.
	served map[string][]string
}

// Status is what the source last did, for metrics and readiness.
type Status struct {
	// Files counts the policy files of the last read that was served, and
	// Policies its CorsPolicy objects that serve requests (not those that
	// serve nothing: targetRefs, claims all lost to other policies).
	Files, Policies int
	// Degraded is empty when the table served is what the source holds;
	// otherwise it says why not (a reload refused, invalid policies keeping
	// their last valid spec) and what keeps serving.
	Degraded string
	// LastReload is when the last reload attempt ended.
	LastReload time.Time
	// Watching is true while Watch follows the path. It is false before
	// Watch starts, and while the path cannot be watched (its folder is
	// gone, the watch could not be set up): Degraded then says why, and the
	// source keeps retrying.
	Watching bool
}

// New returns a Source for path that swaps tables into store.
func New(path string, store *table.Store, log logr.Logger) *Source {
	return &Source{path: path, store: store, log: log, pipeline: compile.NewPipeline(store)}
}

// Status returns what the source last did. It is safe to call at any time.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Watching = s.watching && s.unwatched == ""
	if s.unwatched != "" {
		if st.Degraded != "" {
			st.Degraded += "; "
		}
		st.Degraded += s.unwatched
	}
	return st
}

func (s *Source) settle() time.Duration {
	if s.Settle > 0 {
		return s.Settle
	}
	return DefaultSettle
}

// ErrEmpty is wrapped by Load's error when the source holds no CorsPolicy and
// AllowEmpty is not set.
var ErrEmpty = errors.New("no CorsPolicy found")

// Load reads and compiles every policy and swaps in the table. At start-up an
// error is fatal: it names the file, the object and each field at fault, or
// says that the source holds no policy. Later, an invalid object keeps
// serving its last valid spec, and files that cannot be read keep the whole
// last table: nothing is lost to a broken edit.
func (s *Source) Load() error {
	err := s.load()
	s.mu.Lock()
	s.status.LastReload = time.Now()
	s.mu.Unlock()
	return err
}

func (s *Source) load() error {
	start := time.Now()
	first := s.store.Load() == nil
	snap, err := readSnapshot(s.path)
	if first && errors.Is(err, errChanged) {
		// At start-up there is no table to keep serving: wait for the writer
		// to finish, a few times, before giving up.
		for i := 0; i < 5 && errors.Is(err, errChanged); i++ {
			time.Sleep(s.settle())
			snap, err = readSnapshot(s.path)
		}
	}
	if err != nil {
		if errors.Is(err, errChanged) {
			return err
		}
		if !first && errors.Is(err, os.ErrNotExist) {
			// The watched path itself is gone: the source is empty.
			return s.empty(nil, fmt.Errorf("--policies %s no longer exists", s.path), start)
		}
		return s.refuse(err)
	}
	objs, err := snap.objects()
	if err != nil {
		if first {
			return err
		}
		return s.refuse(err)
	}
	if len(objs) == 0 {
		return s.empty(snap, nil, start)
	}
	policies := make([]v1alpha1.CorsPolicy, len(objs))
	for i := range objs {
		policies[i] = objs[i].Policy
	}
	served := map[string][]string{}
	for _, o := range objs {
		served[o.File] = append(served[o.File], o.Policy.Key())
	}
	var problems, unserved []string
	t, results, err := s.pipeline.Publish(policies, func(t *table.Table, results []compile.Result) error {
		for i, r := range results {
			for _, w := range r.Warnings {
				s.log.Info("policy warning", "file", objs[i].File, "policy", r.Key(), "warning", w.String())
			}
			for _, c := range r.Conflicts {
				s.log.Info("policy conflict", "file", objs[i].File, "policy", r.Key(), "conflict", c)
			}
			if r.Err != nil {
				problems = append(problems, fmt.Sprintf("%s: CorsPolicy %s: %s", objs[i].File, r.Key(), compile.Message(r.Err)))
				continue
			}
			// A valid policy that serves nothing: targetRefs, which only
			// the Kubernetes mode resolves (every claim lost to other
			// policies is a conflict, logged above).
			for _, a := range r.Ancestors {
				if a.Reason != "Accepted" && a.Message != "" {
					s.log.Error(nil, "policy not served", "file", objs[i].File, "policy", r.Key(), "reason", a.Message)
					unserved = append(unserved, fmt.Sprintf("%s: CorsPolicy %s: spec.targetRefs: %s", objs[i].File, r.Key(), a.Message))
					break
				}
			}
		}
		if len(problems) > 0 && first {
			return fmt.Errorf("invalid policies:\n  %s", strings.Join(problems, "\n  "))
		}
		// The empty-source rule counts what would be served, not objects
		// read: a folder of targetRefs policies serves nothing.
		if t.Len() == 0 && !s.AllowEmpty {
			why := fmt.Errorf("--policies %s: %w that would be served: %d CorsPolicy objects read, none serves a request", s.path, ErrEmpty, len(objs))
			if len(unserved) > 0 {
				why = fmt.Errorf("%w (%s)", why, strings.Join(unserved, "; "))
			}
			if first {
				return fmt.Errorf("%w; refusing to start with no policy: pass --allow-empty-policies if serving no policy is intended", why)
			}
			return s.refuse(fmt.Errorf("%w: if that is intended, restart with --allow-empty-policies", why))
		}
		s.logRemoved(served)
		return nil
	})
	if err != nil {
		return err
	}
	var degraded []string
	if len(problems) > 0 {
		degraded = append(degraded, fmt.Sprintf("%d invalid policies keep serving their last valid spec (or nothing, if they never had one)", len(problems)))
	}
	if len(unserved) > 0 {
		degraded = append(degraded, fmt.Sprintf("%d policies serve nothing (targetRefs, which files cannot resolve: write hosts and pathPrefixes)", len(unserved)))
	}
	serving := 0
	for _, r := range results {
		if r.Serving != compile.NotServed {
			serving++
		}
	}
	s.setStatus(len(snap.files), serving, strings.Join(degraded, "; "), served)
	s.swappedIn(t, start)
	if len(problems) > 0 {
		return fmt.Errorf("invalid policies keep serving their last valid spec (or nothing, if they never had one):\n  %s", strings.Join(problems, "\n  "))
	}
	s.log.Info("policies loaded", "path", s.path, "files", len(snap.files), "policies", serving, "entries", t.Len())
	return nil
}

// empty handles a source without any CorsPolicy: snap is what was read (nil
// when the path itself is gone), why says so when snap is nil; the read
// started at start.
func (s *Source) empty(snap *snapshot, why error, start time.Time) error {
	files := 0
	if snap != nil {
		files = len(snap.files)
	}
	if why == nil {
		why = fmt.Errorf("--policies %s: %w in %d policy files (*.yaml, *.yml or *.json holding documents with kind: CorsPolicy and apiVersion: %s)",
			s.path, ErrEmpty, files, v1alpha1.GroupVersion)
	}
	first := s.store.Load() == nil
	switch {
	case s.AllowEmpty:
		if !first && s.Status().Policies > 0 {
			s.log.Error(why, "serving NO policy: every policy was removed from the source, and --allow-empty-policies lets an empty source replace them")
		}
		s.logRemoved(nil)
		t, _, _ := s.pipeline.Publish(nil, nil) // nothing to refuse: an empty table
		s.setStatus(files, 0, "", nil)
		s.swappedIn(t, start)
		s.log.Info("policies loaded", "path", s.path, "files", files, "policies", 0)
		return nil
	case first:
		return fmt.Errorf("%w; refusing to start with no policy: check that --policies names the folder the policies are mounted in (a ConfigMap mounted at another path leaves this one empty), or pass --allow-empty-policies if serving no policy is intended", why)
	default:
		return s.refuse(fmt.Errorf("%w: the source holds no policy now; if that is intended, restart with --allow-empty-policies", why))
	}
}

// refuse keeps the table being served and says so in the status.
func (s *Source) refuse(err error) error {
	s.mu.Lock()
	s.status.Degraded = "the last reload was refused, the last good policies keep serving: " + oneLine(err.Error())
	s.mu.Unlock()
	return err
}

func (s *Source) setStatus(files, policies int, degraded string, served map[string][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.Files, s.status.Policies, s.status.Degraded = files, policies, degraded
	s.served = served
}

// logRemoved names the policies the next table no longer serves, by file:
// removing a file or a policy is an edit like any other, but one that ends
// CORS answers for someone, so it is said explicitly.
func (s *Source) logRemoved(next map[string][]string) {
	s.mu.Lock()
	prev := s.served
	s.mu.Unlock()
	for file, keys := range prev {
		var gone []string
		for _, k := range keys {
			if !slices.Contains(next[file], k) && !servedElsewhere(next, k) {
				gone = append(gone, k)
			}
		}
		if len(gone) == 0 {
			continue
		}
		if _, still := next[file]; !still {
			s.log.Info("policy file removed: its policies are no longer served", "file", file, "policies", gone)
		} else {
			s.log.Info("policies removed from a file are no longer served", "file", file, "policies", gone)
		}
	}
}

func servedElsewhere(next map[string][]string, key string) bool {
	for _, keys := range next {
		if slices.Contains(keys, key) {
			return true
		}
	}
	return false
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// swappedIn calls OnServe for t, swapped in by a read that started at start.
func (s *Source) swappedIn(t *table.Table, start time.Time) {
	if s.OnServe != nil {
		s.OnServe(t, time.Since(start))
	}
}
