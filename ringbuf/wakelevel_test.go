package ringbuf_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// TestWakeLevel pins when pops wake a waiting producer: at every pop by
// default, and only once the ring is down to the wake level when one is
// set, for TryPop and PopBatch alike; and exactly once per wait.
func TestWakeLevel(t *testing.T) {
	t.Parallel()
	fill := func(r *ringbuf.Ring) {
		for i := 1; i <= r.Cap(); i++ {
			_, err := r.TryPush(ref(i))
			require.NoError(t, err)
		}
	}
	t.Run("default wakes at the first pop", func(t *testing.T) {
		t.Parallel()
		r := newRing(t, 8, ringbuf.BlockProducer)
		fill(r)
		ringbuf.ArmProducerWait(r)
		w := ringbuf.ProducerWakes(r)
		_, ok := popOK(r.TryPop())
		require.True(t, ok)
		require.False(t, ringbuf.ProducerWaiting(r))
		require.Equal(t, w+1, ringbuf.ProducerWakes(r))
	})
	t.Run("TryPop", func(t *testing.T) {
		t.Parallel()
		r := newRing(t, 8, ringbuf.BlockProducer)
		r.SetWakeLevel(2)
		fill(r)
		ringbuf.ArmProducerWait(r)
		w := ringbuf.ProducerWakes(r)
		for i := 1; i <= 5; i++ { // 7, 6, 5, 4, 3 left
			v, ok := popOK(r.TryPop())
			require.True(t, ok)
			require.Equal(t, ref(i), v)
			require.True(t, ringbuf.ProducerWaiting(r), "woken with %d entries left", r.Len())
			require.Equal(t, w, ringbuf.ProducerWakes(r))
		}
		_, ok := popOK(r.TryPop()) // 2 left: the mark
		require.True(t, ok)
		require.False(t, ringbuf.ProducerWaiting(r))
		require.Equal(t, w+1, ringbuf.ProducerWakes(r))
		_, ok = popOK(r.TryPop()) // no waiter any more: no second wake
		require.True(t, ok)
		require.Equal(t, w+1, ringbuf.ProducerWakes(r))
	})
	t.Run("PopBatch", func(t *testing.T) {
		t.Parallel()
		r := newRing(t, 8, ringbuf.BlockProducer)
		r.SetWakeLevel(4)
		fill(r)
		ringbuf.ArmProducerWait(r)
		w := ringbuf.ProducerWakes(r)
		dst := make([]parallax.ChunkRef, 3)
		n, err := r.PopBatch(dst) // 5 left
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.True(t, ringbuf.ProducerWaiting(r))
		require.Equal(t, w, ringbuf.ProducerWakes(r))
		n, err = r.PopBatch(dst) // 2 left: past the mark
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.False(t, ringbuf.ProducerWaiting(r))
		require.Equal(t, w+1, ringbuf.ProducerWakes(r))
	})
	t.Run("clamped", func(t *testing.T) {
		t.Parallel()
		r := newRing(t, 4, ringbuf.BlockProducer)
		r.SetWakeLevel(-3) // 0: only the pop that empties the ring wakes
		fill(r)
		ringbuf.ArmProducerWait(r)
		w := ringbuf.ProducerWakes(r)
		for range 3 {
			_, ok := popOK(r.TryPop())
			require.True(t, ok)
		}
		require.Equal(t, w, ringbuf.ProducerWakes(r))
		_, ok := popOK(r.TryPop())
		require.True(t, ok)
		require.Equal(t, w+1, ringbuf.ProducerWakes(r))
		r.SetWakeLevel(1 << 20) // Cap: every pop
		fill(r)
		ringbuf.ArmProducerWait(r)
		_, ok = popOK(r.TryPop())
		require.True(t, ok)
		require.Equal(t, w+2, ringbuf.ProducerWakes(r))
	})
}

// TestWakeLevelNoLostWakeup runs a producer flat out into a small
// block-producer ring against a consumer that drains it with a wake level
// of 0 (the producer is woken only by the pop that empties the ring),
// through TryPop and PopBatch: every entry arrives, in order. A lost
// wake-up leaves the producer asleep until its 100 ms re-check; with
// thousands of waits, losing them would take the producer past the
// test's one-minute deadline (its Push then fails).
func TestWakeLevelNoLostWakeup(t *testing.T) {
	t.Parallel()
	const n = 50000
	for _, batch := range []bool{false, true} {
		name := map[bool]string{false: "TryPop", true: "PopBatch"}[batch]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRing(t, 16, ringbuf.BlockProducer)
			r.SetWakeLevel(0)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				for i := 1; i <= n; i++ {
					if _, err := r.Push(ctx, ref(i)); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			dst := make([]parallax.ChunkRef, 5)
			next := 1
			for next <= n {
				if batch {
					k, err := r.PopBatch(dst)
					require.NoError(t, err)
					for _, v := range dst[:k] {
						require.Equal(t, ref(next), v)
						next++
					}
					continue
				}
				v, err := r.TryPop()
				if err == ringbuf.ErrEmpty {
					continue
				}
				require.NoError(t, err)
				require.Equal(t, ref(next), v)
				next++
			}
			require.NoError(t, <-errc)
			require.Equal(t, 0, r.Len())
		})
	}
}
