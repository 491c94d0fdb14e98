package audit_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/audit"
	"github.com/corsgate/corsgate/internal/importer"
)

// manyObjects generates n objects, a mix of the audited kinds in the shapes
// of the per-class tests (a fifth of them with a finding of medium or above).
func manyObjects(t testing.TB, n int) []importer.Object {
	t.Helper()
	c := func(prefix string) classCase {
		for _, tc := range classCases {
			if strings.HasPrefix(tc.desc, prefix) {
				return tc
			}
		}
		t.Fatalf("no class case %q", prefix)
		return classCase{}
	}
	gw, nginx, prefix, echo := c("gwConf: * with"), c("nginxDocs: enable-cors alone"), c("istioDocs: a prefix"), c("gwConf: * methods")
	shapes := []string{gw.in, nginx.in, prefix.in, echo.in, c("istioDocs: Envoy reflects").in,
		gw.twin, nginx.twin, prefix.twin, echo.twin, c("samples: a public corsgate policy").in}
	var objs []importer.Object
	for i := 0; len(objs) < n; i++ {
		in := strings.Replace(shapes[i%len(shapes)], "\n  name: ", fmt.Sprintf("\n  name: o%d-", i), 1)
		in = strings.Replace(in, "metadata: {name: ", fmt.Sprintf("metadata: {name: o%d-", i), 1)
		got, err := importer.Read(strings.NewReader(in), "gen.yaml")
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, got...)
	}
	return objs[:n]
}

// BenchmarkAudit10000 audits 10,000 objects, one at a time, as the cluster
// mode does page by page. Run:
//
//	go test ./internal/audit -run '^$' -bench Audit10000 -benchmem
func BenchmarkAudit10000(b *testing.B) {
	objs := manyObjects(b, 10000)
	b.ResetTimer()
	for range b.N {
		r := &audit.Report{}
		for _, o := range objs {
			r.Add(o)
		}
		r.Sort()
		if r.Objects != len(objs) {
			b.Fatalf("%d objects audited", r.Objects)
		}
	}
}

// TestAudit10000 reports the time and the heap the findings of 10,000
// objects hold (go test -v -run Audit10000 ./internal/audit).
func TestAudit10000(t *testing.T) {
	objs := manyObjects(t, 10000)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	r := &audit.Report{}
	for _, o := range objs {
		r.Add(o)
	}
	r.Sort()
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if r.Objects != 10000 || len(r.Findings) < 10000 {
		t.Fatalf("%d objects, %d findings", r.Objects, len(r.Findings))
	}
	t.Logf("10000 objects: %d findings in %v; findings hold %.1f MiB of heap; %s", len(r.Findings), took,
		float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), r.Summary())
	runtime.KeepAlive(r)
	runtime.KeepAlive(objs)
}
