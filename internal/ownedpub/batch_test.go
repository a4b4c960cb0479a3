package ownedpub_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// TestPublishBatchWakesBeforeWaiting: a batch defers its wake-ups, but not
// across a block-producer wait. Connection A is block-producer with room
// for 2; B's subscriber sleeps. The batch's third sample finds A full, and
// before the batch waits for A, B's subscriber is woken for the samples it
// already has: a program that takes from B before A (one goroutine) would
// otherwise never drain A.
func TestPublishBatchWakesBeforeWaiting(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{BlockTimeout: time.Minute}, 64, 16)
	a, subA := r.conn(t, 1, ringbuf.BlockProducer, 2, 4, 0)
	_, subB := r.conn(t, 2, ringbuf.DiscardOldest, 8, 8, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	woke := make(chan error, 1)
	go func() {
		woke <- subB.c.DataWake().Wait(ctx, func() bool { return subB.c.DataRing().Len() > 0 }, ringbuf.WaitOptions{Spin: -1})
	}()
	require.Eventually(t, subB.c.DataWake().Sleeping, 5*time.Second, time.Millisecond)

	const n = 4
	loans := make([]ownedpub.Loan, n)
	for i := range loans {
		l, err := r.e.Loan(64)
		require.NoError(t, err)
		binary.LittleEndian.PutUint64(l.Bytes(), uint64(i+1))
		l.SetMeta(dataseg.Meta{UserSeq: uint64(i + 1)})
		loans[i] = l
	}
	errs := make([]error, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.e.PublishBatch(n, func(i int) *ownedpub.Loan { return &loans[i] }, func(i int, err error) { errs[i] = err })
	}()
	// The batch waits on A (its third sample delivered, not pushed), and
	// B's subscriber has been woken by then.
	require.Eventually(t, func() bool { return a.Stats().Outstanding == 3 && r.e.Stats().Waits > 0 }, 10*time.Second, time.Millisecond)
	require.NoError(t, <-woke)
	require.Equal(t, uint64(1), subB.c.DataWake().Stats().Wakes, "B woken before the batch waits")
	gotB := subB.popAll() // 1, 2, and 3 if B comes before A in the engine's order
	require.GreaterOrEqual(t, len(gotB), 2)

	gotA := subA.popAll() // room: the batch goes on (and may refill A meanwhile)
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("batch still blocked")
	}
	require.Equal(t, make([]error, n), errs)
	require.Equal(t, []uint64{1, 2, 3, 4}, append(gotA, subA.popAll()...))
	require.Equal(t, []uint64{1, 2, 3, 4}, append(gotB, subB.popAll()...))
}
