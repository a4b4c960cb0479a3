package ownedpub_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// TestCountersMirrored: every Publish leaves the engine's counters in the
// first segment's header, where the router reads them (pread) after the
// publisher dies: published, delivered over every connection, dropped
// (discard-oldest) and the publishes that found no connection.
func TestCountersMirrored(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{}, 64, 16)
	read := func() dataseg.Counters {
		t.Helper()
		c, err := dataseg.ReadCounters(bytes.NewReader(r.mem))
		require.NoError(t, err)
		return c
	}
	require.Equal(t, dataseg.Counters{}, read())
	require.NoError(t, r.publish(t, 64, 1)) // nobody connected
	require.Equal(t, dataseg.Counters{Published: 1, Unconnected: 1}, read())

	c1, _ := r.conn(t, 1, ringbuf.DiscardOldest, 2, 4, 0)
	_, s2 := r.conn(t, 2, ringbuf.BlockProducer, 8, 8, 0)
	for seq := uint64(2); seq <= 4; seq++ {
		require.NoError(t, r.publish(t, 64, seq))
	}
	// Conn 1's ring holds 2: the third push discarded the oldest.
	want := dataseg.Counters{Published: 4, Delivered: 6, Dropped: 1, Unconnected: 1}
	require.Equal(t, want, read())
	require.Equal(t, uint64(3), c1.Stats().Delivered)
	require.Equal(t, uint64(1), c1.Stats().Discarded)
	require.Len(t, s2.popAll(), 3)

	_, err := r.e.RemoveConn(c1)
	require.NoError(t, err)
	require.NoError(t, r.publish(t, 64, 5))
	want.Published, want.Delivered = 5, 7
	require.Equal(t, want, read(), "a removed connection's deliveries stay counted")
}
