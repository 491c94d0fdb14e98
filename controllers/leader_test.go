package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// These tests need no API server: the Lease is in memory, the manager a
// stand-in with a synced cache.

// lease is a Lease in memory, shared by the memLocks of several replicas.
type lease struct {
	mu  sync.Mutex
	rec *resourcelock.LeaderElectionRecord
}

// memLock is one replica's resourcelock.Interface on a lease.
type memLock struct {
	lease *lease
	id    string
}

func (l *memLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	l.lease.mu.Lock()
	defer l.lease.mu.Unlock()
	if l.lease.rec == nil {
		return nil, nil, apierrors.NewNotFound(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "status")
	}
	rec := *l.lease.rec
	raw, err := json.Marshal(rec)
	return &rec, raw, err
}

func (l *memLock) Create(_ context.Context, rec resourcelock.LeaderElectionRecord) error {
	l.lease.mu.Lock()
	defer l.lease.mu.Unlock()
	if l.lease.rec != nil {
		return apierrors.NewAlreadyExists(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "status")
	}
	l.lease.rec = &rec
	return nil
}

func (l *memLock) Update(_ context.Context, rec resourcelock.LeaderElectionRecord) error {
	l.lease.mu.Lock()
	defer l.lease.mu.Unlock()
	if l.lease.rec == nil {
		return errors.New("no lease to update")
	}
	l.lease.rec = &rec
	return nil
}

func (l *memLock) RecordEvent(string) {}
func (l *memLock) Identity() string   { return l.id }
func (l *memLock) Describe() string   { return "memory/status" }

// holder is who holds the lease now.
func (l *memLock) holder() string {
	r, _, err := l.Get(context.Background())
	if err != nil {
		return ""
	}
	return r.HolderIdentity
}

// syncedCache is a cache that is synced at once.
type syncedCache struct{ cache.Cache }

func (syncedCache) WaitForCacheSync(ctx context.Context) bool { return ctx.Err() == nil }

// fakeManager is the manager as StatusLeader and ServingOnly use it: its
// cache, its controller options, Add.
type fakeManager struct {
	manager.Manager
	mu    sync.Mutex
	added []manager.Runnable
}

func (m *fakeManager) GetCache() cache.Cache                   { return syncedCache{} }
func (m *fakeManager) GetControllerOptions() config.Controller { return config.Controller{} }
func (m *fakeManager) Add(r manager.Runnable) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.added = append(m.added, r)
	return nil
}

// electionRunnable is a runnable that says whether it needs the election.
type electionRunnable struct {
	manager.RunnableFunc
	need bool
}

func (r electionRunnable) NeedLeaderElection() bool { return r.need }

func TestServingOnlyRefusesLeaderOnlyRunnables(t *testing.T) {
	t.Parallel()
	m := &fakeManager{}
	serving := ServingOnly{Manager: m}
	noop := func(context.Context) error { return nil }
	if err := serving.Add(electionRunnable{noop, false}); err != nil {
		t.Errorf("a runnable that needs no election: %v", err)
	}
	for _, r := range []manager.Runnable{manager.RunnableFunc(noop), electionRunnable{noop, true}} {
		err := serving.Add(r)
		if err == nil || !strings.Contains(err.Error(), "StatusLeader.Setup") {
			t.Errorf("%T: %v, want a refusal that names StatusLeader.Setup", r, err)
		}
	}
	if len(m.added) != 1 {
		t.Errorf("the manager got %d runnables, want the one that needs no election", len(m.added))
	}
	if (&StatusLeader{}).NeedLeaderElection() {
		t.Error("StatusLeader needs leader election: ServingOnly would refuse it")
	}
}

// replica is one replica's StatusLeader, with a writer that records when
// it writes and fails when told to.
type replica struct {
	name    string
	writing atomic.Bool
	terms   atomic.Int32
	fail    chan error
	cancel  context.CancelFunc
	done    chan error
	stopped sync.Once
	err     error
}

// stop cancels the replica's context and returns what Start returned.
func (r *replica) stop() error {
	r.stopped.Do(func() { r.cancel(); r.err = <-r.done })
	return r.err
}

// startReplica runs a StatusLeader on lk (nil: no election). writers
// counts the replicas writing at once.
func startReplica(t *testing.T, name string, lk resourcelock.Interface, writers *atomic.Int32) *replica {
	t.Helper()
	r := &replica{name: name, fail: make(chan error, 1), done: make(chan error, 1)}
	l := &StatusLeader{Lock: lk, Manager: &fakeManager{}, Log: logr.Discard(), Setup: func(mgr manager.Manager) error {
		if o := mgr.GetControllerOptions().SkipNameValidation; o == nil || !*o {
			t.Error("a term's controllers would clash with the names of the last term's")
		}
		return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			r.terms.Add(1)
			if n := writers.Add(1); n > 1 {
				t.Errorf("%s: %d replicas writing status at once", name, n)
			}
			r.writing.Store(true)
			defer func() { r.writing.Store(false); writers.Add(-1) }()
			select {
			case <-ctx.Done():
				return nil
			case err := <-r.fail:
				return err
			}
		}))
	}}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go func() { r.done <- l.Start(ctx) }()
	t.Cleanup(func() { r.stop() })
	return r
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * (LeaseDuration + RetryPeriod)); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened", what)
		}
	}
}

// TestStatusLeaderHandsOver: one replica writes at a time; a writer that
// fails ends its term and releases the lease at once (not after
// LeaseDuration), and its replica campaigns again; a replica that stops
// releases the lease to the other.
func TestStatusLeaderHandsOver(t *testing.T) {
	t.Parallel()
	shared := &lease{}
	var writers atomic.Int32
	lockA := &memLock{lease: shared, id: "a"}
	a := startReplica(t, "a", lockA, &writers)
	eventually(t, "a writing", a.writing.Load)
	b := startReplica(t, "b", &memLock{lease: shared, id: "b"}, &writers)
	time.Sleep(200 * time.Millisecond) // b campaigns at once, then every RetryPeriod or more
	if b.writing.Load() {
		t.Fatal("b writes while a holds the lease")
	}

	failed := time.Now()
	a.fail <- errors.New("status writer failed")
	eventually(t, "a new term after a's writer failed", func() bool { return a.terms.Load()+b.terms.Load() == 2 && writers.Load() == 1 })
	if took := time.Since(failed); took > LeaseDuration {
		t.Errorf("a new term began %v after the failure: the lease was not released", took)
	}

	// Whichever replica writes now stops: the other takes over.
	leader, other := a, b
	if b.writing.Load() {
		leader, other = b, a
	}
	t.Logf("after a's writer failed, %s writes", leader.name)
	if h := lockA.holder(); h != leader.name {
		t.Errorf("lease held by %q while %s writes", h, leader.name)
	}
	stopped := time.Now()
	if err := leader.stop(); err != nil {
		t.Errorf("%s stopped with %v", leader.name, err)
	}
	eventually(t, other.name+" writing once "+leader.name+" stopped", other.writing.Load)
	if took := time.Since(stopped); took > LeaseDuration {
		t.Errorf("%s took over %v after %s stopped: the lease was not released", other.name, took, leader.name)
	}
}

// TestStatusLeaderWithoutElection: with no Lock, the replica writes at
// once, and a writer's failure is the runnable's.
func TestStatusLeaderWithoutElection(t *testing.T) {
	t.Parallel()
	var writers atomic.Int32
	r := startReplica(t, "only", nil, &writers)
	eventually(t, "writing", r.writing.Load)
	broken := errors.New("broken")
	r.fail <- broken
	if err := r.stop(); !errors.Is(err, broken) {
		t.Errorf("Start = %v, want the writer's error", err)
	}
}
