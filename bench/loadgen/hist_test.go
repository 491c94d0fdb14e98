package loadgen_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/corsgate/corsgate/bench/loadgen"
)

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		values func(r *rand.Rand) []time.Duration
	}{
		{"small exact values", func(r *rand.Rand) []time.Duration {
			v := make([]time.Duration, 1000)
			for i := range v {
				v[i] = time.Duration(r.IntN(256))
			}
			return v
		}},
		{"microseconds to seconds, log-uniform", func(r *rand.Rand) []time.Duration {
			v := make([]time.Duration, 100000)
			for i := range v {
				v[i] = time.Duration(float64(time.Microsecond) * math.Pow(1e6, r.Float64()))
			}
			return v
		}},
		{"one huge outlier", func(r *rand.Rand) []time.Duration {
			v := make([]time.Duration, 1000)
			for i := range v {
				v[i] = 100*time.Microsecond + time.Duration(r.IntN(1000))
			}
			v[0] = time.Hour
			return v
		}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			values := tc.values(rand.New(rand.NewPCG(1, 2)))
			var h, a, b loadgen.Histogram
			for i, v := range values {
				h.Record(v)
				if i%2 == 0 {
					a.Record(v)
				} else {
					b.Record(v)
				}
			}
			a.Merge(&b)
			slices.Sort(values)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				rank := int(q*float64(len(values))+0.999999) - 1
				want := values[rank]
				for name, hist := range map[string]*loadgen.Histogram{"recorded": &h, "merged": &a} {
					got := hist.Quantile(q)
					if got > want || float64(want-got) > float64(want)/128+1 {
						t.Errorf("%s: q%v = %v, want %v within 1/128 below", name, q, got, want)
					}
				}
			}
			if h.Count() != uint64(len(values)) || h.Max() != values[len(values)-1] {
				t.Errorf("count %d max %v, want %d %v", h.Count(), h.Max(), len(values), values[len(values)-1])
			}
		})
	}
}
