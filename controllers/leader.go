package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Lease timings: controller-runtime's defaults. The lease outlives the renew
// deadline, so a leader that could not renew has stopped writing before any
// other replica may start.
const (
	LeaseDuration = 15 * time.Second
	RenewDeadline = 10 * time.Second
	RetryPeriod   = 2 * time.Second
)

// StatusLeader runs the status writers on the elected leader only, and is
// the reason the manager itself runs without leader election. A manager that
// loses its lease stops every runnable and returns ("the binary must be
// exited immediately"), which here would take down the ext_proc server of a
// replica that serves perfectly well from its last table: a leader cut off
// from the API server for longer than the renew deadline would cut its
// in-flight streams and, restarted, stay NOT_SERVING until the API server is
// back. With StatusLeader, losing the lease stops the status writers and
// nothing else; the replica campaigns again and serves throughout.
//
// It is a manager Runnable that runs on every replica.
type StatusLeader struct {
	// Lock is the Lease to hold; nil writes status without an election.
	Lock resourcelock.Interface
	// Manager is the manager the writers read through (cache, client).
	Manager manager.Manager
	// Setup registers the leader-only controllers, as SetupWithManager does.
	// It runs once per term, against a manager that collects what it adds:
	// a controller can be started only once.
	Setup func(manager.Manager) error
	Log   logr.Logger
}

// NeedLeaderElection is false: the election is StatusLeader's own.
func (l *StatusLeader) NeedLeaderElection() bool { return false }

// Start writes status while this replica holds the lease, until ctx ends.
func (l *StatusLeader) Start(ctx context.Context) error {
	if l.Lock == nil {
		return l.write(ctx)
	}
	for ctx.Err() == nil {
		if err := l.term(ctx); err != nil {
			l.Log.Error(err, "status writing stopped; campaigning again")
		}
		select { // do not spin on a writer that fails at once
		case <-ctx.Done():
		case <-time.After(RetryPeriod):
		}
	}
	return nil
}

// term campaigns for the lease and, once it is held, writes status until the
// lease is lost or ctx ends; the lease is released when the writer stops for
// any other reason, so that another replica can take over.
func (l *StatusLeader) term(ctx context.Context) error {
	ctx, release := context.WithCancel(ctx)
	defer release()
	leading := make(chan context.Context, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            l.Lock,
		LeaseDuration:   LeaseDuration,
		RenewDeadline:   RenewDeadline,
		RetryPeriod:     RetryPeriod,
		ReleaseOnCancel: true,
		Name:            "corsgate-status",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) { leading <- ctx },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return err
	}
	ran := make(chan struct{})
	go func() { le.Run(ctx); close(ran) }()
	select {
	case <-ran: // ctx ended before the lease was acquired
		return nil
	case lctx := <-leading:
		l.Log.Info("leading: this replica writes CorsPolicy status")
		err := l.write(lctx)
		if ctx.Err() == nil && lctx.Err() != nil {
			l.Log.Info("lost the lease: another replica writes status; this one keeps serving")
		}
		release()
		<-ran
		return err
	}
}

// write runs one term's controllers until ctx ends or one of them fails.
func (l *StatusLeader) write(ctx context.Context) error {
	if !l.Manager.GetCache().WaitForCacheSync(ctx) {
		return nil // ctx ended
	}
	term := &termManager{Manager: l.Manager}
	if err := l.Setup(term); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make([]error, len(term.runnables))
	for i, r := range term.runnables {
		wg.Go(func() {
			if errs[i] = r.Start(ctx); errs[i] != nil {
				stop() // the term ends whole: the lease goes to a replica that can write
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// termManager is the manager as Setup sees it during one term: the
// controllers it builds are collected for StatusLeader to start instead of
// being added to the manager, under the same names every term.
type termManager struct {
	manager.Manager
	runnables []manager.Runnable
}

func (m *termManager) Add(r manager.Runnable) error {
	m.runnables = append(m.runnables, r)
	return nil
}

func (m *termManager) GetControllerOptions() config.Controller {
	o := m.Manager.GetControllerOptions()
	skip := true
	o.SkipNameValidation = &skip
	return o
}

// ServingOnly is the manager as the serving side sees it (every runnable
// but StatusLeader's): it has no leader election of its own, so a runnable
// that needs one (a controller built with NewControllerManagedBy, anything
// without NeedLeaderElection false) would run on every replica. Add refuses
// it, at start-up, with the place it belongs: the leader-only setup given to
// StatusLeader.
type ServingOnly struct{ manager.Manager }

func (m ServingOnly) Add(r manager.Runnable) error {
	if le, ok := r.(manager.LeaderElectionRunnable); ok && !le.NeedLeaderElection() {
		return m.Manager.Add(r)
	}
	return fmt.Errorf("%T runs on the leader only: register it in the leader-only setup passed to StatusLeader.Setup (cmd/corsgate/kube.go), not on the manager", r)
}
