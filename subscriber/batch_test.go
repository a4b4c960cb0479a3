package subscriber_test

import (
	"context"
	"encoding/binary"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// loanBatch loans n 8-byte chunks numbered from first.
func loanBatch(t *testing.T, pub *publisher.Publisher, first, n int) []publisher.Chunk {
	t.Helper()
	cs := make([]publisher.Chunk, n)
	for i := range cs {
		c, err := pub.Loan(8)
		require.NoError(t, err)
		binary.LittleEndian.PutUint64(c.Bytes(), uint64(first+i))
		cs[i] = c
	}
	return cs
}

// A batch reaches a sleeping subscriber whole, in order, with consecutive
// sequence numbers and one timestamp, at the cost of one wake-up.
func TestPublishBatchOneWake(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "batch", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 64, Spin: -1})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "batch", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, sub.WaitForPublishers(ctx, 1))

	const n = 16
	got := make(chan []subscriber.Header, 1)
	errc := make(chan error, 1)
	slept := sub.WakeStats().Sleeps
	go func() {
		var hs []subscriber.Header
		for i := range n {
			s, err := sub.Take(ctx)
			if err != nil {
				errc <- err
				return
			}
			if v := binary.LittleEndian.Uint64(s.Bytes()); v != uint64(i) {
				t.Errorf("sample %d carries %d", i, v)
			}
			hs = append(hs, s.Header())
			if err := s.Release(); err != nil {
				errc <- err
				return
			}
		}
		got <- hs
	}()
	// Publish once the take sleeps, so the batch has to wake it.
	for sub.WakeStats().Sleeps == slept {
		require.NoError(t, ctx.Err(), "the take never slept")
		runtime.Gosched()
	}
	wakes := sub.WakeStats().Wakes
	published, err := pub.PublishBatch(loanBatch(t, pub, 0, n))
	require.NoError(t, err)
	require.Equal(t, n, published)
	var hs []subscriber.Header
	select {
	case hs = <-got:
	case err := <-errc:
		t.Fatal(err)
	}
	require.Equal(t, wakes+1, sub.WakeStats().Wakes, "one wake-up for the batch")
	for i, h := range hs {
		require.Equal(t, uint64(i+1), h.Seq)
		require.Equal(t, hs[0].Timestamp, h.Timestamp)
		require.Equal(t, pub.ID(), h.PublisherID)
	}
	require.NotZero(t, hs[0].Timestamp)
	require.Equal(t, uint64(n), pub.Published())
}

// Batches larger than a block-producer subscriber's queue, published flat
// out, all arrive in order: the publisher wakes the subscriber before it
// waits for room (no deadlock on deferred wakes), with and without
// DrainWakes (the publisher then sleeps until half the queue is free; no
// wake-up is lost).
func TestPublishBatchBlockProducer(t *testing.T) {
	t.Parallel()
	for _, drain := range []bool{false, true} {
		t.Run(map[bool]string{false: "wake per take", true: "DrainWakes"}[drain], func(t *testing.T) {
			t.Parallel()
			srv := routertest.Start(t, "")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			sub, err := subscriber.New(ctx, "blockbatch", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 4,
				Policy: subscriber.BlockProducer, DrainWakes: drain})
			require.NoError(t, err)
			defer sub.Close()
			pub, err := publisher.New(ctx, "blockbatch", publisher.Options{Socket: srv.SocketPath(), BlockTimeout: 30 * time.Second})
			require.NoError(t, err)
			defer pub.Close()
			require.NoError(t, pub.WaitForSubscribers(ctx, 1))

			const batches, size = 100, 16
			sent := make(chan error, 1)
			go func() {
				for b := range batches {
					cs := make([]publisher.Chunk, size)
					for i := range cs {
						c, err := pub.Loan(8)
						if err != nil {
							sent <- err
							return
						}
						binary.LittleEndian.PutUint64(c.Bytes(), uint64(b*size+i))
						cs[i] = c
					}
					if k, err := pub.PublishBatch(cs); err != nil || k != size {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			for i := range batches * size {
				s, err := sub.Take(ctx)
				require.NoError(t, err, "take %d", i)
				require.Equal(t, uint64(i), binary.LittleEndian.Uint64(s.Bytes()))
				require.NoError(t, s.Release())
			}
			require.NoError(t, <-sent)
			require.Zero(t, pub.Dropped())
		})
	}
}

// A chunk given twice in one batch is published once; the second is
// reported as not held. After Close a batch is given back, not published.
func TestPublishBatchErrors(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "batcherr", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 16})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "batcherr", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	cs := loanBatch(t, pub, 7, 1)
	published, err := pub.PublishBatch([]publisher.Chunk{cs[0], cs[0]})
	require.ErrorIs(t, err, parallax.ErrNotHeld)
	require.Equal(t, 1, published)
	s, err := sub.TakeTimeout(10 * time.Second)
	require.NoError(t, err)
	require.Equal(t, uint64(7), binary.LittleEndian.Uint64(s.Bytes()))
	require.NoError(t, s.Release())

	published, err = pub.PublishBatch(nil)
	require.NoError(t, err)
	require.Zero(t, published)

	cs = loanBatch(t, pub, 0, 2)
	require.NoError(t, pub.Close())
	published, err = pub.PublishBatch(cs)
	require.ErrorIs(t, err, os.ErrClosed)
	require.Zero(t, published)
	_, err = sub.TakeTimeout(50 * time.Millisecond)
	require.Error(t, err)
}
