package scale_test

import (
	"fmt"
	"testing"

	"github.com/corsgate/corsgate/test/gen"
)

// TestTraffic checks that every request of the decide benchmark reaches the
// policy it was made for and gets the decision it is named for, at every
// size, so that the benchmark times the intended path.
func TestTraffic(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 100} { // 10,000 is the same shape, only slower to build
		tbl := build(t, gen.Many(n))
		for _, kind := range kinds {
			t.Run(fmt.Sprintf("policies=%d/req=%s", n, kind), func(t *testing.T) {
				reqs := traffic(n, kind)
				if len(reqs) == 0 {
					t.Fatal("no traffic")
				}
				for _, r := range reqs {
					e := tbl.Lookup(r.host, r.path)
					if e == nil {
						t.Fatalf("no policy for %s%s", r.host, r.path)
					}
					d := e.Policy.Decide(&r.req)
					if want := kind != "preflight-denied"; d.Allowed != want {
						t.Fatalf("%s%s %+v: allowed %v (%v %q), want %v", r.host, r.path, r.req, d.Allowed, d.Reason, d.Detail, want)
					}
				}
			})
		}
	}
}
