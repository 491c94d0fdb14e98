package filesource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/table"
)

// Source serves the policies of a file or folder into a table.Store.
type Source struct {
	path    string
	store   *table.Store
	log     logr.Logger
	builder *compile.Builder
	// OnReload, if set, is called after every reload attempt with its error.
	OnReload func(error)
}

// New returns a Source for path that swaps tables into store.
func New(path string, store *table.Store, log logr.Logger) *Source {
	return &Source{path: path, store: store, log: log, builder: compile.NewBuilder()}
}

// Load reads and compiles every policy and swaps in the table. At start-up an
// error is fatal: it names the file, the object and each field at fault.
// Later, an invalid object keeps serving its last valid spec, and a file that
// cannot be read keeps the whole last table: nothing is lost to a broken edit.
func (s *Source) Load() error {
	objs, err := Load(s.path)
	if err != nil {
		return err
	}
	policies := make([]v1alpha1.CorsPolicy, len(objs))
	for i := range objs {
		policies[i] = objs[i].Policy
	}
	t, results := s.builder.Build(policies)
	var problems []string
	for i, r := range results {
		for _, w := range r.Warnings {
			s.log.Info("policy warning", "file", objs[i].File, "policy", r.Key(), "warning", w.String())
		}
		for _, c := range r.Conflicts {
			s.log.Info("policy conflict", "file", objs[i].File, "policy", r.Key(), "conflict", c)
		}
		if r.Err != nil {
			problems = append(problems, fmt.Sprintf("%s: CorsPolicy %s: %s", objs[i].File, r.Key(), compile.Message(r.Err)))
		}
	}
	first := s.store.Load() == nil
	if len(problems) > 0 && first {
		return fmt.Errorf("invalid policies:\n  %s", strings.Join(problems, "\n  "))
	}
	s.store.Swap(t)
	if len(problems) > 0 {
		return fmt.Errorf("invalid policies keep serving their last valid spec (or nothing, if they never had one):\n  %s", strings.Join(problems, "\n  "))
	}
	s.log.Info("policies loaded", "path", s.path, "policies", t.Len())
	return nil
}

// Watch reloads on every change under the path until ctx ends. Changes are
// coalesced: editors write a file in several steps.
func (s *Source) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	// Watch the folder, not the file: editors and ConfigMap mounts replace
	// files by renaming, which would end a watch on the file itself.
	dir := s.path
	if !isDir(dir) {
		dir = filepath.Dir(dir)
	}
	if err := w.Add(dir); err != nil {
		return err
	}
	const settle = 100 * time.Millisecond
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.Events:
			s.log.V(1).Info("policy file event", "event", ev.String())
			timer.Reset(settle)
		case err := <-w.Errors:
			s.log.Error(err, "watching policy files")
		case <-timer.C:
			err := s.Load()
			if err != nil {
				s.log.Error(err, "reloading policies; the last good policies keep serving")
			}
			if s.OnReload != nil {
				s.OnReload(err)
			}
		}
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
