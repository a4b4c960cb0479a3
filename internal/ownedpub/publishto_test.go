package ownedpub_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
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
		require.NoError(t, r.e.PublishTo(context.Background(), &l, to))
		require.ErrorIs(t, r.e.PublishTo(context.Background(), &l, to), ownedpub.ErrNotLoaned, "a spent loan")
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
	require.ErrorIs(t, r.e.PublishTo(context.Background(), &l, a), ownedpub.ErrConnGone)
	require.ErrorIs(t, r.e.PublishTo(context.Background(), &l, nil), ownedpub.ErrNotLoaned, "the loan is spent even when nothing was delivered")
	st = r.e.Stats()
	require.Zero(t, st.InUse, "the undelivered chunk is free again: %+v", st)
	require.Zero(t, st.Loans)
}

// TestPublishToCtx: a PublishTo waiting on a full block-producer
// connection (BlockTimeout a minute) ends when its ctx is cancelled or its
// deadline passes, with ctx's error; nothing is delivered, the
// connection stays live and takes the next message once there is room.
func TestPublishToCtx(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{BlockTimeout: time.Minute}, 64, 16)
	c, s := r.conn(t, 1, ringbuf.BlockProducer, 2, 8, 0)
	send := func(ctx context.Context, seq uint64) error {
		l, err := r.e.Loan(64)
		require.NoError(t, err)
		putSeq(l.Bytes(), seq)
		l.SetMeta(metaSeq(seq))
		return r.e.PublishTo(ctx, &l, c)
	}
	require.NoError(t, send(context.Background(), 1))
	require.NoError(t, send(context.Background(), 2)) // the ring (2) is full

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- send(ctx, 3) }()
	require.Eventually(t, func() bool { return r.e.Stats().Waits > 0 }, 5*time.Second, time.Millisecond, "the publish waits")
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("PublishTo did not end when its ctx was cancelled")
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	err := send(dctx, 4)
	require.ErrorIs(t, err, parallax.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.True(t, c.Stats().Live, "the connection stays live")
	require.Equal(t, 2, c.Stats().Outstanding, "3 and 4 not delivered")
	for _, want := range []uint64{1, 2} {
		ref, seq := s.mustPop()
		require.Equal(t, want, seq)
		s.give(ref)
	}
	require.NoError(t, send(context.Background(), 5))
	_, seq := s.mustPop()
	require.Equal(t, uint64(5), seq)
}
