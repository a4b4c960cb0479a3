package subscriber_test

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

func TestCoalesceOutOfRange(t *testing.T) {
	t.Parallel()
	testCoalesceOutOfRange(t, routertest.Small)
}

func testCoalesceOutOfRange(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, d := range []time.Duration{subscriber.MaxCoalesce + time.Nanosecond, time.Hour} {
		_, err := subscriber.New(ctx, "co", subscriber.Options{Socket: srv.SocketPath(), Coalesce: d})
		require.ErrorContains(t, err, "coalesce "+d.String(), "coalesce %v", d)
		require.ErrorIs(t, err, parallax.ErrInvalidArgument)
	}
	// A negative Coalesce turns the default stream pause off.
	s, err := subscriber.New(ctx, "co", subscriber.Options{Socket: srv.SocketPath(), Coalesce: -time.Nanosecond})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// A coalescing subscriber still receives a stream whole and in order,
// including from a blocked publisher it makes wait.
func TestCoalescedStream(t *testing.T) {
	t.Parallel()
	testCoalescedStream(t, routertest.Small)
}

func testCoalescedStream(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "co", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 16,
		Policy: subscriber.BlockProducer, Coalesce: subscriber.MaxCoalesce})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "co", publisher.Options{Socket: srv.SocketPath(), BlockTimeout: 10 * time.Second})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	const n = 5000
	sent := make(chan error, 1)
	go func() {
		var b [8]byte
		for i := range uint64(n) {
			binary.LittleEndian.PutUint64(b[:], i)
			if err := pub.Send(b[:]); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for i := range uint64(n) {
		s, err := sub.Take(ctx)
		require.NoError(t, err, "sample %d", i)
		require.Equal(t, i, binary.LittleEndian.Uint64(s.Bytes()), "sample %d out of order", i)
		require.NoError(t, s.Release())
	}
	require.NoError(t, <-sent)
	require.Zero(t, sub.Dropped())
}

func TestWakeStats(t *testing.T) {
	t.Parallel()
	testWakeStats(t, routertest.Small)
}

func testWakeStats(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "wake", subscriber.Options{Socket: srv.SocketPath(), Spin: -1})
	require.NoError(t, err)
	defer sub.Close()
	require.Zero(t, sub.WakeStats().Sleeps)
	// Long enough that the deadline cannot pass before the take gets to
	// its futex sleep on a loaded machine (-race, CI): a take whose
	// deadline has already passed rightly returns without sleeping.
	_, err = sub.TakeTimeout(50 * time.Millisecond)
	require.ErrorIs(t, err, parallax.ErrTimeout)
	slept := sub.WakeStats().Sleeps
	if cfg != routertest.Owned {
		// In the owned model the futex words are the connections': with
		// no publisher there is nothing to sleep on (the take waits in
		// slices), so this holds in the shared model only.
		require.NotZero(t, slept, "a take without spinning that times out sleeps on the futex")
	}

	pub, err := publisher.New(ctx, "wake", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	taken := make(chan error, 1)
	go func() {
		s, err := sub.Take(ctx)
		if err == nil {
			err = s.Release()
		}
		taken <- err
	}()
	// Publish once the take sleeps, so the publisher has to wake it.
	for sub.WakeStats().Sleeps == slept {
		require.NoError(t, ctx.Err(), "the take never slept")
		runtime.Gosched()
	}
	require.NoError(t, pub.Send([]byte("wake up")))
	require.NoError(t, <-taken)
	require.NotZero(t, sub.WakeStats().Wakes, "the publisher woke the sleeping take")
}
