package main_test

// Kubernetes-mode faults against a real kube-apiserver and etcd (envtest),
// the built binary, and the Envoy stand-in. Each test counts what Envoy was
// answered while the fault lasted: no exchange may get a wrong answer.
//
// They do not run in parallel with each other: each starts its own control
// plane, and leader election and re-list timings are measured against the
// wall clock on a small shared machine.

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/test/envoystandin"
)

// TestKubeAPIServerUnreachableAtStart: corsgate starts while its API server
// is down. It must not exit (no crash loop), must say NOT_SERVING on gRPC
// health and fail /readyz for as long as it has no table, and must serve
// the cluster's policies once the API server is back.
func TestKubeAPIServerUnreachableAtStart(t *testing.T) {
	env := startControlPlane(t, nil)
	admin := adminClient(t, env)
	if err := admin.Create(context.Background(), policy("api", "kube.example.com", "https://one.example")); err != nil {
		t.Fatal(err)
	}
	kc := kubeconfig(t, env, "")
	stopAPIServer(t, env)

	s := startKubeCorsgate(t, kc)
	conn := plainConn(t, s.addr)
	// Down for longer than client-go's first retries and controller-runtime's
	// start-up: whatever gives up early gives up here.
	const down = 8 * time.Second
	var checks, notServing, notReady int
	for end := time.Now().Add(down); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if s.exited() {
			t.Fatalf("corsgate exited while the API server was unreachable (%v); it should wait for it", s.err)
		}
		checks++
		st, err := s.health(conn)
		if err == nil && st == healthpb.HealthCheckResponse_SERVING {
			t.Fatal("gRPC health SERVING without a policy table")
		}
		if err == nil {
			notServing++
		}
		// controller-runtime's /readyz says 500 for a failing check; the
		// kubelet counts any status from 400 up as not ready.
		switch code := s.readyz(); {
		case code >= 200 && code < 400:
			t.Fatalf("/readyz %d without a policy table", code)
		case code >= 400:
			notReady++
		}
	}
	if notServing == 0 || notReady == 0 {
		t.Fatalf("in %d checks over %s, gRPC health answered NOT_SERVING %d times and /readyz failed %d times: both should answer while waiting", checks, down, notServing, notReady)
	}
	t.Logf("API server down %s: %d checks, NOT_SERVING %d, /readyz failing %d, no exit", down, checks, notServing, notReady)

	restarted := time.Now()
	if err := env.ControlPlane.APIServer.Start(); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 60*time.Second, "SERVING after the API server came back", func() bool {
		st, err := s.health(conn)
		return err == nil && st == healthpb.HealthCheckResponse_SERVING
	})
	t.Logf("API server up %s after its start; corsgate SERVING %s later (%s after the start began)", time.Since(restarted)-took, took, time.Since(restarted))
	if code := s.readyz(); code != 200 {
		t.Errorf("/readyz %d once serving, want 200", code)
	}
	sim := envoy(t, s.addr)
	if got := preflightStatus(t, sim, "kube.example.com", "https://one.example", "PUT"); got != 204 {
		t.Errorf("preflight once serving: %d, want 204 from the policy listed after the API server came back", got)
	}
	if s.exited() {
		t.Fatalf("corsgate exited: %v", s.err)
	}
}

// outage is the state before and after the changes a fault hides from
// corsgate: "api" moves from origin one to origin two, "gone" is deleted,
// "added" is created.
var (
	one, two   = "https://one.example", "https://two.example"
	outageAsks = []ask{{"kube.example.com", one}, {"kube.example.com", two}, {"gone.example.com", one}, {"added.example.com", one}}
	outageFrom = []answer{allowed(one), refused, allowed(one), noPolicy}
	outageTo   = []answer{refused, allowed(two), noPolicy, allowed(one)}
)

// createOutageStart creates the policies the outage starts from.
func createOutageStart(t *testing.T, c client.Client) {
	t.Helper()
	for _, p := range []client.Object{policy("api", "kube.example.com", one), policy("gone", "gone.example.com", one)} {
		if err := c.Create(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
}

// changeDuringOutage makes the outage's changes through c.
func changeDuringOutage(t *testing.T, c client.Client) {
	t.Helper()
	setOrigin(t, c, "api", two)
	if err := c.Delete(context.Background(), policy("gone", "", "")); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(context.Background(), policy("added", "added.example.com", one)); err != nil {
		t.Fatal(err)
	}
}

// answersAre reports whether a fresh round of the asks through sim gets want.
func answersAre(sim *envoystandin.Sim, asks []ask, want []answer) bool {
	for i, a := range asks {
		res, err := sim.Do(context.Background(), envoystandin.Request{Method: "OPTIONS", Authority: a.host, Path: "/",
			Headers: envoystandin.NewHeaders("origin", a.origin, "access-control-request-method", "PUT")}, upstream)
		if err != nil || (answer{res.Status, res.Headers.Get("access-control-allow-origin")}) != want[i] {
			return false
		}
	}
	return true
}

// TestKubeAPIServerLostMidRun: corsgate's API server goes away while it
// serves; meanwhile the policies change through a second API server on the
// same etcd (with corsgate's own API server down nobody could write to it,
// and a change made after it is back would be an ordinary watch event).
// While it is gone, every exchange gets the last table's answer and health
// stays SERVING; once it is back, corsgate catches up on all three changes,
// and the leader writes the new object's status. Leader election is on, as
// the chart deploys it: an outage longer than the lease's renew deadline
// (10 s) must not stop the replica.
func TestKubeAPIServerLostMidRun(t *testing.T) {
	env := startControlPlane(t, nil)
	admin := adminClient(t, env)
	createOutageStart(t, admin)
	other := secondAPIServer(t, env)
	s := startKubeCorsgate(t, kubeconfig(t, env, ""), "--leader-elect", "--leader-election-namespace", "default")
	conn := plainConn(t, s.addr)
	sim := envoy(t, s.addr)
	waitFor(t, 60*time.Second, "the first table", func() bool { return answersAre(sim, outageAsks, outageFrom) })

	l := startLoad(sim, 4, outageAsks...)
	time.Sleep(500 * time.Millisecond)
	lost := time.Now()
	stopAPIServer(t, env)
	changeDuringOutage(t, other)
	// Longer than the renew deadline: a leader that cannot renew loses the
	// lease, and that must cost the status writer only, not the serving.
	for end := lost.Add(12 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if s.exited() {
			t.Fatalf("corsgate exited while its API server was down (%v)", s.err)
		}
		if st, err := s.health(conn); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("gRPC health %v (%v) while serving the last table, want SERVING", st, err)
		}
		if code := s.readyz(); code != 200 {
			t.Fatalf("/readyz %d while serving the last table, want 200", code)
		}
	}
	back := time.Now()
	if err := env.ControlPlane.APIServer.Start(); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 60*time.Second, "catching up on the changes made during the outage", func() bool { return answersAre(sim, outageAsks, outageTo) })
	time.Sleep(300 * time.Millisecond)
	ex := l.finish()
	nBefore, nAfter, nFrozen := checkTransition(t, ex, outageAsks, outageFrom, outageTo, lost, back)
	if nFrozen < 20 {
		t.Errorf("only %d exchanges during the outage: too few to show anything", nFrozen)
	}
	t.Logf("outage %s: %d exchanges, all the last table's answer; %d exchanges in all (%d before, %d after); caught up %s after the API server's start began",
		back.Sub(lost).Round(time.Millisecond), nFrozen, len(ex), nBefore, nAfter, took.Round(time.Millisecond))
	waitFor(t, 60*time.Second, "status of the policy created during the outage", func() bool {
		var p v1alpha1.CorsPolicy
		return admin.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "added"}, &p) == nil &&
			meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionAccepted)
	})
	if s.exited() {
		t.Fatalf("corsgate exited: %v", s.err)
	}
}

// TestKubeWatchExpiredRelists: corsgate's watch breaks (a partition between
// it and a running API server), the policies change, and etcd is compacted
// past the last revision corsgate saw. When the partition heals, a watch
// resumed from that revision fails with 410 Gone ("too old resource
// version"), so corsgate must list again: the deletion of "gone" is then
// visible only in a fresh list, its event having been compacted away.
// (client-go may also relist straight away after a broken stream; either
// way the test shows that the list happened and was applied.)
//
// The API server runs with --watch-cache=false so that watches are served
// by etcd at the client's revision and the compaction decides. With the
// watch cache on (the default), a watch is answered 410 once its revision
// falls out of the cache's window instead; --watch-cache-sizes cannot shrink
// that window for a CRD (it applies to built-in resources only), and
// filling it would take thousands of writes. Both lead to the same re-list.
func TestKubeWatchExpiredRelists(t *testing.T) {
	env := startControlPlane(t, map[string]string{"watch-cache": "false"})
	admin := adminClient(t, env)
	createOutageStart(t, admin)
	proxy := startProxy(t, apiServerAddr(t, env.Config))
	s := startKubeCorsgate(t, kubeconfig(t, env, proxy.addr()))
	sim := envoy(t, s.addr)
	waitFor(t, 60*time.Second, "the first table", func() bool { return answersAre(sim, outageAsks, outageFrom) })

	l := startLoad(sim, 4, outageAsks...)
	time.Sleep(500 * time.Millisecond)
	cut := time.Now()
	proxy.setCut(true)
	changeDuringOutage(t, admin)
	rev := etcdCompact(t, env.ControlPlane.Etcd.URL)
	time.Sleep(3 * time.Second)
	healed := time.Now()
	proxy.setCut(false)
	took := waitFor(t, 60*time.Second, "re-listing after the watch expired", func() bool { return answersAre(sim, outageAsks, outageTo) })
	time.Sleep(300 * time.Millisecond)
	ex := l.finish()
	nBefore, nAfter, nFrozen := checkTransition(t, ex, outageAsks, outageFrom, outageTo, cut, healed)
	if nFrozen < 20 {
		t.Errorf("only %d exchanges during the partition: too few to show anything", nFrozen)
	}
	t.Logf("partition %s, etcd compacted at revision %d: %d exchanges during it, all the last table's answer; %d in all (%d before, %d after); re-listed %s after healing",
		healed.Sub(cut).Round(time.Millisecond), rev, nFrozen, len(ex), nBefore, nAfter, took.Round(time.Millisecond))
	if s.exited() {
		t.Fatalf("corsgate exited: %v", s.err)
	}
}

// TestKubeLeaderLost: two replicas with leader election, each reaching the
// API server through its own proxy. The leader is partitioned from the API
// server and a policy changes: the other replica serves the change at once
// and, once the lease has expired, takes over status writing (the new
// generation's status appears although the old leader cannot write); the
// partitioned replica keeps serving its last table the whole time, and
// catches up when the partition heals. No exchange on either replica gets
// a wrong answer.
func TestKubeLeaderLost(t *testing.T) {
	env := startControlPlane(t, nil)
	admin := adminClient(t, env)
	if err := admin.Create(context.Background(), policy("api", "kube.example.com", one)); err != nil {
		t.Fatal(err)
	}
	type replica struct {
		s     *kubeCorsgate
		proxy *tcpProxy
		sim   *envoystandin.Sim
		conn  *grpc.ClientConn
	}
	var rs [2]*replica
	for i := range rs {
		p := startProxy(t, apiServerAddr(t, env.Config))
		s := startKubeCorsgate(t, kubeconfig(t, env, p.addr()), "--leader-elect", "--leader-election-namespace", "default")
		rs[i] = &replica{s: s, proxy: p, sim: envoy(t, s.addr), conn: plainConn(t, s.addr)}
	}
	asks := []ask{{"kube.example.com", one}, {"kube.example.com", two}}
	before, after := []answer{allowed(one), refused}, []answer{refused, allowed(two)}
	for _, r := range rs {
		waitFor(t, 60*time.Second, "the first table", func() bool { return answersAre(r.sim, asks, before) })
	}
	const acquired = "uccessfully acquired lease" // client-go logs "Successfully acquired lease"
	var leader, follower *replica
	waitFor(t, 60*time.Second, "a leader", func() bool {
		for i, r := range rs {
			if strings.Contains(r.s.out.String(), acquired) {
				leader, follower = r, rs[1-i]
				return true
			}
		}
		return false
	})
	statusAt := func(gen int64) func() bool {
		return func() bool {
			var p v1alpha1.CorsPolicy
			return admin.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "api"}, &p) == nil &&
				p.Status.ObservedGeneration == gen && meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionAccepted)
		}
	}
	waitFor(t, 60*time.Second, "status written by the first leader", statusAt(1))

	loads := []*load{startLoad(leader.sim, 2, asks...), startLoad(follower.sim, 2, asks...)}
	time.Sleep(500 * time.Millisecond)
	cut := time.Now()
	leader.proxy.setCut(true)
	setOrigin(t, admin, "api", two)
	waitFor(t, 30*time.Second, "the follower serving the change", func() bool { return answersAre(follower.sim, asks, after) })
	// The lease (15 s) must expire before the follower may take over; the
	// partitioned leader gives up writing after its renew deadline (10 s).
	took := waitFor(t, 60*time.Second, "status of generation 2, which only the follower can write", statusAt(2))
	if strings.Contains(follower.s.out.String(), acquired) == false {
		t.Errorf("the follower wrote status without acquiring the lease:\n%s", follower.s.out)
	}
	for _, r := range rs {
		if st, err := r.s.health(r.conn); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("gRPC health %v (%v) after the leader was lost, want SERVING on both replicas", st, err)
		}
	}
	if leader.s.exited() {
		t.Fatalf("the partitioned leader exited (%v): losing the lease must stop its status writing, not its serving", leader.s.err)
	}
	// The old leader's writers stop once their in-flight API calls, cut off
	// by the partition, time out: the log line may come after the follower
	// has taken over.
	waitFor(t, 60*time.Second, "the partitioned leader saying it lost the lease", func() bool {
		return strings.Contains(leader.s.out.String(), "lost the lease")
	})
	healed := time.Now()
	leader.proxy.setCut(false)
	caught := waitFor(t, 60*time.Second, "the old leader catching up", func() bool { return answersAre(leader.sim, asks, after) })
	time.Sleep(300 * time.Millisecond)
	for i, r := range []*replica{leader, follower} {
		name := [2]string{"partitioned leader", "follower"}[i]
		frozenTo := healed
		if r == follower {
			frozenTo = cut // it sees the change at once
		}
		ex := loads[i].finish()
		nBefore, nAfter, nFrozen := checkTransition(t, ex, asks, before, after, cut, frozenTo)
		t.Logf("%s: %d exchanges (%d the old answer, %d the new; %d during the partition)", name, len(ex), nBefore, nAfter, nFrozen)
		if r.s.exited() {
			t.Errorf("%s exited: %v", name, r.s.err)
		}
	}
	t.Logf("status moved to the follower %s after the partition; the old leader caught up %s after healing", took.Round(time.Millisecond), caught.Round(time.Millisecond))
}

// TestKubeSIGTERMUnderLoad: SIGTERM while exchanges are in flight (each
// held open in the upstream, so its ext_proc stream is mid-exchange, waiting
// for response_headers) and preflights keep coming. Every exchange started
// before the signal completes with the right CORS answer; exchanges started
// after it are answered correctly or refused by the stand-in's
// status_on_error (fail closed, as Envoy with failure_mode_allow false),
// never passed through without CORS; the process exits 0 within
// --grpc-shutdown-timeout.
func TestKubeSIGTERMUnderLoad(t *testing.T) {
	env := startControlPlane(t, nil)
	admin := adminClient(t, env)
	if err := admin.Create(context.Background(), policy("api", "kube.example.com", one)); err != nil {
		t.Fatal(err)
	}
	const grace = 10 * time.Second
	s := startKubeCorsgate(t, kubeconfig(t, env, ""), "--leader-elect", "--leader-election-namespace", "default",
		"--grpc-shutdown-timeout", grace.String())
	sim := envoy(t, s.addr)
	asks := []ask{{"kube.example.com", one}, {"kube.example.com", two}}
	want := []answer{allowed(one), refused}
	waitFor(t, 60*time.Second, "the first table", func() bool { return answersAre(sim, asks, want) })
	waitFor(t, 60*time.Second, "the leader", func() bool { return strings.Contains(s.out.String(), "uccessfully acquired lease") })

	const inFlight = 16
	entered, release := make(chan struct{}, inFlight), make(chan struct{})
	held := envoystandin.Upstream{Handler: func(ctx context.Context, r *envoystandin.UpstreamRequest) (*envoystandin.UpstreamResponse, error) {
		entered <- struct{}{}
		<-release
		return &envoystandin.UpstreamResponse{Status: 200, Headers: envoystandin.NewHeaders("content-type", "application/json",
			"access-control-allow-origin", "*"), Body: []byte(`{}`)}, nil
	}}
	type result struct {
		res *envoystandin.Response
		err error
	}
	results := make(chan result, inFlight)
	for range inFlight {
		go func() {
			res, err := sim.Do(context.Background(), envoystandin.Request{Method: "GET", Authority: "kube.example.com", Path: "/orders",
				Headers: envoystandin.NewHeaders("origin", one)}, held)
			results <- result{res, err}
		}()
	}
	for range inFlight {
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			t.Fatal("the held exchanges never reached the upstream")
		}
	}
	l := startLoad(sim, 4, asks...)
	time.Sleep(500 * time.Millisecond)
	term := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(time.Second) // shutdown is under way while the streams wait
	close(release)
	for range inFlight {
		r := <-results
		switch {
		case r.err != nil:
			t.Errorf("held exchange: %v", r.err)
		case r.res.Status != 200 || !r.res.UpstreamReached || r.res.Headers.Get("access-control-allow-origin") != one ||
			!strings.Contains(strings.ToLower(strings.Join(r.res.Headers.Values("vary"), ",")), "origin"):
			t.Errorf("held exchange: %d, upstream %v, headers %s; want 200 from the upstream with corsgate's Access-Control-Allow-Origin %s and Vary: Origin (details %q)",
				r.res.Status, r.res.UpstreamReached, r.res.Headers, one, r.res.Details)
		}
	}
	select {
	case <-s.done:
	case <-time.After(grace + 5*time.Second):
		t.Fatalf("still running %s after SIGTERM", time.Since(term))
	}
	exited := time.Since(term)
	ex := l.finish()
	var beforeTerm, afterOK, afterRefused, wrong int
	for _, x := range ex {
		ok := x.err == nil && x.got == want[x.ask]
		switch {
		case x.start.Before(term) && ok:
			beforeTerm++
		case !x.start.Before(term) && ok:
			afterOK++
		case !x.start.Before(term) && x.err == nil && x.got == (answer{500, ""}):
			afterRefused++
		default:
			wrong++
			if wrong <= 5 {
				t.Errorf("%s from %s, started %s after SIGTERM: %s (%v), want %s", asks[x.ask].host, asks[x.ask].origin, x.start.Sub(term), x.got, x.err, want[x.ask])
			}
		}
	}
	if s.err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0", s.err)
	}
	if beforeTerm < 20 {
		t.Errorf("only %d exchanges before SIGTERM: too few to call it load", beforeTerm)
	}
	t.Logf("%d held exchanges completed; %d preflights before SIGTERM all right; after it %d answered right, %d refused (500, fail closed), %d wrong; exit 0 %s after SIGTERM",
		inFlight, beforeTerm, afterOK, afterRefused, wrong, exited.Round(time.Millisecond))
}
