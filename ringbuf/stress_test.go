package ringbuf_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// TestStress runs one producer and one consumer goroutine on each policy.
// Every pushed value must be either popped or handed back to the producer
// as discarded, never both, and popped values must arrive in push order.
func TestStress(t *testing.T) {
	t.Parallel()
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	for _, c := range []struct {
		policy   ringbuf.Policy
		capacity int
		spin     time.Duration
	}{
		{ringbuf.DiscardOldest, 4, time.Microsecond},
		{ringbuf.DiscardOldest, 64, -1},
		{ringbuf.BlockProducer, 4, time.Microsecond},
		{ringbuf.BlockProducer, 64, -1},
	} {
		t.Run(fmt.Sprintf("policy=%v/cap=%d/spin=%v", c.policy, c.capacity, c.spin), func(t *testing.T) {
			t.Parallel()
			r := newRing(t, c.capacity, c.policy)
			nt, err := ringbuf.FormatNotifier(make([]byte, ringbuf.NotifierSize))
			require.NoError(t, err)

			var producerDone atomic.Bool
			var discarded []parallax.ChunkRef
			var wg sync.WaitGroup
			var pushErr error
			wg.Go(func() {
				defer func() {
					producerDone.Store(true)
					_ = nt.Notify()
				}()
				for i := 1; i <= n; i++ {
					d, err := r.Push(context.Background(), ref(i))
					if err != nil {
						pushErr = err
						return
					}
					if d != parallax.NilRef {
						discarded = append(discarded, d)
					}
					if err := nt.Notify(); err != nil {
						pushErr = err
						return
					}
				}
			})

			popped := make([]parallax.ChunkRef, 0, n)
			ready := func() bool { return r.Len() > 0 || producerDone.Load() }
			for {
				v, ok := popOK(r.TryPop())
				if ok {
					popped = append(popped, v)
					continue
				}
				if producerDone.Load() {
					// Drain what the producer pushed before finishing.
					for v, ok := popOK(r.TryPop()); ok; v, ok = popOK(r.TryPop()) {
						popped = append(popped, v)
					}
					break
				}
				require.NoError(t, nt.Wait(context.Background(), ready, ringbuf.WaitOptions{Spin: c.spin}))
			}
			wg.Wait()
			require.NoError(t, pushErr)

			// popped is strictly increasing: in order, no duplicates.
			for i := 1; i < len(popped); i++ {
				require.Less(t, popped[i-1], popped[i], "out of order at %d", i)
			}
			// popped ∪ discarded = 1..n exactly, disjoint.
			seen := make([]byte, n+1)
			for _, v := range popped {
				seen[v]++
			}
			for _, v := range discarded {
				seen[v]++
			}
			for i := 1; i <= n; i++ {
				require.Equal(t, byte(1), seen[i], "value %d seen %d times", i, seen[i])
			}
			require.Equal(t, uint64(len(discarded)), r.Dropped())
			if c.policy == ringbuf.BlockProducer {
				require.Empty(t, discarded)
			}
			t.Logf("popped %d, discarded %d, wakes %d, sleeps %d", len(popped), len(discarded), nt.Stats().Wakes, nt.Stats().Sleeps)
		})
	}
}
