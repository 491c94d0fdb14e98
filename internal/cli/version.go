package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Build is what the build stamped into the binary (cmd/corsgate's
// main.version and main.commit, set with -ldflags -X). Left empty, they come
// from the build information Go records: the module version (a tag or
// pseudo-version with go install, "(devel)" otherwise) and the VCS revision
// of a build inside a git checkout.
type Build struct {
	Version, Commit string
}

// versionInfo is what `corsgate version` prints.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func (b Build) info() versionInfo {
	v := versionInfo{Version: b.Version, Commit: b.Commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		if v.Commit == "" {
			modified := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					v.Commit = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if v.Commit != "" && modified {
				v.Commit += "-dirty"
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

const versionUsage = `Usage: corsgate version [-o text|json]

Prints the version and commit corsgate was built from, and the Go version it
was built with. corsgate --version is the same.

Examples:
  corsgate version
  corsgate version -o json | jq -r .commit

Exit status: 0, or 2 a usage error.

Flags:
`

// RunVersion is `corsgate version`.
func (b Build) RunVersion(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("corsgate version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "text", "Output: text or json.")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, versionUsage)
		fs.PrintDefaults()
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "corsgate version: unexpected argument %q\nrun 'corsgate version --help' for usage\n", pos[0])
		return 2
	}
	v := b.info()
	switch *output {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	case "text":
		fmt.Fprintf(stdout, "corsgate %s\ncommit: %s\ngo: %s %s\n", v.Version, v.Commit, v.GoVersion, v.Platform)
	default:
		fmt.Fprintf(stderr, "corsgate version: -o %q: write -o text or -o json\n", *output)
		return 2
	}
	return 0
}
