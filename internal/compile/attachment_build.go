package compile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/table"
)

// How a build turns a targetRefs policy into table entries: its compiled
// entry (no hosts, no prefixes) is replaced by one entry per host its
// attachments cover, ranked by attachment level; a (host, prefix) two of its
// own attachments cover is claimed once, by the higher rank, so a policy
// never conflicts with itself.

// attachedEntry says which result and which of its ancestors an entry of a
// build came from.
type attachedEntry struct{ owner, ancestor int }

// attach replaces the last entry of entries, the compiled entry of the
// targetRefs policy obj (results index owner), by the entries its targets
// cover, and fills r.Ancestors.
func (b *Builder) attach(obj *v1alpha1.CorsPolicy, r *Result, owner int, targets []gwapiv1.LocalPolicyTargetReferenceWithSectionName,
	grant func(namespace, key string, c Claim, dst []Claim) []Claim, entries []table.Entry, entryOwner []int, att *map[int]attachedEntry) ([]table.Entry, []int) {
	if *att == nil {
		*att = map[int]attachedEntry{} // only builds with targetRefs policies pay for it
	}
	base := entries[len(entries)-1]
	entries, entryOwner = entries[:len(entries)-1], entryOwner[:len(entryOwner)-1]

	type ranked struct {
		part     Part
		ancestor int
	}
	var parts []ranked
	anc := newAncestors()
	for _, ref := range targets {
		var atts []Attachment
		if b.Resolve == nil {
			atts = []Attachment{{
				Ancestor: targetAsAncestor(obj.Namespace, string(ref.Kind), string(ref.Name)),
				Reason:   string(gwapiv1.PolicyReasonInvalid),
				Message:  "targetRefs are resolved from Gateway API objects, which only the Kubernetes mode reads: write hosts and pathPrefixes in a policy file",
			}}
		} else {
			atts = b.Resolve(obj.Namespace, ref)
		}
		for _, a := range atts {
			i := anc.add(a)
			for _, p := range a.Parts {
				parts = append(parts, ranked{p, i})
			}
		}
	}
	slices.SortStableFunc(parts, func(x, y ranked) int { return cmp.Compare(y.part.Rank, x.part.Rank) })
	// Host grants bind attachments as they bind hosts policies: each claim
	// is narrowed to what grants to the namespace cover (Ownership.Grant).
	// A resolve for status only (grant nil) claims nothing in the grants.
	var cut []Claim
	anc.cut, anc.granted = make([][]Claim, len(anc.refs)), make([]int, len(anc.refs))
	claimed := map[string]bool{}
	var key string // for grant: once per policy, not per claim
	if grant != nil {
		key = obj.Key()
	}
	var claims []Claim // reused: the granted parts of one claim
	for _, p := range parts {
		hosts := p.part.Hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		prefixes := p.part.PathPrefixes
		if len(prefixes) == 0 {
			prefixes = []string{"/"}
		}
		var order []string // hosts, in the order they are first claimed
		mine := map[string][]string{}
		for _, h := range hosts {
			for _, pre := range prefixes {
				whole := Claim{Host: h, Prefix: pre}
				claims = append(claims[:0], whole)
				if grant != nil {
					claims = grant(obj.Namespace, key, whole, claims[:0])
					if len(claims) != 1 || claims[0] != whole {
						cut = appendClaim(cut, 0, whole)
						anc.cut[p.ancestor] = appendClaim(anc.cut[p.ancestor], 0, whole)
					}
				}
				anc.granted[p.ancestor] += len(claims)
				for _, c := range claims {
					k := c.Host + " " + table.PrefixKey(c.Prefix)
					if claimed[k] {
						continue
					}
					claimed[k] = true
					if _, ok := mine[c.Host]; !ok {
						order = append(order, c.Host)
					}
					mine[c.Host] = append(mine[c.Host], c.Prefix)
				}
			}
		}
		for _, h := range order {
			e := base
			e.Hosts, e.PathPrefixes, e.Rank, e.Since = hostList(h), mine[h], p.part.Rank, p.part.Since
			(*att)[len(entries)] = attachedEntry{owner, p.ancestor}
			anc.claims[p.ancestor] += len(mine[h])
			entries, entryOwner = append(entries, e), append(entryOwner, owner)
		}
	}
	if len(cut) > 0 {
		err := &NotGrantedError{Namespace: obj.Namespace, Uncovered: cut, Attached: true}
		if len(claimed) == 0 {
			r.NotGranted = err
		} else {
			err.Partial = true
			r.PartlyGranted = err
		}
	}
	r.Ancestors = anc.results(r, obj.Namespace)
	r.attachedClaims = anc.claims
	if len(claimed) == 0 {
		r.Serving = NotServed
	}
	return entries, entryOwner
}

// ancestors merges attachments by ancestor Gateway.
type ancestors struct {
	index              map[string]int
	refs               []gwapiv1.ParentReference
	attached           []bool
	notes, why, reason [][]string
	claims             []int
	// cut lists, per ancestor, the claims grants do not cover whole;
	// granted counts the claims (whole or narrowed) they do.
	cut     [][]Claim
	granted []int
}

func newAncestors() *ancestors { return &ancestors{index: map[string]int{}} }

func (a *ancestors) add(at Attachment) int {
	k := ancestorKey(at.Ancestor)
	i, ok := a.index[k]
	if !ok {
		i = len(a.refs)
		a.index[k] = i
		a.refs = append(a.refs, at.Ancestor)
		a.attached = append(a.attached, false)
		a.notes, a.why, a.reason = append(a.notes, nil), append(a.why, nil), append(a.reason, nil)
		a.claims = append(a.claims, 0)
	}
	switch {
	case at.Reason == "" && len(at.Parts) > 0:
		a.attached[i] = true
	case at.Reason == "":
		a.why[i] = appendNew(a.why[i], "The target covers no hostname and path the edge can serve through this Gateway (see below).")
		a.reason[i] = appendNew(a.reason[i], string(gwapiv1.PolicyReasonTargetNotFound))
	default:
		a.why[i] = appendNew(a.why[i], at.Message)
		a.reason[i] = appendNew(a.reason[i], at.Reason)
	}
	for _, s := range at.Skipped {
		a.notes[i] = appendNew(a.notes[i], s)
	}
	return i
}

func (a *ancestors) results(r *Result, ns string) []AncestorResult {
	out := make([]AncestorResult, len(a.refs))
	for i, ref := range a.refs {
		res := AncestorResult{Ref: ref}
		cut := a.cut[i]
		switch {
		case r.Err != nil && r.Serving == NotServed:
			res.Reason = string(gwapiv1.PolicyReasonInvalid)
			res.Message = "The spec is invalid: fix the errors in the Accepted condition."
		case a.attached[i] && len(cut) > 0 && a.granted[i] == 0:
			res.Reason = v1alpha1.ReasonHostNotGranted
			res.Message = (&NotGrantedError{Namespace: ns, Uncovered: cut, Attached: true}).Error()
		case a.attached[i] && r.Err != nil:
			res.Reason = string(gwapiv1.PolicyReasonAccepted)
			res.Message = "The current spec is invalid (see the Accepted condition); the edge keeps serving the last valid spec through this Gateway."
		case a.attached[i]:
			res.Reason = string(gwapiv1.PolicyReasonAccepted)
			res.Message = "The edge serves this policy for the routes it targets through this Gateway."
		default:
			res.Reason = a.reason[i][0]
			res.Message = strings.Join(a.why[i], " ")
		}
		if res.Reason == string(gwapiv1.PolicyReasonAccepted) && len(cut) > 0 {
			res.Message += " " + (&NotGrantedError{Namespace: ns, Uncovered: cut, Attached: true, Partial: true}).Error()
		}
		if a.attached[i] && len(a.why[i]) > 0 {
			res.Message += " Not attached through it: " + strings.Join(a.why[i], " ")
		}
		if len(a.notes[i]) > 0 {
			res.Message += " Not served: " + strings.Join(a.notes[i], "; ") + "."
		}
		out[i] = res
	}
	return out
}

func ancestorKey(r gwapiv1.ParentReference) string {
	s := fmt.Sprintf("%v/%v/%v/%s", deref(r.Group), deref(r.Kind), deref(r.Namespace), r.Name)
	if r.SectionName != nil {
		s += "#" + string(*r.SectionName)
	}
	return s
}

func deref[T any](p *T) any {
	if p == nil {
		return ""
	}
	return *p
}

// attributeConflicts marks Conflicted every ancestor of a targetRefs policy
// through which it lost every claim it made.
func attributeConflicts(entries []table.Entry, conflicts []table.Conflict, att map[int]attachedEntry, results []Result) {
	if len(att) == 0 || len(conflicts) == 0 {
		return
	}
	index := make(map[*table.Entry]int, len(att))
	for i := range att {
		index[&entries[i]] = i
	}
	// Keyed by (owner, ancestor).
	lost := map[attachedEntry]int{}
	winners := map[attachedEntry][]string{}
	for _, c := range conflicts {
		i, ok := index[c.Loser]
		if !ok {
			continue
		}
		k := att[i]
		lost[k]++
		winners[k] = appendNew(winners[k], c.Winner.Key())
	}
	for k, n := range lost {
		r := &results[k.owner]
		if k.ancestor >= len(r.Ancestors) || n < r.attachedClaims[k.ancestor] {
			continue
		}
		anc := &r.Ancestors[k.ancestor]
		anc.Reason = string(gwapiv1.PolicyReasonConflicted)
		anc.Message = fmt.Sprintf("Every host and path this policy covers through this Gateway is served by %s instead (a policy of this namespace attached closer to the route, or an older claim): see the Ready condition.", strings.Join(winners[k], ", "))
	}
}

// attachServing expands the entry obj serves (the last of entries) when the
// spec serving it has targetRefs, and fills r.Ancestors; for a targetRefs
// policy that serves nothing (never valid, or refused), it still resolves
// the targets, so that status.ancestors says what they are.
func (b *Builder) attachServing(obj *v1alpha1.CorsPolicy, r *Result, owner int, c compiled,
	entries []table.Entry, entryOwner []int, att *map[int]attachedEntry) ([]table.Entry, []int) {
	targets := c.targets
	if r.Serving == ServedLastValid {
		targets = b.lastValid[obj.Key()].targets
	}
	if r.Serving == NotServed {
		if len(c.targets) > 0 && r.NotGranted == nil {
			// Resolve into a scratch entry that is dropped again.
			scratch := []table.Entry{{}}
			var discard map[int]attachedEntry
			b.attach(obj, r, owner, c.targets, nil, scratch, []int{owner}, &discard)
			r.Serving = NotServed
		}
		return entries, entryOwner
	}
	if len(targets) == 0 {
		return entries, entryOwner
	}
	return b.attach(obj, r, owner, targets, b.Grant, entries, entryOwner, att)
}

func copyTargets(refs []gwapiv1.LocalPolicyTargetReferenceWithSectionName) []gwapiv1.LocalPolicyTargetReferenceWithSectionName {
	if len(refs) == 0 {
		return nil
	}
	out := make([]gwapiv1.LocalPolicyTargetReferenceWithSectionName, len(refs))
	for i := range refs {
		refs[i].DeepCopyInto(&out[i])
	}
	return out
}

// servesTargets reports whether the spec serving obj (the current one, or
// the last valid one) has targetRefs. Host ownership is checked on the
// served spec: an invalid edit that adds targetRefs must not let a last
// valid hosts spec bypass it.
func (b *Builder) servesTargets(obj *v1alpha1.CorsPolicy, s Serving, c compiled) bool {
	if s == ServedLastValid {
		return len(b.lastValid[obj.Key()].targets) > 0
	}
	return len(c.targets) > 0
}
