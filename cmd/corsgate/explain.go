package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/controllers"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/explain"
	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/observe"
	"github.com/corsgate/corsgate/internal/suggest"
)

// A tool is a subcommand: it returns the process's exit status.
type tool func(args []string, stdin io.Reader, stdout, stderr io.Writer) int

// tools are the operators' subcommands. The bare binary, with flags only,
// is the server.
var tools = map[string]tool{
	"explain": runExplain,
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

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseInterleaved parses flags wherever they are among the positional
// arguments, as curl takes `-X OPTIONS URL -H ...`; "--" ends the flags.
//
// It owns fs's messages: --help returns flag.ErrHelp with nothing printed
// (the caller prints the help once, to standard output), and a bad flag
// prints one line and a hint to run --help to fs's output (standard error),
// so that the error stays on screen instead of scrolling away above every
// flag.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.Usage = func() {}
	out := fs.Output()
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(out)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(out, "%s: %v\nrun '%s --help' for usage\n", fs.Name(), err, fs.Name())
			}
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// clusterFlags are the flags that reach a cluster, kubectl's names.
type clusterFlags struct {
	kubeconfig, context string
}

func (c *clusterFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file; default $KUBECONFIG, then ~/.kube/config, then in-cluster.")
	fs.StringVar(&c.context, "context", "", "The kubeconfig context to use; default its current context.")
}

func (c *clusterFlags) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.context}).ClientConfig()
	if err != nil {
		if ic, icErr := rest.InClusterConfig(); icErr == nil && c.kubeconfig == "" {
			return ic, nil
		}
		return nil, fmt.Errorf("no Kubernetes configuration: %w; pass --kubeconfig, or --policies PATH to read files", err)
	}
	return cfg, nil
}

func (c *clusterFlags) client(scheme *runtime.Scheme) (client.Client, error) {
	cfg, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 30 * time.Second
	return client.New(cfg, client.Options{Scheme: scheme})
}

// clusterPolicies lists every CorsPolicy, as the controller's cache holds
// them, with the cluster's parts of the compile path: targetRefs resolved
// from the Gateway API objects, and host ownership from the CorsHostGrants
// (unless ownership is "Open", as the server's --host-ownership).
func clusterPolicies(ctx context.Context, c *clusterFlags, ownership, gatewayClasses string) ([]filesource.Object, explain.Options, error) {
	var opts explain.Options
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, gwapiv1.Install, corev1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, opts, err
		}
	}
	cl, err := c.client(scheme)
	if err != nil {
		return nil, opts, err
	}
	var list v1alpha1.CorsPolicyList
	if err := cl.List(ctx, &list); err != nil {
		return nil, opts, fmt.Errorf("listing CorsPolicy objects: %w (is the CRD installed, and may you list corspolicies.policy.corsgate.io in every namespace?)", err)
	}
	objs := make([]filesource.Object, len(list.Items))
	for i := range list.Items {
		objs[i] = filesource.Object{Policy: list.Items[i]}
	}
	classes, err := compile.ParseGatewayClasses(gatewayClasses)
	if err != nil {
		return nil, opts, err
	}
	// The server's own resolver, reading with the client instead of the cache.
	opts.Resolve = controllers.Resolver(ctx, cl, classes, nil)
	switch ownership {
	case "Open":
	case "Enforce":
		var grants v1alpha1.CorsHostGrantList
		if err := cl.List(ctx, &grants); err != nil {
			return nil, opts, fmt.Errorf("listing CorsHostGrant objects: %w (pass --host-ownership Open if the server runs with it)", err)
		}
		var nss corev1.NamespaceList
		if err := cl.List(ctx, &nss); err != nil {
			return nil, opts, fmt.Errorf("listing namespaces (for CorsHostGrant namespace selectors): %w", err)
		}
		labels := make(map[string]map[string]string, len(nss.Items))
		for _, n := range nss.Items {
			labels[n.Name] = n.Labels
		}
		own := compile.NewOwnership()
		own.Reset(grants.Items, labels)
		opts.Admit, opts.Grant = own.Admit, own.Grant
	default:
		return nil, opts, fmt.Errorf("--host-ownership %q: write Enforce or Open, as the server runs", ownership)
	}
	return objs, opts, nil
}

const explainUsage = `Usage: corsgate explain [flags] URL

Explains what the edge does with one request, curl-style: which CorsPolicy
decides it (and which others matched and lost, and why), the request's kind,
the outcome, the reason, the exact status and headers the edge produces, what
Chrome and Firefox report when the browser blocks it, and the smallest policy
change that would allow it.

Policies come from files (--policies, as the server reads them) or from the
cluster (the kubeconfig's, as the controller reads them); both are compiled
the way the server compiles them.

Examples:
  corsgate explain --policies examples/policies -X OPTIONS https://api.example.com/v1/orders \
      -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: PUT'
  corsgate explain https://api.example.com/v1/orders -H 'Origin: https://app.example.com' --credentials -o json
  kubectl corsgate explain --context prod -X OPTIONS https://api.example.com/ -H 'Origin: https://x.example' \
      -H 'Access-Control-Request-Method: DELETE'
  # Which origins has the deciding policy allowed and denied (before switching DryRun to Enforce)?
  kubectl -n corsgate-system port-forward deploy/corsgate 8080 &
  corsgate explain --observed http://localhost:8080 https://api.example.com/v1/orders -H 'Origin: https://x.example'

Outcomes: preflight-allowed, preflight-rejected (answered at the edge),
actual-allowed, actual-denied (the request goes upstream; the edge sets or
removes the CORS headers of the response), forwarded (the edge changes
nothing: a DryRun policy, or a denied preflight under unmatchedPreflight:
Forward; "enforce" then says what Enforce would do), refused (an actual
request answered 403 at the edge by cross-origin protection), not-cors (no
Origin), no-policy.

Exit status: 0 explained (whatever the outcome), 1 the policies or the
cluster could not be read, 2 a usage error.

Flags:
`

func runExplain(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("corsgate explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		method, policies, output string
		headers, upstream        multiFlag
		credentials              bool
		cluster                  clusterFlags
		ownership, classes       string
		observed                 string
	)
	fs.StringVar(&method, "X", "GET", "The request's method, as curl's -X (OPTIONS for a preflight).")
	fs.StringVar(&method, "request", "GET", "Same as -X.")
	fs.Var(&headers, "H", "A request header, 'Name: value', as curl's -H; repeat it. Origin makes it a CORS request; with OPTIONS, Access-Control-Request-Method makes it a preflight.")
	fs.Var(&headers, "header", "Same as -H.")
	fs.BoolVar(&credentials, "credentials", false, "The browser sends cookies (fetch credentials: \"include\"): judge the response as it would.")
	fs.Var(&upstream, "upstream-header", "A header of the upstream's response, 'Name: value', for a request that reaches it; repeat it. Shows what the edge removes, keeps and merges (Vary).")
	fs.StringVar(&policies, "policies", "", "Read CorsPolicy objects from this YAML file or folder, as `corsgate --policies` does, instead of the cluster.")
	fs.StringVar(&output, "o", "text", "Output: text (for people) or json (one object: policy, kind, outcome, reason, status, headers...).")
	fs.StringVar(&ownership, "host-ownership", "Enforce", "Cluster mode: Enforce (serve a CorsPolicy only where a CorsHostGrant admits it) or Open, as the server's --host-ownership.")
	fs.StringVar(&classes, "gateway-classes", "eg", "Cluster mode: the GatewayClasses whose Gateways targetRefs attach through, as the server's --gateway-classes (\"*\": every class).")
	fs.StringVar(&observed, "observed", "", "Also show the origins the deciding policy has seen, allowed and denied, read from a running corsgate's metrics address (e.g. http://localhost:8080).")
	cluster.bind(fs)

	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, explainUsage)
		fs.PrintDefaults()
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "corsgate explain: give exactly one URL, such as https://api.example.com/v1/orders (got %d arguments); see --help\n", len(pos))
		return 2
	}
	if output != "text" && output != "json" {
		fmt.Fprintf(stderr, "corsgate explain: -o %q: write -o text or -o json\n", output)
		return 2
	}

	var objs []filesource.Object
	var opts explain.Options
	if policies != "" {
		objs, err = filesource.Load(policies)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		objs, opts, err = clusterPolicies(ctx, &cluster, ownership, classes)
	}
	if err != nil {
		fmt.Fprintln(stderr, "corsgate explain:", err)
		return 1
	}
	res, err := explain.ExplainWith(objs, explain.Request{Method: method, URL: pos[0], Headers: headers, Credentials: credentials, Upstream: upstream}, opts)
	if err != nil {
		fmt.Fprintln(stderr, "corsgate explain:", err)
		return 2
	}
	var seen *observe.PolicyOrigins
	if observed != "" && res.Policy != nil {
		if seen, err = fetchObserved(observed, *res.Policy); err != nil {
			fmt.Fprintln(stderr, "corsgate explain:", err)
			return 1
		}
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(observedResult{Result: res, Observed: seen}); err != nil {
			fmt.Fprintln(stderr, "corsgate explain:", err)
			return 1
		}
		return 0
	}
	if err := res.WriteText(stdout); err != nil {
		fmt.Fprintln(stderr, "corsgate explain:", err)
		return 1
	}
	if observed != "" && res.Policy != nil {
		if err := writeObserved(stdout, *res.Policy, seen); err != nil {
			fmt.Fprintln(stderr, "corsgate explain:", err)
			return 1
		}
	}
	return 0
}
