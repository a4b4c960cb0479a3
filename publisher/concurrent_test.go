package publisher_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// A Publisher is safe for concurrent use: goroutines that loan, publish,
// release and send at once on one publisher deliver every sample exactly
// once, and the counters add up.
func TestConcurrentPublishers(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const goroutines, each = 4, 500
	sub, err := subscriber.New(ctx, "conc", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 64, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "conc", publisher.Options{Socket: srv.SocketPath(), BlockTimeout: 20 * time.Second})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				id := uint64(g*each + i)
				var b [8]byte
				binary.LittleEndian.PutUint64(b[:], id)
				if i%3 == 0 {
					if err := pub.Send(b[:]); err != nil {
						errs <- err
						return
					}
					continue
				}
				c, err := pub.Loan(8)
				if err == nil && i%3 == 1 {
					// A loan given back, then a fresh one published.
					if err = pub.Release(c); err == nil {
						c, err = pub.Loan(8)
					}
				}
				if err == nil {
					copy(c.Bytes(), b[:])
					err = pub.Publish(c)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	seen := make([]bool, goroutines*each)
	for range goroutines * each {
		s, err := sub.Take(ctx)
		require.NoError(t, err)
		id := binary.LittleEndian.Uint64(s.Bytes())
		require.Less(t, id, uint64(len(seen)))
		require.False(t, seen[id], "sample %d delivered twice", id)
		seen[id] = true
		require.NoError(t, s.Release())
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := pub.Stats()
	require.EqualValues(t, goroutines*each, st.Published)
	require.EqualValues(t, goroutines*each, pub.Published())
	require.Zero(t, st.Loans)
}

// Close racing with goroutines that loan and publish: each call either
// works or fails with os.ErrClosed, nothing touches unmapped memory (the
// data segments stay mapped until the last loan ends), and every loan is
// accounted for.
func TestCloseWhilePublishing(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "closing", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 16})
	require.NoError(t, err)
	defer sub.Close()
	for round := range 20 {
		pub, err := publisher.New(ctx, "closing", publisher.Options{Socket: srv.SocketPath()})
		require.NoError(t, err)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for {
					c, err := pub.Loan(64)
					if err != nil {
						require.ErrorIs(t, err, os.ErrClosed, "round %d", round)
						return
					}
					copy(c.Bytes(), "payload written into a live mapping")
					if err := pub.Publish(c); err != nil && !errors.Is(err, os.ErrClosed) {
						require.NoError(t, err, "round %d", round)
					}
				}
			})
		}
		require.NoError(t, pub.Close())
		wg.Wait()
		require.Zero(t, pub.Stats().Loans, "round %d", round)
	}
}
