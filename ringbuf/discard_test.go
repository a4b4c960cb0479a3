package ringbuf_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// TestTryDiscard takes back the oldest entries one by one, in order, until
// the ring is empty; the consumer then finds nothing, and pushes go on.
func TestTryDiscard(t *testing.T) {
	t.Parallel()
	r := newRing(t, 4, ringbuf.DiscardOldest)
	_, err := r.TryDiscard()
	require.ErrorIs(t, err, ringbuf.ErrEmpty)
	for i := 1; i <= 3; i++ {
		_, err := r.TryPush(parallax.ChunkRef(i))
		require.NoError(t, err)
	}
	got, err := r.TryPop()
	require.NoError(t, err)
	require.Equal(t, parallax.ChunkRef(1), got)
	for want := 2; want <= 3; want++ {
		got, err := r.TryDiscard()
		require.NoError(t, err)
		require.Equal(t, parallax.ChunkRef(want), got)
	}
	_, err = r.TryDiscard()
	require.ErrorIs(t, err, ringbuf.ErrEmpty)
	_, err = r.TryPop()
	require.ErrorIs(t, err, ringbuf.ErrEmpty)
	require.Equal(t, uint64(2), r.Dropped())
	_, err = r.TryPush(9)
	require.NoError(t, err)
	got, err = r.TryPop()
	require.NoError(t, err)
	require.Equal(t, parallax.ChunkRef(9), got)

	b := newRing(t, 4, ringbuf.BlockProducer)
	_, err = b.TryDiscard()
	require.ErrorIs(t, err, ringbuf.ErrInvalidArgument)
}

// TestTryDiscardRacesPop has the producer push and take back while the
// consumer pops: every entry is obtained by exactly one side.
func TestTryDiscardRacesPop(t *testing.T) {
	t.Parallel()
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	r := newRing(t, 8, ringbuf.DiscardOldest)
	popped := make(chan []parallax.ChunkRef)
	stop := make(chan struct{})
	go func() {
		var got []parallax.ChunkRef
		for {
			v, err := r.TryPop()
			if err == nil {
				got = append(got, v)
				continue
			}
			select {
			case <-stop:
				for {
					v, err := r.TryPop()
					if err != nil {
						popped <- got
						return
					}
					got = append(got, v)
				}
			default:
			}
		}
	}()
	seen := make([]int, n+1)
	for i := 1; i <= n; i++ {
		old, err := r.TryPush(parallax.ChunkRef(i))
		require.NoError(t, err)
		if old != parallax.NilRef {
			seen[old]++
		}
		if i%3 == 0 {
			old, err := r.TryDiscard()
			if err == nil {
				seen[old]++
			} else {
				require.ErrorIs(t, err, ringbuf.ErrEmpty)
			}
		}
	}
	close(stop)
	for _, v := range <-popped {
		seen[v]++
	}
	for i := 1; i <= n; i++ {
		require.Equal(t, 1, seen[i], "entry %d", i)
	}
}
