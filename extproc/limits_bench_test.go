package extproc

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/tap"
)

// BenchmarkIdleDeadline is what an idle deadline costs one stream: the tap's
// context, a message's touch, and the release when the stream ends, against
// a parent context like grpc-go's (a cancelCtx, its Done channel made). The
// baseline is the same stream without a deadline.
//
//	go test -run '^$' -bench IdleDeadline -benchmem ./extproc/
func BenchmarkIdleDeadline(b *testing.B) {
	l := &streamLimiter{limits: DefaultLimits(), epoch: time.Now()}
	info := &tap.Info{FullMethodName: processMethod}
	b.Run("deadline=none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			parent, cancel := context.WithCancel(context.Background())
			<-parentDone(parent)
			cancel()
		}
	})
	b.Run("deadline=swept", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			parent, cancel := context.WithCancel(context.Background())
			ctx, _ := l.tap(parent, info)
			<-parentDone(ctx)
			c := ctx.Value(idleKey{}).(*idleCtx)
			c.touch()
			c.release()
			cancel()
		}
	})
}

// parentDone makes the context's Done channel, as grpc-go does for every
// stream, and returns a closed channel so the benchmark does not block.
func parentDone(ctx context.Context) <-chan struct{} {
	_ = ctx.Done()
	return closed
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
