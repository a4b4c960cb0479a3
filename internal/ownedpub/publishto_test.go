package ownedpub_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// TestPublishTo: a chunk published to one connection reaches only it, is
// not kept in history, and a removed connection gets nothing while the
// chunk goes back to the free list.
func TestPublishTo(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{DrainEvery: -1, History: 4}, 64, 32)
	a, sa := r.conn(t, 1, ringbuf.DiscardOldest, 8, 9, 0)
	b, sb := r.conn(t, 2, ringbuf.BlockProducer, 8, 9, 0)
	for seq := uint64(1); seq <= 4; seq++ {
		l, err := r.e.Loan(64)
		require.NoError(t, err)
		putSeq(l.Bytes(), seq)
		l.SetMeta(metaSeq(seq))
		to := a
		if seq%2 == 0 {
			to = b
		}
		require.NoError(t, r.e.PublishTo(&l, to))
		require.ErrorIs(t, r.e.PublishTo(&l, to), ownedpub.ErrNotLoaned, "a spent loan")
	}
	require.Equal(t, []uint64{1, 3}, sa.popAll())
	require.Equal(t, []uint64{2, 4}, sb.popAll())
	r.e.Drain()
	st := r.e.Stats()
	require.Zero(t, st.InUse, "nothing kept in history: %+v", st)
	require.Zero(t, st.History)

	_, err := r.e.RemoveConn(a)
	require.NoError(t, err)
	l, err := r.e.Loan(64)
	require.NoError(t, err)
	require.ErrorIs(t, r.e.PublishTo(&l, a), ownedpub.ErrConnGone)
	require.ErrorIs(t, r.e.PublishTo(&l, nil), ownedpub.ErrNotLoaned, "the loan is spent even when nothing was delivered")
	st = r.e.Stats()
	require.Zero(t, st.InUse, "the undelivered chunk is free again: %+v", st)
	require.Zero(t, st.Loans)
}
