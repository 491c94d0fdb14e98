package loadgen

import (
	"math/bits"
	"time"
)

// Histogram records latencies in log-linear buckets, the HDR histogram
// layout: values below 2^subBits ns are exact, and every power of two above
// is split into 2^(subBits-1) equal buckets, so any recorded value is known to
// within 1/2^(subBits-1) (0.8 % with subBits 8) from 1 ns to hours, in a
// fixed 58 KiB. Recording is a few instructions and never allocates. The zero
// value is empty and ready; it is not safe for concurrent use (give each
// worker its own and Merge them).
type Histogram struct {
	counts [buckets]uint64
	n      uint64
	max    int64
}

const (
	subBits    = 8
	subCount   = 1 << subBits     // 256: values below are exact
	halfCount  = subCount / 2     // buckets per power of two above
	maxShift   = 63 - subBits + 1 // enough magnitudes for any int64
	buckets    = subCount + maxShift*halfCount
	maxBucketV = int64(1<<62 - 1)
)

// bucketOf maps a value to its bucket: exact below subCount, then halfCount
// buckets per power of two.
func bucketOf(v int64) int {
	if v < subCount {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits // >= 1
	return subCount + (shift-1)*halfCount + int(v>>shift) - halfCount
}

// lowerBound is the smallest value that falls in bucket i.
func lowerBound(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	shift := (i-subCount)/halfCount + 1
	sub := int64((i-subCount)%halfCount + halfCount)
	return sub << shift
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := min(int64(d), maxBucketV)
	h.counts[bucketOf(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest recorded value (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Quantile returns the value at quantile q (0 < q <= 1): the lower bound of
// the bucket holding the ceil(q*n)-th smallest value, which is within the
// bucket width (0.8 %) of the exact value. Zero for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) || rank == 0 {
		rank++
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if v := lowerBound(i); v < h.max {
				return time.Duration(v)
			}
			return time.Duration(h.max)
		}
	}
	return time.Duration(h.max)
}
