package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/corsgate/corsgate/internal/importer"
)

const importUsage = `Usage: corsgate import (-f FILE|DIR|- ... | --from-cluster) [flags]

Converts CORS settings into CorsPolicy objects, one per source object (named
after it, with a comment naming it), and reports every semantic difference
on standard error: what the old system did, what corsgate will do, and what
to write if the old behaviour was intended. Nothing is loosened silently:
where the source allowed less than corsgate would, or corsgate cannot express
it, the output is the stricter choice and the warning says so. Every policy
written passes corsgate lint --strict, unless a warning says why not (a risk
the source had and the policy keeps, such as an http:// origin with
credentials). Warnings tagged [class] are holes in the source: corsgate audit
reports the same ones, ranked.

Reads:
  ingress-nginx   Ingress with nginx.ingress.kubernetes.io/enable-cors and cors-*
  Istio           VirtualService spec.http[].corsPolicy
  Gateway API     HTTPRoute rules[].filters[] of type CORS (attached with targetRefs)
  Envoy Gateway   SecurityPolicy spec.cors (attached with targetRefs)
Other documents are skipped.

Examples:
  corsgate import -f ingress.yaml > corsgate-policies.yaml
  kubectl get ingress -A -o yaml | corsgate import -f - --output-dir policies/
  corsgate import --from-cluster --context prod --output-dir policies/ 2> import-warnings.txt
  corsgate import -f manifests/ | corsgate lint -
  corsgate import -f manifests/ --output-dir policies/ --force   # replace an earlier import

Exit status: 0 imported (warnings do not change it), 1 an input could not be
read or an object could not be imported (the reason is on standard error; the
others are still written), or --output-dir holds files it would overwrite
(nothing is written without --force), 2 a usage error.

Flags:
`

// RunImport is `corsgate import`.
func RunImport(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("corsgate import", flag.ContinueOnError)
	fset.SetOutput(stderr)
	var (
		files       multiFlag
		fromCluster bool
		outputDir   string
		force       bool
		namespace   string
		cluster     clusterFlags
	)
	fset.Var(&files, "f", "A manifest file, a folder of them (*.yaml, *.yml, *.json, recursively) or - for standard input; multi-document YAML and List objects are read. Repeat it.")
	fset.Var(&files, "filename", "Same as -f.")
	fset.BoolVar(&fromCluster, "from-cluster", false, "Read the objects from the cluster (the kubeconfig's) instead of files.")
	fset.StringVar(&namespace, "namespace", "", "With --from-cluster: read this namespace only (default: all).")
	fset.StringVar(&outputDir, "output-dir", "", "Write one file per policy, <namespace>-<name>.yaml (<namespace>.<name>.yaml where two would share a name), in this folder (created if missing) instead of standard output. Existing files are not overwritten without --force.")
	fset.BoolVar(&force, "force", false, "With --output-dir: overwrite files that exist.")
	cluster.files = "-f FILE|DIR|- (without --from-cluster)"
	cluster.bind(fset)
	pos, err := parseInterleaved(fset, args)
	if errors.Is(err, flag.ErrHelp) {
		fset.SetOutput(stdout)
		fmt.Fprint(stdout, importUsage)
		fset.PrintDefaults()
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "corsgate import: unexpected argument %q: give inputs with -f; see --help\n", pos[0])
		return 2
	}
	if (len(files) == 0) == !fromCluster {
		fmt.Fprintln(stderr, "corsgate import: give -f FILE|DIR|- or --from-cluster (one of the two); see --help")
		return 2
	}

	var objs []importer.Object
	failed := false
	if fromCluster {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		objs, err = clusterObjects(ctx, &cluster, namespace, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "corsgate import:", err)
			return 1
		}
	}
	for _, f := range files {
		got, err := readManifests(f, stdin)
		if err != nil {
			fmt.Fprintln(stderr, "corsgate import:", err)
			failed = true
		}
		objs = append(objs, got...)
	}

	res := importer.Import(objs)
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "warning:", w.String())
	}
	for _, e := range res.Errors {
		fmt.Fprintln(stderr, "error: not imported:", e)
		failed = true
	}
	var outFiles []string
	if outputDir != "" {
		if err := os.MkdirAll(outputDir, 0o755); err != nil {
			fmt.Fprintln(stderr, "corsgate import:", err)
			return 1
		}
		outFiles = outputFiles(res.Policies)
		if !force {
			var exist []string
			for _, f := range outFiles {
				if _, err := os.Lstat(filepath.Join(outputDir, f)); err == nil {
					exist = append(exist, filepath.Join(outputDir, f))
				}
			}
			if len(exist) > 0 {
				fmt.Fprintf(stderr, "corsgate import: %s already exist(s): nothing was written; pass --force to overwrite, or choose another --output-dir\n", strings.Join(exist, ", "))
				return 1
			}
		}
	}
	for i, p := range res.Policies {
		out, err := p.YAML()
		if err != nil {
			fmt.Fprintln(stderr, "corsgate import:", err)
			return 1
		}
		if outputDir != "" {
			if err := writeNew(filepath.Join(outputDir, outFiles[i]), out, force); err != nil {
				fmt.Fprintln(stderr, "corsgate import:", err)
				return 1
			}
			continue
		}
		if i > 0 {
			out = append([]byte("---\n"), out...)
		}
		if _, err := stdout.Write(out); err != nil {
			fmt.Fprintln(stderr, "corsgate import:", err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "corsgate import: %d polic(ies) written, %d warning(s), %d object(s) not imported, %d document(s) skipped\n",
		len(res.Policies), len(res.Warnings), len(res.Errors), res.Skipped)
	if failed {
		return 1
	}
	return 0
}

// outputFiles names each policy's file: <namespace>-<name>.yaml, unless two
// policies would share it ("a-b/c" and "a/b-c"); those get
// <namespace>.<name>.yaml, which is unique because a namespace has no dot.
func outputFiles(ps []importer.Policy) []string {
	short := func(p importer.Policy) string { return p.Policy.Namespace + "-" + p.Policy.Name + ".yaml" }
	n := map[string]int{}
	for _, p := range ps {
		n[short(p)]++
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = short(p)
		if n[out[i]] > 1 {
			out[i] = p.Policy.Namespace + "." + p.Policy.Name + ".yaml"
		}
	}
	return out
}

// writeNew writes a file, refusing to replace one unless force: the check
// before writing anything can race with another writer.
func writeNew(file string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(file, flags, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readManifests(path string, stdin io.Reader) ([]importer.Object, error) {
	var objs []importer.Object
	err := eachManifest(path, stdin, func(o importer.Object) { objs = append(objs, o) })
	return objs, err
}

// eachManifest reads FILE, DIR (its *.yaml, *.yml and *.json, recursively,
// skipping dot-files) or - and hands over one object at a time.
func eachManifest(path string, stdin io.Reader, each func(importer.Object)) error {
	if path == "-" {
		return importer.ReadEach(stdin, "-", each)
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return eachManifestFile(path, each)
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != path {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				return eachManifestFile(p, each)
			}
		}
		return nil
	})
}

func eachManifestFile(path string, each func(importer.Object)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return importer.ReadEach(f, path, each)
}

// clusterObjects lists what import reads (importer.Kinds), page by page at
// the versions the cluster serves.
func clusterObjects(ctx context.Context, c *clusterFlags, namespace string, stderr io.Writer) ([]importer.Object, error) {
	cl, err := c.client(runtime.NewScheme())
	if err != nil {
		return nil, err
	}
	var objs []importer.Object
	err = listEach(ctx, cl, importer.Kinds, namespace, func(schema.GroupKind) {},
		func(o importer.Object) { objs = append(objs, o) },
		func(gk schema.GroupKind) {
			fmt.Fprintf(stderr, "corsgate import: %s is not served by this cluster: skipped\n", gk.Kind)
		})
	return objs, err
}
