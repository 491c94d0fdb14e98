package filesource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// RetryWatch is how often the source tries again to watch a path it cannot
// watch (its folder is gone).
const RetryWatch = 2 * time.Second

// watchDir is one folder fsnotify watches.
type watchDir struct {
	// info is the folder watched, to notice when another folder has taken
	// its name: fsnotify watches an inode, not a name.
	info os.FileInfo
	// only, when set, is the one name in the folder whose events count.
	only string
}

// watcher follows the path the source was given, not the inode it first
// resolved to. Release tools switch a symlink (ln -s rel2 tmp && mv -T tmp
// current), the kubelet renames a ConfigMap's ..data symlink, people replace
// a folder with mv: each swaps what the path names, and a watch on the old
// inode would never see another event. So it watches two folders: the one
// holding the path's last component (a swap of the path itself shows up
// there as a rename or create of that name), and the folder the path
// resolves to now (edits of the files in it), and re-resolves them after
// every event.
type watcher struct {
	path    string // absolute
	fs      *fsnotify.Watcher
	watched map[string]watchDir
}

// want is the folders to watch now: the path's parent, and what the path
// resolves to. An error says why the path cannot be watched at all.
func (w *watcher) want() (map[string]string, error) {
	want := map[string]string{}
	parent, err := filepath.EvalSymlinks(filepath.Dir(w.path))
	if err != nil {
		return nil, fmt.Errorf("cannot watch --policies %s: its folder %s: %w", w.path, filepath.Dir(w.path), err)
	}
	target, err := filepath.EvalSymlinks(w.path)
	switch {
	case err != nil:
		// The path is gone (the load says so): its parent's watch sees it
		// come back.
		want[parent] = filepath.Base(w.path)
	case isDir(target):
		want[parent] = filepath.Base(w.path)
		want[target] = ""
	default:
		// A file: any change in its folder may be a swap of a link on the
		// way to it (a ConfigMap's key is a link through ..data), and the
		// folder of the file itself for edits made through its real path.
		want[parent] = ""
		if d := filepath.Dir(target); d != parent {
			want[d] = filepath.Base(target)
		}
	}
	return want, nil
}

// sync makes the watches match want. It reports whether what the path
// resolves to changed (a reload is due) and why the path cannot be
// watched, if it cannot.
func (w *watcher) sync() (changed bool, problem error) {
	want, err := w.want()
	if err != nil {
		// Nothing under the path can be watched: drop what was, so that
		// the retries reload once, not every time.
		changed = len(w.watched) > 0
		for dir := range w.watched {
			_ = w.fs.Remove(dir)
			delete(w.watched, dir)
		}
		return changed, err
	}
	for dir, d := range w.watched {
		st, serr := os.Stat(dir)
		if o, ok := want[dir]; ok && serr == nil && os.SameFile(st, d.info) && o == d.only {
			continue
		}
		_ = w.fs.Remove(dir) // may be gone already, with its folder
		delete(w.watched, dir)
		changed = true
	}
	for dir, only := range want {
		if _, ok := w.watched[dir]; ok {
			continue
		}
		st, err := os.Stat(dir)
		if err == nil {
			err = w.fs.Add(dir)
		}
		if err != nil {
			return true, fmt.Errorf("cannot watch --policies %s: %s: %w", w.path, dir, err)
		}
		w.watched[dir] = watchDir{info: st, only: only}
		changed = true
	}
	return changed, nil
}

// counts says whether an event is about the path (rather than a neighbour
// of it in the same folder).
func (w *watcher) counts(ev fsnotify.Event) bool {
	if _, ok := w.watched[ev.Name]; ok {
		return true // a watched folder itself went away or changed
	}
	d, ok := w.watched[filepath.Dir(ev.Name)]
	return ok && (d.only == "" || d.only == filepath.Base(ev.Name))
}

// Watch reloads on changes of the path until ctx ends. A reload waits for
// the files to settle (Settle without any change), so that a file written in
// several steps is read once, whole. When the path cannot be watched (its
// folder is gone), the source says so (log, Status) and tries again every
// RetryWatch; the last good table keeps serving meanwhile.
func (s *Source) Watch(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	abs, err := filepath.Abs(s.path)
	if err != nil {
		return err
	}
	w := &watcher{path: abs, fs: fw, watched: map[string]watchDir{}}
	settle := s.settle()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var retry <-chan time.Time
	resync := func() {
		changed, problem := w.sync()
		s.setUnwatched(problem)
		retry = nil
		if problem != nil {
			retry = time.After(RetryWatch)
		}
		if changed {
			timer.Reset(settle)
		}
	}
	resync()
	timer.Stop() // the first sync changes nothing: Load has just run
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-fw.Events:
			if !w.counts(ev) {
				continue
			}
			s.log.V(1).Info("policy file event", "event", ev.String())
			timer.Reset(settle)
			resync()
		case err := <-fw.Errors:
			// Events were lost (the kernel's queue overflowed): look again.
			s.log.Error(err, "watching policy files; reloading to catch up")
			timer.Reset(settle)
			resync()
		case <-retry:
			resync()
		case <-timer.C:
			// What the path resolves to may have changed since the event.
			resync()
			err := s.Load()
			if errors.Is(err, errChanged) {
				// Still being written: try again once it has settled.
				s.log.V(1).Info("policy files changed while being read; reading them again once they settle")
				timer.Reset(settle)
				continue
			}
			if err != nil {
				s.log.Error(err, "reloading policies; the last good policies keep serving")
			}
			if s.OnReload != nil {
				s.OnReload(err)
			}
		}
	}
}

// setUnwatched records why the path cannot be watched (nil: it is watched
// again), and logs each change of it once.
func (s *Source) setUnwatched(problem error) {
	why := ""
	if problem != nil {
		why = fmt.Sprintf("%s; retrying every %v, the last good policies keep serving", oneLine(problem.Error()), RetryWatch)
	}
	s.mu.Lock()
	prev := s.unwatched
	s.unwatched, s.watching = why, true
	s.mu.Unlock()
	switch {
	case why != "" && prev == "":
		s.log.Error(problem, "policy changes are not seen until the path can be watched again; the last good policies keep serving", "retry", RetryWatch.String())
	case why == "" && prev != "":
		s.log.Info("watching policy files again", "path", s.path)
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
