package compile_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/cors"
)

func obj(name string, gen int64, age int, spec v1alpha1.CorsPolicySpec) v1alpha1.CorsPolicy {
	return v1alpha1.CorsPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, UID: types.UID("uid-" + name), Generation: gen,
			CreationTimestamp: metav1.NewTime(time.Unix(int64(age), 0))},
		Spec: spec,
	}
}

func spec(origin string, hosts ...string) v1alpha1.CorsPolicySpec {
	return v1alpha1.CorsPolicySpec{Hosts: hosts, AllowOrigins: []string{origin}}
}

func decideOrigin(t *testing.T, b *compile.Builder, objs []v1alpha1.CorsPolicy, host, origin string) (bool, []compile.Result) {
	t.Helper()
	tbl, results := b.Build(objs)
	e := tbl.Lookup(host, "/")
	if e == nil {
		return false, results
	}
	d := e.Policy.Decide(&cors.Request{Method: "GET", Origin: origin, HasOrigin: true})
	return d.Allowed, results
}

func TestBuilderKeepsLastValidSpec(t *testing.T) {
	t.Parallel()
	b := compile.NewBuilder()
	good := obj("api", 1, 0, spec("https://app.example.com", "api.example.com"))
	if ok, r := decideOrigin(t, b, []v1alpha1.CorsPolicy{good}, "api.example.com", "https://app.example.com"); !ok || r[0].Serving != compile.Served {
		t.Fatalf("valid policy: allowed=%v serving=%v", ok, r[0].Serving)
	}
	broken := obj("api", 2, 0, spec("https://App.example.com/", "api.example.com"))
	ok, r := decideOrigin(t, b, []v1alpha1.CorsPolicy{broken}, "api.example.com", "https://app.example.com")
	if !ok || r[0].Serving != compile.ServedLastValid || r[0].Err == nil {
		t.Fatalf("broken edit: allowed=%v serving=%v err=%v; want the last valid spec serving and the error reported", ok, r[0].Serving, r[0].Err)
	}
	if msg := compile.Message(r[0].Err); !strings.Contains(msg, `spec.allowOrigins[0]`) || !strings.Contains(msg, `write "https://app.example.com"`) {
		t.Errorf("message %q should name the field and the fix", msg)
	}
	fixed := obj("api", 3, 0, spec("https://new.example.com", "api.example.com"))
	if ok, r := decideOrigin(t, b, []v1alpha1.CorsPolicy{fixed}, "api.example.com", "https://new.example.com"); !ok || r[0].Serving != compile.Served {
		t.Fatalf("fixed: allowed=%v serving=%v", ok, r[0].Serving)
	}
	if ok, _ := decideOrigin(t, b, nil, "api.example.com", "https://new.example.com"); ok {
		t.Fatal("deleted policy still serves")
	}
	// Re-created under the same name but never valid: serves nothing.
	if ok, r := decideOrigin(t, b, []v1alpha1.CorsPolicy{broken}, "api.example.com", "https://app.example.com"); ok || r[0].Serving != compile.NotServed {
		t.Fatalf("never-valid policy: allowed=%v serving=%v", ok, r[0].Serving)
	}
}

func TestBuilderReportsConflictsOnTheLoser(t *testing.T) {
	t.Parallel()
	b := compile.NewBuilder()
	older := obj("older", 1, 1, spec("https://a.example", "api.example.com"))
	younger := obj("younger", 1, 2, spec("https://b.example", "api.example.com", "other.example.com"))
	alone := obj("alone", 1, 3, spec("https://c.example", "api.example.com"))
	alone.Spec.PathPrefixes = []string{"/v2"}
	_, results := b.Build([]v1alpha1.CorsPolicy{younger, older, alone})
	byName := map[string]compile.Result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	if c := byName["younger"].Conflicts; len(c) != 1 || !strings.Contains(c[0], "api.example.com / is served by team/older") {
		t.Errorf("younger conflicts = %q", c)
	}
	if byName["younger"].Serving != compile.Served {
		t.Errorf("younger still serves other.example.com, got %v", byName["younger"].Serving)
	}
	if len(byName["older"].Conflicts) != 0 || len(byName["alone"].Conflicts) != 0 {
		t.Errorf("winner and non-overlapping policy must have no conflicts: %+v", results)
	}
	only := obj("only-api", 1, 5, spec("https://d.example", "api.example.com"))
	_, results = b.Build([]v1alpha1.CorsPolicy{older, only})
	if results[1].Serving != compile.NotServed {
		t.Errorf("a policy that lost every claim serves nothing, got %v", results[1].Serving)
	}
}

func TestCompileNamesHostAndPathFields(t *testing.T) {
	t.Parallel()
	o := obj("bad", 1, 0, v1alpha1.CorsPolicySpec{Hosts: []string{"api.example.com:443"}, PathPrefixes: []string{"api"}, AllowOrigins: []string{"*"}, AllowCredentials: true})
	_, _, err := compile.Compile(&o)
	msg := compile.Message(err)
	for _, want := range []string{"spec.hosts[0]", `write "api.example.com"`, "spec.pathPrefixes[0]", `write e.g. "/api"`, "spec.allowOrigins[0]"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}
