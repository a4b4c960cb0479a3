package ownedpub_test

import (
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// Close refuses new loans and turns publishes into releases, and OnIdle
// runs exactly once, only when the last loan and the last hold have
// ended, whichever of Publish, Release, Unhold and Close ends last.
func TestCloseIdleAfterLastLoanAndHold(t *testing.T) {
	t.Parallel()
	var idle atomic.Int32
	r := newRig(t, ownedpub.Options{OnIdle: func() { idle.Add(1) }}, 64, 8)
	_, sub := r.conn(t, 1, ringbuf.DiscardOldest, 8, 8, 0)
	a, err := r.e.Loan(8)
	require.NoError(t, err)
	b, err := r.e.Loan(8)
	require.NoError(t, err)
	require.True(t, r.e.Hold())

	r.e.Close()
	r.e.Close() // idempotent
	_, err = r.e.Loan(8)
	require.ErrorIs(t, err, ownedpub.ErrClosed)
	require.ErrorIs(t, err, os.ErrClosed)
	require.Zero(t, idle.Load(), "two loans and a hold remain")

	require.ErrorIs(t, r.e.Publish(&a), ownedpub.ErrClosed, "a publish after Close gives the loan back")
	require.Empty(t, sub.popAll(), "nothing is delivered after Close")
	require.ErrorIs(t, r.e.Publish(&a), ownedpub.ErrClosed, "a stale loan after Close")
	require.Zero(t, idle.Load(), "a loan and a hold remain")
	require.NoError(t, r.e.Release(&b), "a loan made before Close can be released")
	require.Zero(t, idle.Load(), "the hold remains")
	r.e.Unhold()
	require.EqualValues(t, 1, idle.Load(), "the last hold ended")

	require.False(t, r.e.Hold(), "no hold after OnIdle")
	require.ErrorIs(t, r.e.Release(&b), ownedpub.ErrClosed)
	r.e.Close()
	require.EqualValues(t, 1, idle.Load(), "OnIdle runs once")
	require.Zero(t, r.e.Stats().Loans)
}

// Close with nothing loaned or held runs OnIdle at once; with a loan, the
// Publish that ends it does, once, however many goroutines race.
func TestCloseIdleRaces(t *testing.T) {
	t.Parallel()
	var idle atomic.Int32
	r := newRig(t, ownedpub.Options{OnIdle: func() { idle.Add(1) }}, 64, 64)
	r.conn(t, 1, ringbuf.DiscardOldest, 64, 64, 0)
	loans := make([]ownedpub.Loan, 32)
	for i := range loans {
		var err error
		loans[i], err = r.e.Loan(8)
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for i := range loans {
		wg.Go(func() {
			if i%2 == 0 {
				_ = r.e.Publish(&loans[i])
			} else {
				_ = r.e.Release(&loans[i])
			}
		})
	}
	wg.Go(r.e.Close)
	wg.Wait()
	require.EqualValues(t, 1, idle.Load())
	require.Zero(t, r.e.Stats().Loans)

	var idle2 atomic.Int32
	r2 := newRig(t, ownedpub.Options{OnIdle: func() { idle2.Add(1) }}, 64, 4)
	r2.e.Close()
	require.EqualValues(t, 1, idle2.Load(), "nothing loaned: idle at Close")
}
