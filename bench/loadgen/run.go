package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// Load is one measurement: a mix sent by Workers goroutines over Sims (one
// per HTTP/2 connection, workers spread evenly) for Duration.
type Load struct {
	Sims    []*envoystandin.Sim
	Mixes   []Mix // request k uses Mixes[k % len(Mixes)]
	Expect  func(Mix) Expect
	Workers int
	// Duration bounds the run; it always stops by itself.
	Duration time.Duration
	// Rate, when positive, is a fixed arrival rate (requests per second):
	// request k is due at start + k/Rate whether or not earlier ones have
	// finished, and its latency counts from when it was due, so a stalled
	// server is charged for the queue it causes (no coordinated omission).
	// Zero is closed loop: each worker sends its next request as soon as the
	// last one is answered, which measures the maximum throughput.
	Rate float64
}

// Result is what one Load measured.
type Result struct {
	Requests uint64
	Errors   uint64
	// FirstError describes the first failed request.
	FirstError string
	Elapsed    time.Duration
	Latency    Histogram
	// Messages is the number of ext_proc messages the Sims sent.
	Messages uint64
}

// Throughput is completed requests per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// MessagesPerRequest is the ext_proc round trips per HTTP request.
func (r *Result) MessagesPerRequest() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Messages) / float64(r.Requests)
}

// Run performs the load and returns what it measured. It returns early, with
// what it has, when ctx ends.
func Run(ctx context.Context, l Load) Result {
	if l.Workers < 1 || len(l.Sims) == 0 || len(l.Mixes) == 0 {
		return Result{FirstError: "loadgen: a Load needs workers, sims and mixes"}
	}
	ctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	msgs0 := sentMessages(l.Sims)

	var (
		next     atomic.Uint64
		errs     atomic.Uint64
		firstErr sync.Once
		res      Result
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(l.Duration)
	var interval time.Duration
	if l.Rate > 0 {
		interval = time.Duration(float64(time.Second) / l.Rate)
	}
	for w := range l.Workers {
		wg.Go(func() {
			sim := l.Sims[w%len(l.Sims)]
			var h Histogram
			var done uint64
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				due := time.Now()
				if interval > 0 {
					due = start.Add(time.Duration(k) * interval)
					if !due.Before(deadline) {
						break
					}
					if wait := time.Until(due); wait > 0 {
						t := time.NewTimer(wait)
						select {
						case <-t.C:
						case <-ctx.Done():
							t.Stop()
						}
						if ctx.Err() != nil {
							break
						}
					}
				}
				mix := l.Mixes[int(k%uint64(len(l.Mixes)))]
				r, err := sim.Do(ctx, mix.Request, mix.Upstream)
				if ctx.Err() != nil {
					break // cut off by the deadline: neither a success nor an error
				}
				if err == nil {
					err = l.Expect(mix).check(r)
				}
				if err != nil {
					errs.Add(1)
					firstErr.Do(func() { res.FirstError = fmt.Sprintf("%s: %v", mix.Name, err) })
					continue
				}
				h.Record(time.Since(due))
				done++
			}
			mu.Lock()
			res.Latency.Merge(&h)
			res.Requests += done
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = min(time.Since(start), l.Duration)
	res.Errors = errs.Load()
	res.Messages = sentMessages(l.Sims) - msgs0
	return res
}

func sentMessages(sims []*envoystandin.Sim) uint64 {
	var n uint64
	for _, s := range sims {
		n += s.Stats().StreamMsgsSent
	}
	return n
}
