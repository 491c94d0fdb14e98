// Package lint checks CorsPolicy YAML offline with the server's own compile
// path: filesource's loader (strict YAML, apiVersion, names), then
// internal/compile (the CRD's bounds, the rules the apiserver's CEL checks,
// the engine's checks, and conflicts between policies). Every problem names
// its file, object and field, and says what to write instead.
package lint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/filesource"
)

// Severity is error (the server refuses the policy) or warning (legal but
// risky; the server serves it and reports the warning in status).
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Problem is one finding.
type Problem struct {
	File string `json:"file"`
	// Object is "namespace/name", empty when the file could not be read
	// into objects.
	Object string `json:"object,omitempty"`
	// Document is the document's number in the file, from 1, for problems
	// found while reading it; Item its index in a List's items.
	Document int      `json:"document,omitempty"`
	Item     *int     `json:"item,omitempty"`
	Field    string   `json:"field,omitempty"`
	Value    string   `json:"value,omitempty"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Fix is what to write instead, when the message says it.
	Fix string `json:"fix,omitempty"`
}

// Report is the result of linting a set of files.
type Report struct {
	Files    int       `json:"files"`
	Policies int       `json:"policies"`
	Errors   int       `json:"errors"`
	Warnings int       `json:"warnings"`
	Problems []Problem `json:"problems"`
}

// Failed says whether the lint fails: on errors, and with strict on
// warnings too.
func (r *Report) Failed(strict bool) bool {
	return r.Errors > 0 || strict && r.Warnings > 0
}

// Paths lints files and folders as the server reads --policies (a folder's
// *.yaml, *.yml and *.json); Check with Options{Recursive: true} reads
// sub-folders too.
func Paths(paths []string) (*Report, error) { return Check(paths, Options{}) }

// Options are Check's.
type Options struct {
	// Recursive also reads the policy files of sub-folders (kubectl's -R).
	// Without it each sub-folder holding policy files is reported as not
	// checked (a warning), never skipped silently.
	Recursive bool
}

// Check lints files and folders. The error is for a path that does not exist
// or cannot be listed; everything else is a Problem.
func Check(paths []string, opts Options) (*Report, error) {
	recursive := opts.Recursive
	r := &Report{Problems: []Problem{}}
	var files []string
	for _, p := range paths {
		fs, skipped, err := policyFiles(p, recursive)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
		for _, d := range skipped {
			r.add(Problem{File: d.dir, Severity: Warning,
				Message: fmt.Sprintf("not checked: a sub-folder, with %d policy file(s) below it, which corsgate --policies %s does not read either", d.files, p),
				Fix:     "pass -R to check sub-folders, or lint the sub-folder on its own"})
		}
	}
	var objs []filesource.Object
	where := map[string]string{}
	for _, f := range files {
		r.Files++
		got, problems := loadFile(f)
		for _, p := range problems {
			r.add(p)
		}
		for _, o := range got {
			key := o.Policy.Key()
			if prev, dup := where[key]; dup {
				r.add(Problem{File: f, Object: key, Field: "metadata.name", Severity: Error,
					Message: fmt.Sprintf("CorsPolicy %s is also defined in %s", key, prev), Fix: "give one of them another name"})
				continue
			}
			where[key] = f
			objs = append(objs, o)
		}
	}
	r.Policies = len(objs)
	for _, p := range Objects(objs) {
		r.add(p)
	}
	return r, nil
}

func (r *Report) add(p Problem) {
	if p.Severity == Error {
		r.Errors++
	} else {
		r.Warnings++
	}
	r.Problems = append(r.Problems, p)
}

// Objects compiles objects together, as the server would serve them, and
// returns every error and warning.
func Objects(objs []filesource.Object) []Problem {
	policies := make([]v1alpha1.CorsPolicy, len(objs))
	for i := range objs {
		policies[i] = objs[i].Policy
	}
	_, results := compile.NewBuilder().Build(policies)
	var out []Problem
	for i, res := range results {
		file, key := objs[i].File, res.Key()
		if res.Err != nil {
			fes := cors.FieldErrors(res.Err)
			if len(fes) == 0 {
				msg, fix := splitFix(res.Err.Error())
				out = append(out, Problem{File: file, Object: key, Severity: Error, Message: msg, Fix: fix})
			}
			for _, fe := range fes {
				msg, fix := splitFix(fe.Message)
				out = append(out, Problem{File: file, Object: key, Field: fe.Field, Value: fe.Value, Severity: Error, Message: msg, Fix: fix})
			}
		}
		for _, w := range res.Warnings {
			// Warnings describe a risk; they are not written "problem: fix".
			out = append(out, Problem{File: file, Object: key, Field: w.Field, Severity: Warning, Message: w.Message})
		}
		for _, c := range res.Conflicts {
			msg, fix := splitFix(c)
			out = append(out, Problem{File: file, Object: key, Field: "spec.hosts", Severity: Warning, Message: "conflict: " + msg, Fix: fix})
		}
		// A targetRefs policy is resolved from Gateway API objects, which
		// only the Kubernetes mode reads: offline it is not checked, and in
		// files (--policies) it serves nothing.
		for _, a := range res.Ancestors {
			if a.Reason != "Accepted" {
				out = append(out, Problem{File: file, Object: key, Field: "spec.targetRefs", Severity: Warning,
					Message: "not checked offline and not served by corsgate --policies: targetRefs are resolved from the cluster's Gateways and HTTPRoutes",
					Fix:     "in policy files, write hosts and pathPrefixes; in a cluster, check status.ancestors after kubectl apply"})
				break
			}
		}
		if res.NotGranted != nil {
			msg, fix := splitFix(res.NotGranted.Error())
			out = append(out, Problem{File: file, Object: key, Severity: Error, Message: msg, Fix: fix})
		}
	}
	return out
}

// splitErrors undoes errors.Join, one level at a time.
func splitErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// splitFix cuts a message written "what is wrong: what to write instead" at
// its last colon outside double quotes and parentheses (the fix comes last,
// and the description may itself hold a colon, as in "file: pages"). Only
// double quotes quote: values are quoted with strconv.Quote, and a backtick
// or a single quote is a character of a token list or a path ('/'). A
// message without one has no fix.
func splitFix(msg string) (string, string) {
	inQuote, depth, cut := false, 0, -1
	for i := 0; i < len(msg); i++ {
		switch msg[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case '(':
			if !inQuote {
				depth++
			}
		case ')':
			if !inQuote && depth > 0 {
				depth--
			}
		case ':':
			if !inQuote && depth == 0 && i+1 < len(msg) && msg[i+1] == ' ' {
				cut = i
			}
		}
	}
	if cut < 0 {
		return msg, ""
	}
	return msg[:cut], msg[cut+2:]
}

// skippedDir is a sub-folder not read, and how many policy files are below
// it.
type skippedDir struct {
	dir   string
	files int
}

// policyFiles lists what the server reads under path (filesource.PolicyFiles)
// and, with recursive, what its sub-folders hold; without, the sub-folders
// that hold policy files. Hidden folders (a ConfigMap mount's ..data and
// ..<timestamp>) are never read. A folder with no policy file is refused.
func policyFiles(path string, recursive bool) ([]string, []skippedDir, error) {
	files, err := filesource.PolicyFiles(path)
	if err != nil {
		return nil, nil, err
	}
	var skipped []skippedDir
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range entries {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			below, err := walkPolicyFiles(filepath.Join(path, e.Name()))
			if err != nil {
				return nil, nil, err
			}
			switch {
			case len(below) == 0:
			case recursive:
				files = append(files, below...)
			default:
				skipped = append(skipped, skippedDir{filepath.Join(path, e.Name()), len(below)})
			}
		}
	}
	if len(files) == 0 {
		if len(skipped) > 0 {
			return nil, nil, fmt.Errorf("%s: no *.yaml, *.yml or *.json file in this folder, only in its sub-folders: pass -R to check them", path)
		}
		return nil, nil, errors.New(path + ": no *.yaml, *.yml or *.json file in this folder")
	}
	return files, skipped, nil
}

// walkPolicyFiles lists the policy files in dir and below it, hidden
// folders skipped.
func walkPolicyFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		files, err := filesource.PolicyFiles(p)
		out = append(out, files...)
		return err
	})
	return out, err
}
