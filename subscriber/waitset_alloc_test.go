package subscriber_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// A WaitSet that sleeps under a cancellable context allocates nothing on
// later sleeps: its futex waiter keeps its context registration, and the
// owned set's generations are compared in place. (Each sleep allocated a
// registration, a callback, a channel and a generation slice before.)
func TestWaitSetSleepAllocatesNothing(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses parallel tests.
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "sleepy", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 8, Spin: -1})
	require.NoError(t, err)
	defer sub.Close()
	// Declared: an undeclared publisher's first 64-byte loan asks for a
	// small class in the background, which allocates during the count.
	pub, err := publisher.New(ctx, "sleepy", publisher.Options{Socket: srv.SocketPath(), MaxPayload: 64})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	ws, err := subscriber.NewWaitSet(sub)
	require.NoError(t, err)

	// The helper publishes once the wait set has announced its sleep (the
	// subscriber's sleep count passed the one it is sent), so every Wait
	// below takes the sleeping path.
	kick := make(chan uint64)
	errs := make(chan error, 1)
	go func() {
		for before := range kick {
			for sub.WakeStats().Sleeps <= before {
				runtime.Gosched()
			}
			c, err := pub.Loan(64)
			if err == nil {
				err = pub.Publish(c)
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	defer close(kick)
	round := func() {
		kick <- sub.WakeStats().Sleeps
		ready, err := ws.Wait(ctx)
		if err != nil {
			panic(err)
		}
		s, err := ready[0].TryTake()
		if err != nil {
			panic(err)
		}
		if err := s.Release(); err != nil {
			panic(err)
		}
	}
	round() // the first sleep under ctx registers on it
	allocs := testing.AllocsPerRun(50, round)
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	require.Zero(t, allocs, "a WaitSet sleep under the same context must not allocate")
}
