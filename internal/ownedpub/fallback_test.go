package ownedpub_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// addHeapSegment adds a heap data segment of count chunks of chunkSize
// bytes at index to the rig's engine.
func (r *rig) addHeapSegment(t testing.TB, index uint16, chunkSize, count uint32) {
	t.Helper()
	d := dataseg.Desc{PubID: 1, Index: index, ChunkSize: chunkSize, Count: count, PageSize: 4096}
	w, err := dataseg.Format(make([]byte, dataseg.Size(d)), d)
	require.NoError(t, err)
	require.NoError(t, r.e.AddSegment(w))
}

// TestLoanFallsBackToLargerClass: a loan whose smallest fitting class
// (a small class beside the publisher's 4 KiB one) is empty, with nothing
// to drain, takes a chunk of the larger class instead of failing; so does
// LoanWait, which does not sleep while the larger class has a free chunk
// although a subscriber holds the small ones. With both empty, Loan fails
// as before (ErrPoolExhausted).
func TestLoanFallsBackToLargerClass(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{}, 4096, 2)
	r.addHeapSegment(t, 1, 64, 2)
	_, sub := r.conn(t, 1, ringbuf.DiscardOldest, 8, 8, 0)

	// The two small chunks go to the subscriber, which holds them.
	require.NoError(t, r.publish(t, 64, 1))
	require.NoError(t, r.publish(t, 64, 2))
	for range 2 {
		ref, err := sub.c.DataRing().TryPop()
		require.NoError(t, err)
		require.Equal(t, uint32(1), ref.Pool(), "a 64-byte loan comes from the 64-byte class first")
	}

	l, err := r.e.Loan(64)
	require.NoError(t, err, "the 4 KiB class has free chunks")
	require.Equal(t, uint32(0), l.Ref().Pool())
	require.Len(t, l.Bytes(), 64)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lw, err := r.e.LoanWait(ctx, 64, ringbuf.WaitOptions{})
	require.NoError(t, err, "LoanWait takes the larger class's free chunk rather than sleeping")
	require.Equal(t, uint32(0), lw.Ref().Pool())

	_, err = r.e.Loan(64)
	require.ErrorIs(t, err, parallax.ErrPoolExhausted, "every class empty")
	require.NoError(t, r.e.Release(&l))
	require.NoError(t, r.e.Release(&lw))
}
