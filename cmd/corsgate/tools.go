package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/corsgate/corsgate/internal/cli"
	"github.com/corsgate/corsgate/internal/suggest"
)

// A tool is a subcommand: it returns the process's exit status.
type tool func(args []string, stdin io.Reader, stdout, stderr io.Writer) int

// tools are the operators' subcommands. The bare binary, with flags only,
// is the server.
var tools = map[string]tool{
	"explain": cli.RunExplain,
	"lint":    cli.RunLint,
	"import":  cli.RunImport,
	"audit":   cli.RunAudit,
	"version": runVersion,
}

// version and commit are set at build time:
//
//	go build -ldflags "-X main.version=v0.4.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/corsgate
//
// Left empty, they come from the build information Go records: the module
// version (a tag or pseudo-version with go install, "(devel)" otherwise) and
// the VCS revision of a build inside a git checkout.
var version, commit string

// runVersion is `corsgate version` (and --version), with what the build stamped.
func runVersion(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return cli.Build{Version: version, Commit: commit}.RunVersion(args, stdin, stdout, stderr)
}

// pluginName is the binary's name as a kubectl plugin: `kubectl corsgate
// explain ...` runs `kubectl-corsgate explain ...`
// (ln -s corsgate kubectl-corsgate).
const pluginName = "kubectl-corsgate"

// runTool runs the subcommand named by args[1], if there is one. The
// binary does what was typed or nothing: a first argument that is neither a
// flag nor a subcommand (a misspelt subcommand, a stray argument) is a usage
// error, never the server, which would otherwise start against the current
// kubeconfig context and write status. As a kubectl plugin, which serves
// nothing, a missing subcommand is a usage error too.
func runTool(args []string, stdin io.Reader, stdout, stderr io.Writer) (int, bool) {
	plugin := len(args) > 0 && strings.TrimSuffix(filepath.Base(args[0]), ".exe") == pluginName
	if len(args) > 1 {
		name := args[1]
		if t, ok := tools[name]; ok {
			return t(args[2:], stdin, stdout, stderr), true
		}
		switch {
		case name == "help" || plugin && (name == "--help" || name == "-h"):
			toolsUsage(stdout)
			return 0, true
		case !strings.HasPrefix(name, "-"):
			return unknownCommand(name, stderr), true
		}
	}
	if plugin {
		toolsUsage(stderr)
		return 2, true
	}
	return 0, false
}

// unknownCommand reports a first argument that names no subcommand: one
// line, the nearest subcommand if it looks like a typo of one, then the
// short list of subcommands.
func unknownCommand(name string, stderr io.Writer) int {
	names := make([]string, 0, len(tools))
	for n := range tools {
		names = append(names, n)
	}
	slices.Sort(names)
	msg := fmt.Sprintf("corsgate: unknown command %q", name)
	if near := suggest.Closest(name, names); near != "" {
		msg += fmt.Sprintf(": did you mean %q?", near)
	} else {
		msg += ": the server takes flags only"
	}
	fmt.Fprintln(stderr, msg)
	fmt.Fprintln(stderr)
	toolsUsage(stderr)
	return 2
}

// strayArguments refuses positional arguments after the server's flags
// (corsgate --policies dir lnit): the server takes none, and serving while
// ignoring them would do something other than what was typed.
func strayArguments(rest []string, stderr io.Writer) (int, bool) {
	if len(rest) == 0 {
		return 0, false
	}
	fmt.Fprintf(stderr, "corsgate: unexpected argument %q after the flags: the server takes flags only, and subcommands come first (corsgate lint PATH)\n", rest[0])
	fmt.Fprintln(stderr, "run 'corsgate --help' for the flags, 'corsgate help' for the subcommands")
	return 2, true
}

func toolsUsage(w io.Writer) {
	fmt.Fprint(w, `corsgate: the CORS edge service, and its operators' tools.

  corsgate [flags]          serve (ext_proc gRPC); corsgate --help lists the flags
  corsgate version          the version, commit and Go version (also --version)
  corsgate explain ...      why a request is allowed or blocked, and the smallest fix
  corsgate lint ...         check CorsPolicy YAML offline, as the server compiles it
  corsgate import ...       convert ingress-nginx, Istio, Gateway API and Envoy Gateway
                            CORS settings into CorsPolicy objects, with a risk report
  corsgate audit ...        find the CORS holes in a cluster or manifests, read-only

Each tool documents its flags with --help. As a kubectl plugin:
  ln -s corsgate kubectl-corsgate   then   kubectl corsgate explain ...
`)
}
