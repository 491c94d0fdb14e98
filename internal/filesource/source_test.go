package filesource_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

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
	reloads := make(chan error, 10)
	src.OnReload = func(err error) { reloads <- err }
	if err := src.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
