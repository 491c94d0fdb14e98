package controllers

import (
	"sync"

	"github.com/corsgate/corsgate/internal/compile"
)

// Results is what the latest table build said about each object: the table
// builder writes it on every replica, the status writer (on the leader) reads
// it. Keyed by "namespace/name".
type Results struct {
	mu sync.RWMutex
	m  map[string]compile.Result
}

// Get returns the latest result for an object.
func (r *Results) Get(key string) (compile.Result, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	res, ok := r.m[key]
	return res, ok
}

// replace installs a build's results and returns the keys whose result changed.
func (r *Results) replace(results []compile.Result) []compile.Result {
	next := make(map[string]compile.Result, len(results))
	var changed []compile.Result
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, res := range results {
		next[res.Key()] = res
		if prev, ok := r.m[res.Key()]; !ok || !sameResult(prev, res) {
			changed = append(changed, res)
		}
	}
	r.m = next
	return changed
}

func sameResult(a, b compile.Result) bool {
	if a.Generation != b.Generation || a.Serving != b.Serving || (a.Err == nil) != (b.Err == nil) ||
		len(a.Warnings) != len(b.Warnings) || len(a.Conflicts) != len(b.Conflicts) {
		return false
	}
	if a.Err != nil && a.Err.Error() != b.Err.Error() {
		return false
	}
	if !sameAncestors(a, b) {
		return false
	}
	if (a.NotGranted == nil) != (b.NotGranted == nil) || a.NotGranted != nil && a.NotGranted.Error() != b.NotGranted.Error() {
		return false
	}
	for i := range a.Conflicts {
		if a.Conflicts[i] != b.Conflicts[i] {
			return false
		}
	}
	return true
}
