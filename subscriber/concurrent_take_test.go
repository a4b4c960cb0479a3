package subscriber_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Goroutines that take from one subscriber at once (TryTake, and Take with
// a short timeout) get every sample exactly once between them; a Take that
// would wait while another waits fails with ErrConcurrentUse, never with
// a lost or doubled sample.
func TestConcurrentTakers(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const total = 3000
	sub, err := subscriber.New(ctx, "takers", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 64, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "takers", publisher.Options{Socket: srv.SocketPath(), BlockTimeout: 20 * time.Second})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	var mu sync.Mutex
	seen := make(map[uint64]bool, total)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				var s subscriber.Sample
				var err error
				if g%2 == 0 {
					s, err = sub.TryTake()
				} else {
					s, err = sub.TakeTimeout(time.Millisecond)
				}
				switch {
				case errors.Is(err, subscriber.ErrNoData), errors.Is(err, parallax.ErrTimeout), errors.Is(err, parallax.ErrConcurrentUse):
					continue
				case err != nil:
					t.Error(err)
					return
				}
				id := binary.LittleEndian.Uint64(s.Bytes())
				mu.Lock()
				if seen[id] {
					t.Errorf("sample %d taken twice", id)
				}
				seen[id] = true
				mu.Unlock()
				if err := s.Release(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	var b [8]byte
	for i := range uint64(total) {
		binary.LittleEndian.PutUint64(b[:], i)
		require.NoError(t, pub.Send(b[:]))
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == total }, 20*time.Second, time.Millisecond)
	close(done)
	wg.Wait()
	require.Zero(t, subscriber.Held(sub))
}

// Close racing with several goroutines that take and release: every call either
// works or fails with os.ErrClosed, and a sample taken before Close stays
// readable until it is released.
func TestCloseWhileTakingConcurrently(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "takeclose", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	for round := range 10 {
		sub, err := subscriber.New(ctx, "takeclose", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 16})
		require.NoError(t, err)
		require.NoError(t, pub.WaitForSubscribers(ctx, 1))
		stop := make(chan struct{})
		var pw sync.WaitGroup
		pw.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = pub.Send([]byte("abcdefgh"))
			}
		})
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for {
					s, err := sub.TakeTimeout(10 * time.Millisecond)
					switch {
					case errors.Is(err, os.ErrClosed):
						return
					case errors.Is(err, parallax.ErrTimeout), errors.Is(err, parallax.ErrConcurrentUse):
						continue
					case err != nil:
						t.Errorf("round %d: %v", round, err)
						return
					}
					if string(s.Bytes()) != "abcdefgh" {
						t.Errorf("round %d: sample reads %q", round, s.Bytes())
					}
					if err := s.Release(); err != nil && !errors.Is(err, os.ErrClosed) {
						t.Errorf("round %d: release: %v", round, err)
					}
				}
			})
		}
		require.NoError(t, sub.Close())
		wg.Wait()
		close(stop)
		pw.Wait()
		require.Zero(t, subscriber.Held(sub), "round %d", round)
	}
}
