package filesource_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/table"
)

// release writes a folder holding one policy for host.
func release(t *testing.T, dir, host string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "p.yaml", fmt.Sprintf(onePolicy, "p", host))
	return dir
}

// watching starts a source on path and its Watch.
func watching(t *testing.T, path string) (*filesource.Source, *table.Store, *logLines) {
	t.Helper()
	store := &table.Store{}
	logs := &logLines{}
	src := filesource.New(path, store, logs.logger())
	src.Settle = 20 * time.Millisecond
	if err := src.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Watch(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// The watch is in place once Status says so (it starts unset).
	waitUntil(t, "the watch is set up", func() bool { return src.Status().Watching })
	return src, store, logs
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

func serves(store *table.Store, host string) func() bool {
	return func() bool { return allowed(store, host, "https://app.example.com") }
}

// swapLink points link at target atomically, as release tools do:
// ln -s target tmp && mv -T tmp link.
func swapLink(t *testing.T, target, link string) {
	t.Helper()
	tmp := link + ".tmp"
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

// The source follows the path it was given through every kind of swap, not
// the inode it first resolved: each swap is served, twice in a row.
func TestWatchFollowsThePath(t *testing.T) {
	t.Parallel()
	t.Run("a symlink switched to another release", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		release(t, filepath.Join(root, "rel1"), "one.example")
		release(t, filepath.Join(root, "rel2"), "two.example")
		release(t, filepath.Join(root, "rel3"), "three.example")
		current := filepath.Join(root, "current")
		swapLink(t, "rel1", current)
		_, store, _ := watching(t, current)
		swapLink(t, "rel2", current)
		waitUntil(t, "rel2 served after the switch", serves(store, "two.example"))
		swapLink(t, "rel3", current)
		waitUntil(t, "rel3 served after the second switch", serves(store, "three.example"))
		// An edit inside the release now current is seen too.
		write(t, filepath.Join(root, "rel3"), "p.yaml", fmt.Sprintf(onePolicy, "p", "edited.example"))
		waitUntil(t, "an edit in the current release served", serves(store, "edited.example"))
	})
	t.Run("a ConfigMap's ..data named directly", func(t *testing.T) {
		t.Parallel()
		cm := t.TempDir()
		// The kubelet's layout: ..<timestamp>/ folders, ..data a link to
		// the current one, swapped by renaming ..data_tmp over it.
		for i, host := range []string{"one.example", "two.example", "three.example"} {
			ts := fmt.Sprintf("..2026_12_06_%d", i)
			release(t, filepath.Join(cm, ts), host)
			if i == 0 {
				swapLink(t, ts, filepath.Join(cm, "..data"))
			}
		}
		_, store, _ := watching(t, filepath.Join(cm, "..data"))
		for i, host := range []string{"two.example", "three.example"} {
			old, _ := os.Readlink(filepath.Join(cm, "..data"))
			swapLink(t, fmt.Sprintf("..2026_12_06_%d", i+1), filepath.Join(cm, "..data"))
			os.RemoveAll(filepath.Join(cm, old)) // as the kubelet does
			waitUntil(t, fmt.Sprintf("update %d served", i+1), serves(store, host))
		}
	})
	t.Run("the folder replaced twice with mv", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		pol := release(t, filepath.Join(root, "pol"), "one.example")
		_, store, _ := watching(t, pol)
		for i, host := range []string{"two.example", "three.example"} {
			next := release(t, filepath.Join(root, "pol.new"), host)
			if err := os.Rename(pol, filepath.Join(root, fmt.Sprintf("pol.old%d", i))); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(next, pol); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, fmt.Sprintf("swap %d served", i+1), serves(store, host))
		}
		// The old folder is no longer followed: an edit there changes nothing.
		write(t, filepath.Join(root, "pol.old1"), "p.yaml", fmt.Sprintf(onePolicy, "p", "stale.example"))
		write(t, pol, "p.yaml", fmt.Sprintf(onePolicy, "p", "four.example"))
		waitUntil(t, "an edit of the folder now at the path served", serves(store, "four.example"))
		if allowed(store, "stale.example", "https://app.example.com") {
			t.Error("an edit of the renamed old folder was served")
		}
	})
}

// When the path cannot be watched (its folder is gone), the source says so
// in its status and log, keeps the last table, and recovers when the path
// comes back.
func TestWatchSaysWhenItCannotWatch(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "mnt", "pol")
	release(t, dir, "one.example")
	src, store, logs := watching(t, dir)
	if err := os.RemoveAll(filepath.Join(root, "mnt")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the status says the path is not watched", func() bool { return !src.Status().Watching })
	if d := src.Status().Degraded; !strings.Contains(d, "cannot watch --policies") || !strings.Contains(d, "last good policies keep serving") {
		t.Errorf("Degraded = %q, want the reason the path is not watched", d)
	}
	// The status is published before the line is logged: wait for it.
	waitUntil(t, "a log line says that changes are not seen", func() bool { return logs.has("policy changes are not seen") })
	if !allowed(store, "one.example", "https://app.example.com") {
		t.Error("the last table was dropped")
	}
	release(t, dir, "back.example")
	waitUntil(t, "the path served again once it is back", serves(store, "back.example"))
	waitUntil(t, "the status clears", func() bool { return src.Status().Watching && src.Status().Degraded == "" })
	waitUntil(t, "a log line says the watch is back", func() bool { return logs.has("watching policy files again") })
}

const targetRefsPolicy = `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata: {name: %s}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop}]
  allowOrigins: [https://app.example.com]
`

// targetRefs policies serve nothing in files: each is reported, and the
// empty-source rule counts what is served, not objects read.
func TestTargetRefsInFilesAreReported(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "a.yaml", fmt.Sprintf(targetRefsPolicy, "attached"))
	store := &table.Store{}
	logs := &logLines{}
	src := filesource.New(dir, store, logs.logger())
	err := src.Load()
	if !errors.Is(err, filesource.ErrEmpty) || !strings.Contains(err.Error(), "default/attached") || !strings.Contains(err.Error(), "write hosts and pathPrefixes") {
		t.Fatalf("start-up with only a targetRefs policy: %v; want it refused, naming the policy and the fix", err)
	}
	if !logs.has("policy not served", "default/attached") {
		t.Error("the targetRefs policy is not logged as not served")
	}
	write(t, dir, "b.yaml", fmt.Sprintf(onePolicy, "hosts", "b.example"))
	if err := src.Load(); err != nil {
		t.Fatal(err)
	}
	st := src.Status()
	if st.Policies != 1 || !strings.Contains(st.Degraded, "1 policies serve nothing") {
		t.Errorf("Status = %+v; want 1 policy serving and the targetRefs one reported", st)
	}
	// Removing the only policy that serves leaves a source that serves
	// nothing: refused, the last table kept.
	os.Remove(filepath.Join(dir, "b.yaml"))
	if err := src.Load(); !errors.Is(err, filesource.ErrEmpty) {
		t.Errorf("reload with only a targetRefs policy left: %v, want it refused", err)
	}
	if !allowed(store, "b.example", "https://app.example.com") {
		t.Error("the last table was replaced by one that serves nothing")
	}
}
