package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/internal/audit"
	"github.com/corsgate/corsgate/internal/importer"
)

const auditUsage = `Usage: corsgate audit [-f FILE|DIR|- ...] [flags]

Finds the CORS holes already configured, read-only: in ingress-nginx
Ingresses (enable-cors and cors-* annotations), Istio VirtualServices
(corsPolicy), Gateway API HTTPRoutes (CORS filters), Envoy Gateway
SecurityPolicies (cors) and corsgate's own CorsPolicies. Each finding has a
class, a severity (what an attacker's page gains), the object, rule and
field, what the source system really does, what an attacker's page can do,
and the fix: the change to the source object, or the CorsPolicy that
corsgate import writes for it. A configuration browsers refuse is reported as
"info (broken, not open)". The semantics are import's: every finding is one
of the warnings corsgate import prints for the object.

Without -f it reads the cluster (the kubeconfig's current context, or
--context), listing page by page; kinds whose CRDs the cluster does not
serve are skipped and said so. It needs get and list on those kinds only
(the chart's <release>-auditor ClusterRole).

Classes: any-origin-with-credentials, registrable-origin, null-origin,
http-origin-with-credentials, private-network, not-enforced,
echo-with-credentials, preflight-forwarded, vary-origin-missing,
wildcard-with-credentials (docs/operator-tools.md describes each).

Examples:
  corsgate audit -A                                  # the whole cluster
  kubectl corsgate audit --context prod -n shop
  corsgate audit -f deploy/ --fail-on high           # CI: fail on high or critical
  corsgate audit -A -o sarif > corsgate.sarif        # for code-scanning UIs
  kustomize build overlays/prod | corsgate audit -f - -o json | jq '.findings[] | select(.severity=="critical")'

Exit status: 0 audited (findings do not change it, unless --fail-on); 1 a
finding at or above --fail-on; 2 a usage error; 3 an input or the cluster
could not be read.

Flags:
`

// RunAudit is `corsgate audit`.
func RunAudit(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("corsgate audit", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	var (
		files         multiFlag
		namespace     string
		allNamespaces bool
		output        string
		failOn        string
		cluster       clusterFlags
	)
	fset.Var(&files, "f", "A manifest file, a folder of them (*.yaml, *.yml, *.json, recursively) or - for standard input, as import reads them. Repeat it. Without -f the cluster is read.")
	fset.Var(&files, "filename", "Same as -f.")
	fset.StringVar(&namespace, "n", "", "Cluster: audit this namespace only (default: the context's namespace).")
	fset.StringVar(&namespace, "namespace", "", "Same as -n.")
	fset.BoolVar(&allNamespaces, "A", false, "Cluster: audit every namespace.")
	fset.BoolVar(&allNamespaces, "all-namespaces", false, "Same as -A.")
	fset.StringVar(&output, "o", "text", "Output: text, json or sarif.")
	fset.StringVar(&failOn, "fail-on", "", "Exit 1 when a finding is at least this severe: critical, high, medium, low or info.")
	cluster.files = "-f FILE|DIR|-"
	cluster.bind(fset)
	usage := func(w io.Writer) { fset.SetOutput(w); fmt.Fprint(w, auditUsage); fset.PrintDefaults() }
	pos, err := parseInterleaved(fset, args)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return 0
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "corsgate audit: "+format+"; see corsgate audit --help\n", a...)
		return 2
	}
	if err != nil {
		return fail("%v", err)
	}
	if len(pos) > 0 {
		return fail("unexpected argument %q: give inputs with -f", pos[0])
	}
	if output != "text" && output != "json" && output != "sarif" {
		return fail("-o %q: write text, json or sarif", output)
	}
	threshold := importer.Severity(0)
	if failOn != "" {
		s, ok := importer.ParseSeverity(failOn)
		if !ok {
			return fail("--fail-on %q: write critical, high, medium, low or info", failOn)
		}
		threshold = s
	}
	if len(files) > 0 && (namespace != "" || allNamespaces) {
		return fail("-n and -A are for the cluster; with -f every object in the files is audited")
	}
	if namespace != "" && allNamespaces {
		return fail("give -n or -A, not both")
	}

	rep := &audit.Report{}
	if len(files) > 0 {
		for _, f := range files {
			// One object at a time: memory holds the findings, not the files.
			if err := eachManifest(f, stdin, rep.Add); err != nil {
				fmt.Fprintln(stderr, "corsgate audit:", err)
				return 3
			}
		}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if !allNamespaces && namespace == "" {
			namespace = contextNamespace(&cluster)
		}
		if err := auditCluster(ctx, &cluster, namespace, rep, stderr); err != nil {
			fmt.Fprintln(stderr, "corsgate audit:", err)
			return 3
		}
	}
	rep.Sort()
	switch output {
	case "json":
		err = rep.WriteJSON(stdout)
	case "sarif":
		err = rep.WriteSARIF(stdout)
	default:
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "corsgate audit:", err)
		return 3
	}
	if output != "text" {
		fmt.Fprintln(stderr, "corsgate audit:", rep.Summary())
	}
	if threshold > 0 && rep.AtLeast(threshold) {
		return 1
	}
	return 0
}

// auditPageSize bounds the objects held at once: each page is audited and
// dropped before the next is listed.
const auditPageSize = 500

func auditCluster(ctx context.Context, c *clusterFlags, namespace string, rep *audit.Report, stderr io.Writer) error {
	cl, err := c.client(runtime.NewScheme())
	if err != nil {
		return err
	}
	var read atomic.Int64
	var current atomic.Value
	current.Store("")
	done := make(chan struct{})
	defer close(done)
	// Progress on stderr, only when the audit takes more than a second.
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(stderr, "corsgate audit: %d object(s) read (listing %s)...\n", read.Load(), current.Load())
			}
		}
	}()
	return listEach(ctx, cl, audit.Kinds, namespace, func(gk schema.GroupKind) { current.Store(gk.Kind) },
		func(o importer.Object) { rep.Add(o); read.Add(1) },
		func(gk schema.GroupKind) {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s (%s): the cluster does not serve this kind (CRD not installed)", gk.Kind, gk.Group))
		})
}

// listEach lists each kind at the version the cluster prefers, page by
// page, and hands over one object at a time; kinds the cluster does not
// serve go to skipped. namespace "" is every namespace.
func listEach(ctx context.Context, cl client.Client, kinds []schema.GroupKind, namespace string,
	start func(schema.GroupKind), each func(importer.Object), skipped func(schema.GroupKind)) error {
	for _, gk := range kinds {
		mapping, err := cl.RESTMapper().RESTMapping(gk)
		if meta.IsNoMatchError(err) {
			skipped(gk)
			continue
		}
		if err != nil {
			return fmt.Errorf("looking up %s.%s: %w", gk.Kind, gk.Group, err)
		}
		start(gk)
		gv := mapping.GroupVersionKind.GroupVersion()
		opts := []client.ListOption{client.Limit(auditPageSize)}
		if namespace != "" {
			opts = append(opts, client.InNamespace(namespace))
		}
		for cont := ""; ; {
			l := &unstructured.UnstructuredList{}
			l.SetGroupVersionKind(gv.WithKind(gk.Kind + "List"))
			if err := cl.List(ctx, l, append(opts, client.Continue(cont))...); err != nil {
				return fmt.Errorf("listing %s: %w", gk.Kind, err)
			}
			for i := range l.Items {
				o := l.Items[i].Object
				o["kind"], o["apiVersion"] = gk.Kind, gv.String()
				each(importer.Object{File: "cluster", Doc: o})
			}
			if cont = l.GetContinue(); cont == "" {
				break
			}
		}
	}
	return nil
}

// contextNamespace is the kubeconfig context's namespace, as kubectl uses it
// when neither -n nor -A is given.
func contextNamespace(c *clusterFlags) string {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.kubeconfig
	ns, _, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.context}).Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return strings.TrimSpace(ns)
}
