package observe

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"
)

// OriginsCapacity is how many origins each policy remembers per side
// (allowed, denied). The summary is a space-saving top-k (Metwally et al.,
// "Efficient Computation of Frequent and Top-k Elements in Data Streams",
// 2005): an origin seen more than 1/OriginsCapacity of a side's requests is
// always among them, and each count is over by at most its Error. A flood of
// spoofed origins churns the least-counted slots; an origin that sends more
// than 1/OriginsCapacity of the side's requests stays.
const OriginsCapacity = 16

// MaxOriginBytes is the longest origin stored; longer ones (never valid: a
// valid origin is at most 326 bytes, and real ones are far shorter) are
// stored cut, with Truncated set. Slots are fixed arrays, so recording an
// origin never allocates, whatever the traffic: memory is bounded at about
// 2 × OriginsCapacity × (MaxOriginBytes + 24) bytes, 4.9 KiB, per policy
// that has seen CORS traffic (49 MiB at 10,000 busy policies).
const MaxOriginBytes = 128

type originSlot struct {
	buf       [MaxOriginBytes]byte
	n         uint8
	truncated bool
	count     uint64
	err       uint64
}

// originSummary is one side of a policy's inventory.
type originSummary struct {
	mu    sync.Mutex
	total uint64
	used  int
	slots [OriginsCapacity]originSlot
}

func (s *originSlot) is(origin string) bool {
	n := min(len(origin), MaxOriginBytes)
	return int(s.n) == n && s.truncated == (len(origin) > MaxOriginBytes) && string(s.buf[:n]) == origin[:n]
}

func (s *originSlot) set(origin string) {
	s.n = uint8(copy(s.buf[:], origin))
	s.truncated = len(origin) > MaxOriginBytes
}

// record counts one request from origin.
func (s *originSummary) record(origin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	for i := 0; i < s.used; i++ {
		if s.slots[i].is(origin) {
			s.slots[i].count++
			return
		}
	}
	if s.used < len(s.slots) {
		sl := &s.slots[s.used]
		s.used++
		sl.set(origin)
		sl.count, sl.err = 1, 0
		return
	}
	// Replace the least counted: the newcomer inherits its count as error.
	m := 0
	for i := 1; i < len(s.slots); i++ {
		if s.slots[i].count < s.slots[m].count {
			m = i
		}
	}
	sl := &s.slots[m]
	sl.set(origin)
	sl.err = sl.count
	sl.count++
}

// OriginCount is one origin in a summary.
type OriginCount struct {
	Origin string `json:"origin"`
	// Count is how many requests came from Origin; it may be over by up to
	// Error (the count of the origin it replaced in a full summary).
	Count uint64 `json:"count"`
	Error uint64 `json:"error,omitempty"`
	// Truncated: Origin is the first MaxOriginBytes bytes of a longer value.
	Truncated bool `json:"truncated,omitempty"`
}

// Side is the allowed or denied half of a policy's inventory.
type Side struct {
	// Requests is every request counted on this side; with more distinct
	// origins than OriginsCapacity, Origins cover part of them.
	Requests uint64        `json:"requests"`
	Origins  []OriginCount `json:"origins"`
}

func (s *originSummary) snapshot() Side {
	s.mu.Lock()
	out := Side{Requests: s.total, Origins: make([]OriginCount, s.used)}
	for i := range s.used {
		sl := &s.slots[i]
		out.Origins[i] = OriginCount{Origin: string(sl.buf[:sl.n]), Count: sl.count, Error: sl.err, Truncated: sl.truncated}
	}
	s.mu.Unlock()
	slices.SortFunc(out.Origins, func(a, b OriginCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Origin, b.Origin)
	})
	return out
}

// PolicyOrigins is the inventory of one policy since its current spec was
// first served by this replica.
type PolicyOrigins struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Mode      string    `json:"mode"`
	Since     time.Time `json:"since"`
	Allowed   Side      `json:"allowed"`
	// Denied are the origins the policy denied; for a DryRun policy, those
	// Enforce would deny.
	Denied Side `json:"denied"`
}

// Origins returns every policy's inventory, sorted by namespace and name.
// A spec change starts a new inventory (the new spec decides differently);
// a table that no longer serves a policy drops it.
func (o *Observer) Origins() []PolicyOrigins {
	var out []PolicyOrigins
	o.policies.Range(func(_, v any) bool {
		ps := v.(*policyState)
		out = append(out, PolicyOrigins{
			Namespace: ps.namespace, Name: ps.name, Mode: modeLabel(ps.dryRun), Since: ps.since.UTC(),
			Allowed: ps.origins[0].snapshot(), Denied: ps.origins[1].snapshot(),
		})
		return true
	})
	// An in-flight request of an older table may have made a second state
	// for the same object: keep the newest.
	slices.SortFunc(out, func(a, b PolicyOrigins) int {
		if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return b.Since.Compare(a.Since)
	})
	return slices.CompactFunc(out, func(a, b PolicyOrigins) bool { return a.Namespace == b.Namespace && a.Name == b.Name })
}

// OriginsPath is where the metrics listener serves the inventory.
const OriginsPath = "/debug/corsgate/origins"

// OriginsReport is the JSON document served at OriginsPath.
type OriginsReport struct {
	// Capacity is OriginsCapacity: how many origins each side keeps.
	Capacity int             `json:"capacity"`
	Policies []PolicyOrigins `json:"policies"`
}

// OriginsHandler serves the inventory as JSON: every policy, or one with
// ?namespace=NS&name=NAME (both, or neither).
func (o *Observer) OriginsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
		ns, name := r.URL.Query().Get("namespace"), r.URL.Query().Get("name")
		if (ns == "") != (name == "") {
			http.Error(w, "give both namespace and name (?namespace=NS&name=NAME), or neither for every policy", http.StatusBadRequest)
			return
		}
		report := OriginsReport{Capacity: OriginsCapacity, Policies: []PolicyOrigins{}}
		for _, p := range o.Origins() {
			if ns == "" || (p.Namespace == ns && p.Name == name) {
				report.Policies = append(report.Policies, p)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(report)
	})
}

// MinStatusCount is the guaranteed count (Count - Error) an origin needs to
// be reported by TopDenied: an origin seen a couple of times, such as one
// of a flood of spoofed values passing through the least-counted slot,
// does not make a status write.
const MinStatusCount = 5

// TopDenied returns, per "namespace/name", up to n origins the policy
// denied (or would deny) most often, at least MinStatusCount times each,
// sorted by origin so that a status listing them changes only when the set
// does. Policies with none are absent.
func (o *Observer) TopDenied(n int) map[string][]string {
	out := map[string][]string{}
	for _, p := range o.Origins() {
		if len(p.Denied.Origins) == 0 {
			continue
		}
		var top []string
		for _, oc := range p.Denied.Origins {
			if len(top) == n {
				break
			}
			if !oc.Truncated && oc.Count-oc.Error >= MinStatusCount {
				top = append(top, oc.Origin)
			}
		}
		if len(top) == 0 {
			continue
		}
		slices.Sort(top)
		out[p.Namespace+"/"+p.Name] = top
	}
	return out
}
