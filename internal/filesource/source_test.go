package filesource_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/table"
)

const twoPolicies = `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  allowOrigins: [https://app.example.com]
---
# a comment-only document and a foreign kind are skipped
---
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [x.yaml]
---
apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata: {name: public}
spec:
  allowOrigins: ["*"]
`

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func allowed(s *table.Store, host, origin string) bool {
	e := s.Load().Lookup(host, "/")
	if e == nil {
		return false
	}
	d := e.Policy.Decide(&cors.Request{Method: "GET", Origin: origin, HasOrigin: true})
	return d.Allowed
}

func TestLoadMultiDocument(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "policies.yaml", twoPolicies)
	write(t, dir, "notes.txt", "not yaml at all: [")
	objs, err := filesource.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Policy.Namespace != "shop" || objs[1].Policy.Namespace != "default" {
		t.Fatalf("got %+v; want shop/api and default/public", objs)
	}
}

func TestLoadErrorsNameFileObjectAndField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc, content string
		want          []string
	}{
		{desc: "invalid origin", content: "apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\nmetadata: {name: api}\nspec:\n  allowOrigins: [\"https://app.example.com/\"]\n",
			want: []string{"bad.yaml", "CorsPolicy default/api", "spec.allowOrigins[0]", `write "https://app.example.com"`}},
		{desc: "misspelt field", content: "apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\nmetadata: {name: api}\nspec:\n  allowOrigin: [\"*\"]\n",
			want: []string{"bad.yaml", "document 1", `unknown field "allowOrigin"`}},
		{desc: "wrong apiVersion", content: "apiVersion: policy.corsgate.io/v1\nkind: CorsPolicy\nmetadata: {name: api}\n",
			want: []string{"bad.yaml", "write apiVersion: policy.corsgate.io/v1alpha1"}},
		{desc: "no name", content: "apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\nspec: {allowOrigins: [\"*\"]}\n",
			want: []string{"bad.yaml", "no metadata.name"}},
		{desc: "integer out of range", content: "apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\nmetadata: {name: api}\nspec: {allowOrigins: [\"*\"], maxAge: 2147483648}\n",
			want: []string{"bad.yaml", "spec.maxAge", "the number 2147483648 is out of range for a 32-bit integer", "write a smaller number"}},
		// 2^63 is one past int64's range, and float64 holds it exactly.
		{desc: "int64 out of range", content: "apiVersion: policy.corsgate.io/v1alpha1\nkind: CorsPolicy\nmetadata: {name: api, generation: 9223372036854775808}\nspec: {allowOrigins: [\"*\"]}\n",
			want: []string{"bad.yaml", "metadata.generation", "is out of range for a 64-bit integer"}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			write(t, dir, "bad.yaml", tc.content)
			err := filesource.New(dir, &table.Store{}, logr.Discard()).Load()
			if err == nil {
				t.Fatal("Load succeeded; want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestDuplicateNamesAcrossFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "a.yaml", twoPolicies)
	write(t, dir, "b.yaml", twoPolicies)
	_, err := filesource.Load(dir)
	if err == nil || !strings.Contains(err.Error(), "shop/api is also defined in") {
		t.Fatalf("err = %v; want a duplicate-name error", err)
	}
}

// TestWatchReloadsAndKeepsLastGood edits a file under a running watch: a
// valid edit is served, a broken edit keeps the last valid spec, and a file
// that no longer parses keeps the whole last table.
func TestWatchReloadsAndKeepsLastGood(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := write(t, dir, "p.yaml", twoPolicies)
	store := &table.Store{}
	src := filesource.New(dir, store, logr.Discard())
	src.Settle = 50 * time.Millisecond
	reloads := make(chan error, 10)
	src.OnReload = func(err error) { reloads <- err }
	if err := src.Load(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	go src.Watch(ctx)
	// fsnotify needs its watch in place before the first edit; a first
	// harmless write tells us when it is.
	waitReload := func(edit func()) error {
		t.Helper()
		for {
			edit()
			select {
			case err := <-reloads:
				return err
			case <-time.After(2 * time.Second):
			}
		}
	}

	if err := waitReload(func() {
		write(t, dir, "p.yaml", strings.Replace(twoPolicies, "https://app.example.com", "https://new.example.com", 1))
	}); err != nil {
		t.Fatalf("valid edit: %v", err)
	}
	if !allowed(store, "api.example.com", "https://new.example.com") || allowed(store, "api.example.com", "https://app.example.com") {
		t.Fatal("valid edit not served")
	}

	err := waitReload(func() {
		write(t, dir, "p.yaml", strings.Replace(twoPolicies, "https://app.example.com", "https://new.example.com/", 1))
	})
	if err == nil || !strings.Contains(err.Error(), "spec.allowOrigins[0]") {
		t.Fatalf("broken edit: err = %v; want it to name the field", err)
	}
	if !allowed(store, "api.example.com", "https://new.example.com") {
		t.Fatal("broken edit dropped the last valid spec")
	}

	if err := waitReload(func() { write(t, dir, "p.yaml", "{not: yaml: at all") }); err == nil {
		t.Fatal("unparsable file reloaded without error")
	}
	if !allowed(store, "api.example.com", "https://new.example.com") || !allowed(store, "any.example.org", "https://x.example") {
		t.Fatal("unparsable file dropped the last table")
	}
	_ = file
}

const onePolicy = `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata: {name: %s}
spec:
  hosts: [%s]
  allowOrigins: [https://app.example.com]
`

// logLines is a logger that keeps its lines, to assert what an operator reads.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{})
}

func (l *logLines) has(sub ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		all := true
		for _, s := range sub {
			all = all && strings.Contains(line, s)
		}
		if all {
			return true
		}
	}
	return false
}

// An empty source (an empty folder, a file with no CorsPolicy, a mis-mounted
// ConfigMap) is refused at start-up with a message that says what was
// expected and how to allow it, unless AllowEmpty says empty is intended.
func TestEmptySourceAtStartup(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc  string
		files map[string]string
	}{
		{desc: "empty folder"},
		{desc: "only other kinds and other files", files: map[string]string{
			"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n", "README.md": "policies go here"}},
		{desc: "empty file", files: map[string]string{"p.yaml": ""}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, content := range tc.files {
				write(t, dir, name, content)
			}
			err := filesource.New(dir, &table.Store{}, logr.Discard()).Load()
			if !errors.Is(err, filesource.ErrEmpty) {
				t.Fatalf("Load = %v, want ErrEmpty", err)
			}
			for _, want := range []string{dir, "no CorsPolicy found", "kind: CorsPolicy", "--allow-empty-policies", "ConfigMap"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			store := &table.Store{}
			src := filesource.New(dir, store, logr.Discard())
			src.AllowEmpty = true
			if err := src.Load(); err != nil {
				t.Fatalf("AllowEmpty: Load = %v", err)
			}
			if store.Load() == nil || store.Load().Len() != 0 {
				t.Fatalf("AllowEmpty: want an empty table served")
			}
		})
	}
}

// Deleting or emptying policy files means the same in file and folder mode:
// what the source holds is served, except that a source left with no policy
// never replaces a table that served some (unless AllowEmpty); each refusal
// leaves the last table serving and says why in the log and the status.
func TestDeletionAndEmptying(t *testing.T) {
	t.Parallel()
	type step struct {
		desc  string
		edit  func(dir string)
		err   bool     // Load fails (refused)
		serve []string // hosts that must have a policy after the step
		gone  []string // hosts that must have none
		log   []string // a log line with all of these
	}
	cases := []struct {
		desc       string
		fileMode   bool
		allowEmpty bool
		steps      []step
	}{
		{desc: "folder: a deleted file's policies stop, the others serve", steps: []step{
			{desc: "delete b.yaml", edit: func(dir string) { os.Remove(filepath.Join(dir, "b.yaml")) },
				serve: []string{"a.example"}, gone: []string{"b.example"}, log: []string{"policy file removed", "b.yaml", "default/b"}},
			{desc: "delete the last file", edit: func(dir string) { os.Remove(filepath.Join(dir, "a.yaml")) },
				err: true, serve: []string{"a.example"}, log: nil},
			{desc: "write it back", edit: func(dir string) { write(t, dir, "a.yaml", fmt.Sprintf(onePolicy, "a", "a.example")) },
				serve: []string{"a.example"}},
		}},
		{desc: "folder: a truncated file is refused when it was the last one", steps: []step{
			{desc: "delete b.yaml", edit: func(dir string) { os.Remove(filepath.Join(dir, "b.yaml")) }, serve: []string{"a.example"}},
			{desc: "truncate a.yaml", edit: func(dir string) { write(t, dir, "a.yaml", "") }, err: true, serve: []string{"a.example"}},
		}},
		{desc: "file: deleting the file is refused", fileMode: true, steps: []step{
			{desc: "delete", edit: func(dir string) { os.Remove(filepath.Join(dir, "a.yaml")) }, err: true, serve: []string{"a.example"}},
			{desc: "truncate", edit: func(dir string) { write(t, dir, "a.yaml", "") }, err: true, serve: []string{"a.example"}},
		}},
		{desc: "folder, AllowEmpty: emptying is served, said loudly", allowEmpty: true, steps: []step{
			{desc: "delete both", edit: func(dir string) {
				os.Remove(filepath.Join(dir, "a.yaml"))
				os.Remove(filepath.Join(dir, "b.yaml"))
			}, gone: []string{"a.example", "b.example"}, log: []string{"serving NO policy"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			write(t, dir, "a.yaml", fmt.Sprintf(onePolicy, "a", "a.example"))
			path := filepath.Join(dir, "a.yaml")
			if !tc.fileMode {
				write(t, dir, "b.yaml", fmt.Sprintf(onePolicy, "b", "b.example"))
				path = dir
			}
			var logs logLines
			store := &table.Store{}
			src := filesource.New(path, store, logs.logger())
			src.AllowEmpty = tc.allowEmpty
			if err := src.Load(); err != nil {
				t.Fatal(err)
			}
			for _, st := range tc.steps {
				st.edit(dir)
				err := src.Load()
				if (err != nil) != st.err {
					t.Fatalf("%s: Load = %v, want error %v", st.desc, err, st.err)
				}
				degraded := src.Status().Degraded
				if st.err && !strings.Contains(degraded, "last good policies keep serving") {
					t.Errorf("%s: status degraded %q, want it to say the last good policies keep serving", st.desc, degraded)
				}
				if !st.err && degraded != "" {
					t.Errorf("%s: status degraded %q after a served reload", st.desc, degraded)
				}
				for _, h := range st.serve {
					if store.Load().Lookup(h, "/") == nil {
						t.Errorf("%s: %s has no policy, want it served", st.desc, h)
					}
				}
				for _, h := range st.gone {
					if store.Load().Lookup(h, "/") != nil {
						t.Errorf("%s: %s still has a policy", st.desc, h)
					}
				}
				if len(st.log) > 0 && !logs.has(st.log...) {
					t.Errorf("%s: no log line with %q in:\n%s", st.desc, st.log, strings.Join(logs.lines, "\n"))
				}
			}
		})
	}
}

// TestTornWriteNeverServed rewrites a file in place the way `cat > file` or an
// editor does (truncate, then pieces with pauses shorter than the settle
// interval) under a running watch, and looks at the table between every two
// steps: it serves the old policy until the new one is whole.
func TestTornWriteNeverServed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := write(t, dir, "p.yaml", fmt.Sprintf(onePolicy, "p", "old.example"))
	store := &table.Store{}
	src := filesource.New(file, store, logr.Discard())
	src.Settle = 400 * time.Millisecond
	reloads := make(chan error, 10)
	src.OnReload = func(err error) { reloads <- err }
	if err := src.Load(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	go src.Watch(ctx)
	time.Sleep(100 * time.Millisecond) // the watch in place

	next := fmt.Sprintf(onePolicy, "p", "new.example")
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		tbl := store.Load()
		if tbl.Len() != 1 || tbl.Lookup("old.example", "/") == nil {
			t.Fatalf("%s: the table no longer serves the old policy whole (%d policies)", when, tbl.Len())
		}
	}
	for i := 0; i < len(next); i += 20 {
		time.Sleep(100 * time.Millisecond)
		check(fmt.Sprintf("after %d bytes", i))
		if _, err := f.WriteString(next[i:min(i+20, len(next))]); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	select {
	case err := <-reloads:
		if err != nil {
			t.Fatalf("reload after the write: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no reload after the write")
	}
	if store.Load().Lookup("new.example", "/") == nil || store.Load().Lookup("old.example", "/") != nil {
		t.Fatal("the finished write is not served")
	}
	select {
	case err := <-reloads:
		t.Fatalf("more than one reload for one write (%v): a partial file was read", err)
	default:
	}
}

// TestOnServeAfterEachSwap: OnServe is told of every table the source swaps
// in, the one the store then holds, and of nothing else: a refused reload
// swaps nothing and says nothing.
func TestOnServeAfterEachSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "p.yaml", twoPolicies)
	store := &table.Store{}
	src := filesource.New(dir, store, logr.Discard())
	var served []*table.Table
	src.OnServe = func(tbl *table.Table, took time.Duration) {
		if took <= 0 {
			t.Errorf("OnServe took = %v, want the read's duration", took)
		}
		served = append(served, tbl)
	}
	if err := src.Load(); err != nil {
		t.Fatal(err)
	}
	if len(served) != 1 || served[0] != store.Load() {
		t.Fatalf("after the first load: OnServe saw %d tables, want the one served", len(served))
	}
	write(t, dir, "p.yaml", "kind: CorsPolicy\nthis is not YAML: [")
	if err := src.Load(); err == nil {
		t.Fatal("a broken file was not refused")
	}
	if len(served) != 1 {
		t.Fatalf("a refused reload called OnServe (%d calls)", len(served))
	}
	write(t, dir, "p.yaml", twoPolicies)
	if err := src.Load(); err != nil {
		t.Fatal(err)
	}
	if len(served) != 2 || served[1] != store.Load() || served[1] == served[0] {
		t.Fatalf("after a good reload: OnServe saw %d tables, want a second, the one served", len(served))
	}
}
