package observe

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/corsgate/corsgate/extproc"
)

// collectors is a prometheus.Registerer that keeps what is registered.
type collectors []prometheus.Collector

func (c *collectors) Register(x prometheus.Collector) error   { *c = append(*c, x); return nil }
func (c *collectors) MustRegister(xs ...prometheus.Collector) { *c = append(*c, xs...) }
func (c *collectors) Unregister(prometheus.Collector) bool    { return false }

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

// TestDocsNameObserverMetrics fails when docs/operating.md does not name a
// metric the Observer registers, one of its label names, or a value of its
// mode and phase labels. (Reason, outcome and kind values: internal/cors's
// TestDocsNameEveryLabel.)
func TestDocsNameObserverMetrics(t *testing.T) {
	doc := readDoc(t, "operating.md")
	var reg collectors
	New(&reg, logr.Discard(), Options{})
	var names []string
	for _, c := range reg {
		ch := make(chan *prometheus.Desc, 8)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := descRE.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read %s", d)
			}
			names = append(names, m[1])
			for l := range strings.SplitSeq(m[2], ",") {
				if l != "" {
					names = append(names, l)
				}
			}
		}
	}
	names = append(names, modeLabel(false), modeLabel(true))
	seen := map[string]bool{}
	for p := range 256 {
		if s := extproc.Phase(p).String(); !seen[s] {
			seen[s] = true
			names = append(names, s)
		}
	}
	for _, n := range names {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("docs/operating.md does not name `%s`", n)
		}
	}
}

// metricNameRE is a metric name as corsgate spells them in Go.
var metricNameRE = regexp.MustCompile(`^(corsgate|grpc_server)_[a-z0-9_]+$`)

// TestDocsNameEveryMetric fails when docs/operating.md does not name a
// metric defined anywhere in the product module (wherever the definition
// lives): every string literal spelt like a corsgate_ or grpc_server_ metric
// in non-test Go, and the label names of every prometheus.NewDesc and
// prometheus.New*Vec call.
func TestDocsNameEveryMetric(t *testing.T) {
	doc := readDoc(t, "operating.md")
	found := map[string]string{} // name -> file
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root {
				if n := d.Name(); strings.HasPrefix(n, ".") || n == "testdata" || n == "bin" {
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module (bench, test/e2e)
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING && metricNameRE.MatchString(s) {
					found[s] = path
				}
			case *ast.CallExpr:
				for _, s := range labelNames(n) {
					found[s] = path
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) < 10 {
		t.Fatalf("found only %d metric and label names: is the walk broken?", len(found))
	}
	for n, path := range found {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("docs/operating.md does not name `%s` (%s)", n, path)
		}
	}
}

// labelNames returns the label names a prometheus.NewDesc or New*Vec call
// gives as string literals, directly or through a local variable.
func labelNames(call *ast.CallExpr) []string {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return nil
	}
	if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "prometheus" {
		return nil
	}
	var arg ast.Expr
	switch {
	case sel.Sel.Name == "NewDesc" && len(call.Args) > 2:
		arg = call.Args[2]
	case strings.HasPrefix(sel.Sel.Name, "New") && strings.HasSuffix(sel.Sel.Name, "Vec") && len(call.Args) > 1:
		arg = call.Args[1]
	default:
		return nil
	}
	var out []string
	var walk func(ast.Node)
	walk = func(n ast.Node) {
		ast.Inspect(n, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING {
					out = append(out, s)
				}
			case *ast.Ident:
				//nolint:staticcheck // ast.Object is what resolves a local variable without go/types.
				if n.Obj != nil {
					if as, ok := n.Obj.Decl.(*ast.AssignStmt); ok {
						for _, r := range as.Rhs {
							walk(r)
						}
					}
				}
			}
			return true
		})
	}
	walk(arg)
	return out
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
