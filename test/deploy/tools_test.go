// Package deploy_test checks what users deploy: the Helm chart, the kustomize
// build in config/ and the edge wiring in examples/. The chart and the
// kustomize output are rendered with the pinned tools in bin/ and sent to a
// real kube-apiserver (envtest) with server-side dry-run.
package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// missingTools is the one instruction every "tool not found" failure gives.
const missingTools = "run make helm kustomize envtest-assets"

// The chart is rendered as the documented install does it:
// helm install corsgate charts/corsgate -n corsgate-system.
const (
	releaseName      = "corsgate"
	releaseNamespace = "corsgate-system"
)

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// repoRoot walks up from the test's working directory to the directory that
// holds go.mod, so the tests work from any package directory and any checkout
// path.
func repoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = errors.New("no go.mod in any parent directory of the test")
				return
			}
			dir = parent
		}
	})
	if rootErr != nil {
		t.Fatalf("locating the repository root: %v", rootErr)
	}
	return rootDir
}

// repoPath joins path elements onto the repository root.
func repoPath(t testing.TB, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{repoRoot(t)}, elem...)...)
}

// tool returns the path of a pinned binary in bin/, failing (not skipping) the
// test when it has not been built: a missing tool must not look like a pass.
func tool(t testing.TB, elem ...string) string {
	t.Helper()
	path := repoPath(t, append([]string{"bin"}, elem...)...)
	info, err := os.Stat(path)
	if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		t.Fatalf("%s is missing or not executable: %s", path, missingTools)
	}
	return path
}

// run executes a tool from the repository root and returns its stdout; on
// failure the error carries stderr, which is where helm and kustomize explain.
func run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = repoRoot(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(stderr.String()) + " (" + err.Error() + ")")
	}
	return stdout.String(), nil
}

// valuesFile writes Helm values (nested maps, as in values.yaml) to a file and
// returns its path; nil means no file.
func valuesFile(t testing.TB, values map[string]any) []string {
	t.Helper()
	if values == nil {
		return nil
	}
	data, err := yaml.Marshal(values)
	if err != nil {
		t.Fatalf("encoding values: %v", err)
	}
	// Not under t.TempDir(): its path contains the test name, and Helm splits
	// --values on commas.
	f, err := os.CreateTemp("", "corsgate-values-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(f.Name()) })
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return []string{"--values", f.Name()}
}

// helmTemplate renders the chart with the given values. It returns Helm's
// error rather than failing, so tests can assert refusals.
func helmTemplate(t testing.TB, values map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	args := append([]string{"template", releaseName, "charts/corsgate", "--namespace", releaseNamespace}, valuesFile(t, values)...)
	out, err := run(t, tool(t, "helm"), args...)
	if err != nil {
		return nil, err
	}
	return decodeObjects(t, out), nil
}

// mustRender renders the chart and fails the test if Helm refuses.
func mustRender(t testing.TB, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := helmTemplate(t, values)
	if err != nil {
		t.Fatalf("helm template with %v: %v", values, err)
	}
	return objs
}

// kustomizeBuild builds a kustomization under config/.
func kustomizeBuild(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	out, err := run(t, tool(t, "kustomize"), "build", filepath.Join("config", dir))
	if err != nil {
		t.Fatalf("kustomize build config/%s: %v", dir, err)
	}
	return decodeObjects(t, out)
}

// readObjects decodes a YAML file of the repository.
func readObjects(t testing.TB, elem ...string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return decodeObjects(t, string(data))
}

// decodeObjects splits a multi-document YAML stream into objects, dropping
// empty documents (Helm emits one per disabled template).
func decodeObjects(t testing.TB, stream string) []*unstructured.Unstructured {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("splitting YAML: %v", err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("decoding YAML document: %v\n%s", err, doc)
		}
		if len(obj) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: obj})
	}
}

// key names an object the way kubectl does: Kind/namespace/name.
func key(obj *unstructured.Unstructured) string {
	return obj.GetKind() + "/" + obj.GetNamespace() + "/" + obj.GetName()
}

// keys lists objects' keys, sorted, for messages and set comparisons.
func keys(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, obj := range objs {
		out = append(out, key(obj))
	}
	sort.Strings(out)
	return out
}

// find returns the object with the given kind and name, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, obj := range objs {
		if obj.GetKind() == kind && obj.GetName() == name {
			return obj
		}
	}
	return nil
}

// mustFind is find that fails the test when the object is absent.
func mustFind(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	obj := find(objs, kind, name)
	if obj == nil {
		t.Fatalf("no %s %q among %v", kind, name, keys(objs))
	}
	return obj
}
