package publisher_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// A publish that finds its block-producer subscriber's queue full sleeps
// on the futex (Spin -1) without allocating: no context.WithTimeout, no
// timer per wait (issue 14). A slow consumer keeps the queue full, so most
// publishes block. AllocsPerRun counts the whole process: the consumer's
// TryTake and Sleep and the idle in-process router allocate nothing.
// Not parallel: AllocsPerRun refuses parallel tests.
func TestPublishBlockedAllocatesNothing(t *testing.T) {
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "blocked", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 2, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "blocked", publisher.Options{Socket: srv.SocketPath(), Spin: -1, BlockTimeout: 30 * time.Second})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	var taken atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			time.Sleep(50 * time.Microsecond)
			if s, err := sub.TryTake(); err == nil {
				_ = s.Release()
				taken.Add(1)
			}
		}
	}()
	payload := []byte("blocked")
	send := func() {
		if err := pub.Send(payload); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		send() // warm up: segments mapped, queue full
	}
	allocs := testing.AllocsPerRun(300, send)
	close(stop)
	<-done
	require.Zero(t, allocs, "allocations per blocked publish")
	require.Zero(t, pub.Stats().Dropped)
	require.Greater(t, taken.Load(), int64(300), "the consumer must have freed the slots the publishes waited for")
}
