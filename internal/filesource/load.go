// Package filesource reads CorsPolicy objects from YAML files, the same
// objects users would `kubectl apply`, so that corsgate runs without a
// cluster (local development, Envoy outside Kubernetes), and reloads them on
// change.
package filesource

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/api/v1alpha1"
)

// Object is a CorsPolicy with the file it came from.
type Object struct {
	File   string
	Policy v1alpha1.CorsPolicy
}

// Load reads path, a YAML file or a folder of them (*.yaml, *.yml, *.json,
// not recursive), each possibly holding several documents. Documents of
// other kinds (a kustomization.yaml beside the policies) are skipped. Objects
// without a namespace are put in "default", as kubectl would.
func Load(path string) ([]Object, error) {
	files, err := policyFiles(path)
	if err != nil {
		return nil, err
	}
	var objs []Object
	var errs []error
	where := map[string]string{}
	for _, f := range files {
		got, err := loadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, o := range got {
			key := o.Policy.Namespace + "/" + o.Policy.Name
			if prev, dup := where[key]; dup {
				errs = append(errs, fmt.Errorf("%s: CorsPolicy %s is also defined in %s: give one of them another name", f, key, prev))
				continue
			}
			where[key] = f
			objs = append(objs, o)
		}
	}
	return objs, errors.Join(errs...)
}

func policyFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--policies %s: %w", path, err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	sort.Strings(files)
	return files, nil
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

func loadFile(file string) ([]Object, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var objs []Object
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, n, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm typeMeta
		if err := sigsyaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s: document %d is not valid YAML: %w", file, n, err)
		}
		if tm.Kind != "CorsPolicy" {
			continue
		}
		if tm.APIVersion != v1alpha1.GroupVersion.String() {
			return nil, fmt.Errorf("%s: document %d: apiVersion %q: write apiVersion: %s", file, n, tm.APIVersion, v1alpha1.GroupVersion)
		}
		var p v1alpha1.CorsPolicy
		// Strict: a misspelt field is an error, as the API server would report it.
		if err := sigsyaml.UnmarshalStrict(doc, &p); err != nil {
			return nil, fmt.Errorf("%s: document %d (CorsPolicy %q): %w", file, n, p.Name, err)
		}
		if p.Name == "" {
			return nil, fmt.Errorf("%s: document %d: CorsPolicy has no metadata.name: add one", file, n)
		}
		if p.Namespace == "" {
			p.Namespace = "default"
		}
		objs = append(objs, Object{File: file, Policy: p})
	}
	return objs, nil
}
