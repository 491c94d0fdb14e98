// Package filesource reads CorsPolicy objects from YAML files, the same
// objects users would `kubectl apply`, so that corsgate runs without a
// cluster (local development, Envoy outside Kubernetes), and reloads them on
// change.
package filesource

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/corsgate/corsgate/api/v1alpha1"
)

// Object is a CorsPolicy with the file it came from.
type Object struct {
	File   string
	Policy v1alpha1.CorsPolicy
}

// Load reads path, a YAML file or a folder of them (*.yaml, *.yml, *.json,
// not recursive), each possibly holding several documents or a List (as
// kubectl get -o yaml prints them). Documents of other kinds (a
// kustomization.yaml beside the policies) are skipped; a document of
// corsgate's group that is not a kind of it (a misspelt kind) is an error.
// Objects without a namespace are put in "default", as kubectl would.
func Load(path string) ([]Object, error) {
	snap, err := readSnapshot(path)
	if err != nil {
		return nil, err
	}
	return snap.objects()
}

// snapshot is the whole set of policy files as read at one moment: the file
// names (sorted) and their contents.
type snapshot struct {
	files []string
	data  [][]byte
}

// errChanged says that a file changed while the set was being read: the
// contents read may mix two versions, so they are not used.
var errChanged = errors.New("the policy files changed while they were read")

// readSnapshot reads every policy file under path and checks, after reading,
// that no file was added, removed, resized or rewritten meanwhile (by name,
// size and modification time). A writer still at work shows up as a change;
// the caller retries once the files have settled instead of serving a mix of
// old and new files or a half-written one.
func readSnapshot(path string) (*snapshot, error) {
	before, err := fingerprint(path)
	if err != nil {
		return nil, err
	}
	snap := &snapshot{}
	for _, f := range before {
		data, err := readFile(f.name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, errChanged
			}
			return nil, err
		}
		snap.files = append(snap.files, f.name)
		snap.data = append(snap.data, data)
	}
	after, err := fingerprint(path)
	if err != nil || !slices.Equal(before, after) {
		return nil, errChanged
	}
	return snap, nil
}

// MaxFileBytes is the largest policy file read: 8 MiB, eight times what a
// ConfigMap can hold and more than `kubectl get corspolicies -A -o yaml`
// prints for thousands of policies. A larger file is refused with a message
// rather than parsed: the YAML parser holds several copies of a document.
const MaxFileBytes = 8 << 20

func tooLarge(file string, size int64) error {
	return &DocError{File: file, Item: -1, Message: fmt.Sprintf("is %d bytes, more than the %d MiB a policy file may hold", size, MaxFileBytes>>20), Fix: "split it into several files"}
}

// readFile reads at most MaxFileBytes of a file (which may have grown
// since it was measured; then the snapshot is read again anyway).
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
}

// fileStamp identifies one version of a file.
type fileStamp struct {
	name    string
	size    int64
	modTime time.Time
}

func fingerprint(path string) ([]fileStamp, error) {
	files, err := policyFiles(path)
	if err != nil {
		return nil, err
	}
	stamps := make([]fileStamp, 0, len(files))
	for _, f := range files {
		// os.Stat follows symbolic links: a ConfigMap mount's files are links
		// into a timestamped folder, swapped all at once by the kubelet.
		st, err := os.Stat(f)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, errChanged
			}
			return nil, err
		}
		if st.Size() > MaxFileBytes {
			return nil, tooLarge(f, st.Size())
		}
		stamps = append(stamps, fileStamp{name: f, size: st.Size(), modTime: st.ModTime()})
	}
	return stamps, nil
}

// objects parses every file of the snapshot.
func (snap *snapshot) objects() ([]Object, error) {
	var objs []Object
	var errs []error
	where := map[string]string{}
	for i, f := range snap.files {
		got, ferrs := parseFile(f, snap.data[i])
		if len(ferrs) > 0 {
			errs = append(errs, ferrs...)
			continue
		}
		for _, o := range got {
			key := o.Policy.Key()
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
	files, err := PolicyFiles(path)
	if err != nil {
		return nil, fmt.Errorf("--policies %s: %w", path, err)
	}
	return files, nil
}

// PolicyFiles lists what the server reads under path: the file itself, or a
// folder's policy files (*.yaml, *.yml, *.json; sorted, not recursive, hidden
// files skipped). corsgate lint reads the same list.
func PolicyFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
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
