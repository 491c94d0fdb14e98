package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/lint"
)

const lintUsage = `Usage: corsgate lint [flags] PATH...

Checks CorsPolicy YAML files offline, with the server's own compile path:
the loader (strict YAML: a misspelt field is an error), the CRD's bounds, the
rules the apiserver checks, the engine's checks and conflicts between the
policies given together. Every problem names its file, object and field, and
says what to write instead. Warnings are risky-but-legal settings, which the
server serves and reports in the policy's status.

PATH is a file, a folder (its *.yaml, *.yml and *.json, as corsgate
--policies reads it; with -R its sub-folders' too, which the server does not
read; without -R each sub-folder holding policy files is reported as not
checked) or - for standard input. Files are read as kubectl prints them:
several documents, or a List (kubectl get corspolicies -o yaml). Documents of
other kinds are skipped; a document of policy.corsgate.io whose kind is not
one of its kinds (a misspelt kind) is an error. A file over 8 MiB is refused.

Examples:
  corsgate lint policies/
  corsgate lint --strict -o json policies/*.yaml
  corsgate lint -R manifests/
  kubectl get corspolicies -A -o yaml | corsgate lint -
  kustomize build overlays/prod | corsgate lint -

Exit status: 0 no error (warnings are allowed unless --strict), 1 errors (or,
with --strict, warnings), 2 a usage error or a PATH that cannot be read.

Flags:
`

// RunLint is `corsgate lint`.
func RunLint(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("corsgate lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		output            string
		strict, recursive bool
	)
	fs.StringVar(&output, "o", "text", "Output: text (one line per problem, for people and editors) or json (one object, for CI).")
	fs.BoolVar(&strict, "strict", false, "Fail on warnings too.")
	fs.BoolVar(&recursive, "R", false, "Also check the policy files of sub-folders, as kubectl's -R (corsgate --policies does not read them). Without it, each sub-folder with policy files is a warning: not checked.")
	fs.BoolVar(&recursive, "recursive", false, "Same as -R.")
	paths, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, lintUsage)
		fs.PrintDefaults()
		return 0
	}
	if err != nil {
		return 2
	}
	if output != "text" && output != "json" {
		fmt.Fprintf(stderr, "corsgate lint: -o %q: write -o text or -o json\n", output)
		return 2
	}
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "corsgate lint: give the files or folders to check, or - for standard input; see --help")
		return 2
	}
	var cleanup func()
	stdinName := ""
	for i, p := range paths {
		if p != "-" {
			continue
		}
		if cleanup != nil {
			fmt.Fprintln(stderr, "corsgate lint: - (standard input) may be given once")
			return 2
		}
		file, done, err := stdinFile(stdin)
		if err != nil {
			fmt.Fprintln(stderr, "corsgate lint:", err)
			return 2
		}
		paths[i], cleanup, stdinName = file, done, file
	}
	if cleanup != nil {
		defer cleanup()
	}

	rep, err := lint.Check(paths, lint.Options{Recursive: recursive})
	if err != nil {
		fmt.Fprintln(stderr, "corsgate lint:", err)
		return 2
	}
	for i := range rep.Problems {
		if stdinName != "" && rep.Problems[i].File == stdinName {
			rep.Problems[i].File = "-"
		}
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			return 2
		}
	} else {
		for _, p := range rep.Problems {
			where := p.File
			if p.Document > 0 {
				where += fmt.Sprintf(": document %d", p.Document)
			}
			if p.Item != nil {
				where += fmt.Sprintf(", items[%d]", *p.Item)
			}
			if p.Object != "" {
				where += ": CorsPolicy " + p.Object
			}
			if p.Field != "" {
				where += ": " + p.Field
			}
			fmt.Fprintf(stdout, "%s: %s: %s\n", where, p.Severity, p.Message)
			if p.Fix != "" {
				fmt.Fprintf(stdout, "    fix: %s\n", p.Fix)
			}
		}
		fmt.Fprintf(stdout, "%d file(s), %d polic(ies): %d error(s), %d warning(s)\n", rep.Files, rep.Policies, rep.Errors, rep.Warnings)
	}
	if rep.Failed(strict) {
		return 1
	}
	return 0
}

// stdinFile copies standard input into a temporary file named <stdin>.yaml,
// since the loader reads files.
func stdinFile(stdin io.Reader) (string, func(), error) {
	dir, err := os.MkdirTemp("", "corsgate-lint")
	if err != nil {
		return "", nil, err
	}
	file := filepath.Join(dir, "stdin.yaml")
	data, err := io.ReadAll(io.LimitReader(stdin, filesource.MaxFileBytes+1))
	if err == nil && len(data) > filesource.MaxFileBytes {
		err = fmt.Errorf("more than the %d MiB a policy file may hold: split it into several files", filesource.MaxFileBytes>>20)
	}
	if err == nil {
		err = os.WriteFile(file, data, 0o600)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("reading standard input: %w", err)
	}
	return file, func() { os.RemoveAll(dir) }, nil
}
