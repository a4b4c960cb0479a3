package ringbuf_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/ringbuf"
)

func ref(i int) parallax.ChunkRef { return parallax.ChunkRef(i) }

func newRing(t testing.TB, capacity int, p ringbuf.Policy) *ringbuf.Ring {
	t.Helper()
	r, err := ringbuf.Format(make([]byte, ringbuf.Size(capacity)), capacity, p)
	require.NoError(t, err)
	return r
}

func TestFormatArguments(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		memLen   int
		offset   int
		capacity int
		policy   ringbuf.Policy
		ok       bool
	}{
		{"ok 1", ringbuf.Size(1), 0, 1, ringbuf.DiscardOldest, true},
		{"ok 1024 block", ringbuf.Size(1024), 0, 1024, ringbuf.BlockProducer, true},
		{"ok larger region", ringbuf.Size(8) + 100, 0, 8, ringbuf.DiscardOldest, true},
		{"zero capacity", ringbuf.Size(8), 0, 0, ringbuf.DiscardOldest, false},
		{"not power of two", ringbuf.Size(12), 0, 12, ringbuf.DiscardOldest, false},
		{"too large", ringbuf.Size(8), 0, ringbuf.MaxCapacity * 2, ringbuf.DiscardOldest, false},
		{"region too small", ringbuf.Size(8) - 1, 0, 8, ringbuf.DiscardOldest, false},
		{"zero policy", ringbuf.Size(8), 0, 8, 0, false},
		{"unknown policy", ringbuf.Size(8), 0, 8, 7, false},
		{"misaligned", ringbuf.Size(8) + 4, 4, 8, ringbuf.DiscardOldest, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			mem := make([]byte, c.memLen)[c.offset:]
			r, err := ringbuf.Format(mem, c.capacity, c.policy)
			if !c.ok {
				require.ErrorIs(t, err, ringbuf.ErrInvalidArgument)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.capacity, r.Cap())
			require.Equal(t, c.policy, r.Policy())
			a, err := ringbuf.Attach(mem)
			require.NoError(t, err)
			require.Equal(t, c.capacity, a.Cap())
			require.Equal(t, c.policy, a.Policy())
		})
	}
}

func TestAttachRejectsCorruptHeaders(t *testing.T) {
	t.Parallel()
	good := func() []byte {
		mem := make([]byte, ringbuf.Size(8))
		_, err := ringbuf.Format(mem, 8, ringbuf.DiscardOldest)
		require.NoError(t, err)
		return mem
	}
	for _, c := range []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"empty", func(b []byte) []byte { return nil }},
		{"short header", func(b []byte) []byte { return b[:ringbuf.HeaderSize-1] }},
		{"zeroed", func(b []byte) []byte { clear(b); return b }},
		{"bad magic", func(b []byte) []byte { b[0] ^= 1; return b }},
		{"bad version", func(b []byte) []byte { b[8] = 9; return b }},
		{"bad policy", func(b []byte) []byte { b[12] = 0; return b }},
		{"capacity not power of two", func(b []byte) []byte { b[16] = 6; return b }},
		{"capacity zero", func(b []byte) []byte { b[16] = 0; return b }},
		{"capacity beyond region", func(b []byte) []byte { b[16] = 0; b[17] = 1; return b }},
		{"truncated slots", func(b []byte) []byte { return b[:len(b)-8] }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ringbuf.Attach(c.mutate(good()))
			require.ErrorIs(t, err, parallax.ErrCorrupt)
		})
	}
}

func TestPushPopFIFO(t *testing.T) {
	t.Parallel()
	for _, p := range []ringbuf.Policy{ringbuf.DiscardOldest, ringbuf.BlockProducer} {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			r := newRing(t, 4, p)
			_, ok := popOK(r.TryPop())
			require.False(t, ok)
			// Several laps so positions wrap around the slot array.
			for lap := range 5 {
				for i := 1; i <= 4; i++ {
					d, err := r.TryPush(ref(lap*10 + i))
					require.NoError(t, err)
					require.Equal(t, parallax.NilRef, d)
				}
				require.Equal(t, 4, r.Len())
				for i := 1; i <= 4; i++ {
					v, ok := popOK(r.TryPop())
					require.True(t, ok)
					require.Equal(t, ref(lap*10+i), v)
				}
				require.Equal(t, 0, r.Len())
			}
			require.Equal(t, uint64(0), r.Dropped())
		})
	}
}

func TestFullRing(t *testing.T) {
	t.Parallel()
	t.Run("block producer", func(t *testing.T) {
		t.Parallel()
		r := newRing(t, 2, ringbuf.BlockProducer)
		for i := 1; i <= 2; i++ {
			_, err := r.TryPush(ref(i))
			require.NoError(t, err)
		}
		_, err := r.TryPush(ref(3))
		require.ErrorIs(t, err, ringbuf.ErrFull)
		require.Equal(t, uint64(0), r.Dropped())
	})
	t.Run("discard oldest", func(t *testing.T) {
		t.Parallel()
		r := newRing(t, 2, ringbuf.DiscardOldest)
		for i := 1; i <= 2; i++ {
			_, err := r.TryPush(ref(i))
			require.NoError(t, err)
		}
		d, err := r.TryPush(ref(3))
		require.NoError(t, err)
		require.Equal(t, ref(1), d)
		d, err = r.TryPush(ref(4))
		require.NoError(t, err)
		require.Equal(t, ref(2), d)
		require.Equal(t, uint64(2), r.Dropped())
		// Discards do not count as pops.
		require.Equal(t, uint32(0), r.Head().Pops())
		require.Equal(t, uint32(2), r.Head().Pos())
		for _, want := range []int{3, 4} {
			v, ok := popOK(r.TryPop())
			require.True(t, ok)
			require.Equal(t, ref(want), v)
		}
		require.Equal(t, uint32(2), r.Head().Pops())
	})
}

func TestPushErrors(t *testing.T) {
	t.Parallel()
	r := newRing(t, 2, ringbuf.DiscardOldest)
	_, err := r.TryPush(parallax.NilRef)
	require.ErrorIs(t, err, ringbuf.ErrInvalidArgument)
	_, err = r.TryPush(ref(1))
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.NoError(t, r.Close()) // idempotent
	require.True(t, r.Closed())
	_, err = r.TryPush(ref(2))
	require.ErrorIs(t, err, os.ErrClosed)
	// Pops still drain a closed ring.
	v, ok := popOK(r.TryPop())
	require.True(t, ok)
	require.Equal(t, ref(1), v)
}

func TestCorruptIndicesAreErrors(t *testing.T) {
	t.Parallel()
	mem := make([]byte, ringbuf.Size(4))
	r, err := ringbuf.Format(mem, 4, ringbuf.DiscardOldest)
	require.NoError(t, err)
	// A hostile consumer moves head far ahead of tail. The producer reads
	// head when its cached view says the ring is full, so it notices
	// within a capacity of pushes.
	mem[128+2] = 0x10 // head position = 0x100000
	for i := range r.Cap() {
		_, err = r.TryPush(ref(i + 1))
		require.NoError(t, err)
	}
	_, err = r.TryPush(ref(9))
	require.ErrorIs(t, err, parallax.ErrCorrupt)
	// The consumer side refuses a tail far ahead of head: it pops nothing
	// (the ring would claim 2^20 entries in 4 slots).
	clear(mem[128:136])
	mem[256+2] = 0x10 // tail far ahead
	for range 2 {
		_, err := r.TryPop()
		require.ErrorIs(t, err, ringbuf.ErrCorruptRing)
		require.ErrorIs(t, err, parallax.ErrCorrupt)
	}
}

func TestPositionsWrap(t *testing.T) {
	t.Parallel()
	mem := make([]byte, ringbuf.Size(4))
	r, err := ringbuf.Format(mem, 4, ringbuf.DiscardOldest)
	require.NoError(t, err)
	// Start both positions (and the pop count) just below 2^32. The
	// words are little-endian: set head = tail = 0xFFFFFFFE, pops = ^0.
	for i := range 4 {
		mem[128+i] = 0xFF
		mem[256+i] = 0xFF
		mem[128+4+i] = 0xFF
	}
	mem[128], mem[256] = 0xFE, 0xFE
	require.Equal(t, 0, r.Len())
	for i := 1; i <= 6; i++ { // 2 discards across the wrap
		_, err := r.TryPush(ref(i))
		require.NoError(t, err)
	}
	require.Equal(t, 4, r.Len())
	require.Equal(t, uint64(2), r.Dropped())
	for i := 3; i <= 6; i++ {
		v, ok := popOK(r.TryPop())
		require.True(t, ok)
		require.Equal(t, ref(i), v)
	}
	require.Equal(t, uint32(4), r.Head().Pos())
	require.Equal(t, uint32(3), r.Head().Pops()) // ^0 + 4 pops
	require.Equal(t, uint32(4), r.Tail())
}

func TestBlockingPush(t *testing.T) {
	t.Parallel()
	t.Run("wakes when consumer pops", func(t *testing.T) {
		t.Parallel()
		r := newRing(t, 1, ringbuf.BlockProducer)
		_, err := r.TryPush(ref(1))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			_, err := r.Push(context.Background(), ref(2))
			done <- err
		}()
		// Pop only after the producer waits or has finished (it cannot
		// finish before we pop): poll the condition, no sleeps.
		waitFor(t, func() bool { return waitFlagSet(r) })
		v, ok := popOK(r.TryPop())
		require.True(t, ok)
		require.Equal(t, ref(1), v)
		require.NoError(t, <-done)
		v, ok = popOK(r.TryPop())
		require.True(t, ok)
		require.Equal(t, ref(2), v)
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		r := newRing(t, 1, ringbuf.BlockProducer)
		_, err := r.TryPush(ref(1))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err = r.Push(ctx, ref(2))
		require.ErrorIs(t, err, parallax.ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("push until", func(t *testing.T) {
		t.Parallel()
		r := newRing(t, 1, ringbuf.BlockProducer)
		_, err := r.TryPush(ref(1))
		require.NoError(t, err)
		_, err = r.PushUntil(time.Now().Add(20*time.Millisecond), ref(2))
		require.ErrorIs(t, err, parallax.ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.False(t, waitFlagSet(r), "a timed-out push leaves the wait flag clear")

		done := make(chan error, 1)
		go func() {
			_, err := r.PushUntil(time.Now().Add(time.Minute), ref(3))
			done <- err
		}()
		waitFor(t, func() bool { return waitFlagSet(r) })
		v, ok := popOK(r.TryPop())
		require.True(t, ok)
		require.Equal(t, ref(1), v)
		require.NoError(t, <-done)
		v, ok = popOK(r.TryPop())
		require.True(t, ok)
		require.Equal(t, ref(3), v)
	})
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		r := newRing(t, 1, ringbuf.BlockProducer)
		_, err := r.TryPush(ref(1))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := r.Push(ctx, ref(2))
			done <- err
		}()
		waitFor(t, func() bool { return waitFlagSet(r) })
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	t.Run("close", func(t *testing.T) {
		t.Parallel()
		r := newRing(t, 1, ringbuf.BlockProducer)
		_, err := r.TryPush(ref(1))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			_, err := r.Push(context.Background(), ref(2))
			done <- err
		}()
		waitFor(t, func() bool { return waitFlagSet(r) })
		require.NoError(t, r.Close())
		require.ErrorIs(t, <-done, os.ErrClosed)
	})
}

// waitFlagSet reports whether the producer announced it waits for space.
func waitFlagSet(r *ringbuf.Ring) bool { return ringbuf.ProducerWaiting(r) }

// waitFor polls cond until it holds, failing the test after a generous
// deadline. It waits on the condition, never for a fixed time.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(50 * time.Microsecond)
	}
}
