package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/controllers"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/explain"
	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/observe"
)

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

// RunExplain is `corsgate explain`.
func RunExplain(args []string, _ io.Reader, stdout, stderr io.Writer) int {
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
	cluster.files = "--policies PATH"
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
