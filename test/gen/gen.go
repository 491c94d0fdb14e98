// Package gen builds CorsPolicy objects for tests and benchmarks, in the style
// of trust-manager's test/gen: a name and options, so each test says only what
// it cares about.
//
//	p := gen.CorsPolicy("orders", gen.WithNamespace("team-a"),
//		gen.WithHosts("api.example.com"), gen.WithOrigins("https://app.example.com"))
//
// It is test tooling: nothing in the product imports it.
package gen

import (
	"fmt"
	"maps"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/corsgate/corsgate/api/v1alpha1"
)

// Epoch is the creation time of a policy built with WithAge(0): a fixed date,
// so precedence by age is the same in every run.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Option changes a policy under construction.
type Option func(*v1alpha1.CorsPolicy)

// CorsPolicy returns a policy named name in namespace "default", generation 1,
// with UID "uid-<namespace>-<name>" and no spec, changed by opts in order.
func CorsPolicy(name string, opts ...Option) *v1alpha1.CorsPolicy {
	p := &v1alpha1.CorsPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CorsPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         "default",
			Name:              name,
			Generation:        1,
			CreationTimestamp: metav1.NewTime(Epoch),
		},
	}
	for _, o := range opts {
		o(p)
	}
	if p.UID == "" {
		p.UID = types.UID("uid-" + p.Namespace + "-" + p.Name)
	}
	return p
}

// WithNamespace sets the namespace.
func WithNamespace(ns string) Option { return func(p *v1alpha1.CorsPolicy) { p.Namespace = ns } }

// WithUID sets the UID (otherwise derived from namespace and name).
func WithUID(uid string) Option { return func(p *v1alpha1.CorsPolicy) { p.UID = types.UID(uid) } }

// WithGeneration sets metadata.generation.
func WithGeneration(g int64) Option { return func(p *v1alpha1.CorsPolicy) { p.Generation = g } }

// WithAge makes the policy created d after Epoch: a larger d is younger.
func WithAge(d time.Duration) Option {
	return func(p *v1alpha1.CorsPolicy) { p.CreationTimestamp = metav1.NewTime(Epoch.Add(d)) }
}

// WithLabels adds labels.
func WithLabels(kv map[string]string) Option {
	return func(p *v1alpha1.CorsPolicy) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		maps.Copy(p.Labels, kv)
	}
}

// WithHosts sets spec.hosts.
func WithHosts(h ...string) Option { return func(p *v1alpha1.CorsPolicy) { p.Spec.Hosts = h } }

// WithPathPrefixes sets spec.pathPrefixes.
func WithPathPrefixes(pp ...string) Option {
	return func(p *v1alpha1.CorsPolicy) { p.Spec.PathPrefixes = pp }
}

// WithOrigins sets spec.allowOrigins.
func WithOrigins(o ...string) Option { return func(p *v1alpha1.CorsPolicy) { p.Spec.AllowOrigins = o } }

// WithMethods sets spec.allowMethods.
func WithMethods(m ...string) Option { return func(p *v1alpha1.CorsPolicy) { p.Spec.AllowMethods = m } }

// WithHeaders sets spec.allowHeaders.
func WithHeaders(h ...string) Option { return func(p *v1alpha1.CorsPolicy) { p.Spec.AllowHeaders = h } }

// WithCredentials sets spec.allowCredentials.
func WithCredentials() Option { return func(p *v1alpha1.CorsPolicy) { p.Spec.AllowCredentials = true } }

// WithTargetRefs sets spec.targetRefs.
func WithTargetRefs(refs ...gwapiv1.LocalPolicyTargetReferenceWithSectionName) Option {
	return func(p *v1alpha1.CorsPolicy) { p.Spec.TargetRefs = refs }
}

// WithSpec replaces the whole spec.
func WithSpec(s v1alpha1.CorsPolicySpec) Option { return func(p *v1alpha1.CorsPolicy) { p.Spec = s } }

// HostsPerPolicy is how many hosts each policy of Many claims.
const HostsPerPolicy = 10

// Many returns the scale fixture: n policies in 50 namespaces, each claiming
// HostsPerPolicy hosts (api<i>-<j>.example.com exact and *.svc<i>-<j>.example.net
// wildcard in turn) under /v1 and /v2/admin, with one exact and one wildcard
// origin and credentials, created a second apart. No two policies overlap.
func Many(n int) []v1alpha1.CorsPolicy {
	objs := make([]v1alpha1.CorsPolicy, n)
	for i := range objs {
		objs[i] = *CorsPolicy(fmt.Sprintf("policy-%d", i),
			WithNamespace(fmt.Sprintf("team-%d", i%50)),
			WithUID(fmt.Sprintf("uid-%d", i)),
			WithAge(time.Duration(i)*time.Second),
			WithHosts(Hosts(i)...),
			WithPathPrefixes("/v1", "/v2/admin"),
			WithOrigins(fmt.Sprintf("https://app%d.example.com", i), "https://*.tenants.example.com"),
			WithMethods("PUT", "DELETE"),
			WithHeaders("x-foo", "content-type"),
			WithCredentials(),
		)
	}
	return objs
}

// Hosts returns the hosts of the i-th policy of Many, for fixtures built below
// the CorsPolicy level (table entries).
func Hosts(i int) []string {
	hosts := make([]string, HostsPerPolicy)
	for j := range hosts {
		if j%2 == 0 {
			hosts[j] = fmt.Sprintf("api%d-%d.example.com", i, j)
		} else {
			hosts[j] = fmt.Sprintf("*.svc%d-%d.example.net", i, j)
		}
	}
	return hosts
}

// AcceptedAt is the Accepted=True condition a Gateway API controller writes
// on what it accepted at generation: a GatewayClass's or Gateway's
// status.conditions, a route's status.parents[].conditions.
func AcceptedAt(generation int64) []metav1.Condition {
	return []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: "accepted",
		ObservedGeneration: generation, LastTransitionTime: metav1.Now()}}
}
