package ownedpub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// runConsumer pops, checks and returns every message on s until stop is
// set and the ring is empty, then sends the seqs it saw.
func runConsumer(s *consumer, stop *atomic.Bool, out chan<- []uint64) {
	var seqs []uint64
	ready := func() bool { return s.c.DataRing().Len() > 0 || stop.Load() }
	for {
		if s.c.DataRing().Len() > 0 {
			ref, seq := s.mustPop()
			seqs = append(seqs, seq)
			s.give(ref)
			continue
		}
		if stop.Load() {
			out <- seqs
			return
		}
		_ = s.c.DataWake().Wait(context.Background(), ready, ringbuf.WaitOptions{Timeout: 10 * time.Millisecond})
	}
}

// TestFanOut publishes to three connections with different policies: an
// eager discard-oldest subscriber and an eager block-producer subscriber get
// every message in order; a subscriber that never pops keeps the newest
// ones, the rest taken back by discard-oldest. Removing the connections
// reclaims everything.
func TestFanOut(t *testing.T) {
	t.Parallel()
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprintf("single=%v", single), func(t *testing.T) {
			t.Parallel()
			testFanOut(t, ownedpub.Options{MaxLoans: 1, SingleGoroutine: single})
		})
	}
}

func testFanOut(t *testing.T, opts ownedpub.Options) {
	const n, dataCap = 2000, 4
	r := newRig(t, opts, 64, 1+3*(dataCap+1))
	c1, s1 := r.conn(t, 1, ringbuf.DiscardOldest, dataCap, dataCap+1, 0)
	c2, s2 := r.conn(t, 2, ringbuf.BlockProducer, dataCap, dataCap+1, 0)
	c3, s3 := r.conn(t, 3, ringbuf.DiscardOldest, dataCap, dataCap+1, 0)
	var stop atomic.Bool
	out1, out2 := make(chan []uint64, 1), make(chan []uint64, 1)
	go runConsumer(s1, &stop, out1)
	go runConsumer(s2, &stop, out2)

	for seq := uint64(1); seq <= n; seq++ {
		require.NoError(t, r.publish(t, 64, seq))
	}
	stop.Store(true)
	got1, got2 := <-out1, <-out2
	require.Len(t, got2, n, "block-producer subscriber lost messages")
	for i, seq := range got2 {
		require.Equal(t, uint64(i+1), seq)
	}
	// The eager discard-oldest subscriber may lose some to discards when
	// it falls behind, but never reorders.
	for i := 1; i < len(got1); i++ {
		require.Less(t, got1[i-1], got1[i])
	}
	require.Equal(t, uint64(n), got1[len(got1)-1])
	// The idle subscriber kept the newest dataCap messages.
	var kept []uint64
	for range dataCap {
		_, seq := s3.mustPop()
		kept = append(kept, seq)
	}
	require.Equal(t, []uint64{n - 3, n - 2, n - 1, n}, kept)
	require.Equal(t, uint64(n-dataCap), c3.Stats().Discarded)
	require.Zero(t, c1.Err())
	require.Zero(t, c2.Err())
	require.Zero(t, c3.Err())

	r.e.Drain()
	st := r.e.Stats()
	require.Equal(t, dataCap, st.InUse, "only the idle subscriber's chunks are out: %+v", st)
	for _, c := range []*ownedpub.Conn{c1, c2, c3} {
		_, err := r.e.RemoveConn(c)
		require.NoError(t, err)
	}
	st = r.e.Stats()
	require.Zero(t, st.InUse, "%+v", st)
	require.Zero(t, st.Units)
	require.Equal(t, st.Chunks, st.Free)
}

// TestDiscardOldestForgedTakeBack has a hostile subscriber overwrite the
// oldest entry of its full data ring with the ref of a chunk another
// connection holds. The take-back refuses it: an error for that connection
// only, nothing freed, and the honest connection still reads that chunk's
// data intact.
func TestDiscardOldestForgedTakeBack(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{MaxLoans: 1}, 64, 1+5+3)
	honest, hs := r.conn(t, 1, ringbuf.DiscardOldest, 4, 5, 0)
	require.NoError(t, r.publish(t, 64, 1)) // only the honest one gets seq 1
	victim, vs := r.conn(t, 2, ringbuf.DiscardOldest, 2, 3, 0)
	seq1Ref := peekOldest(t, hs) // a chunk the victim never had

	require.NoError(t, r.publish(t, 64, 2))
	require.NoError(t, r.publish(t, 64, 3)) // victim's ring full: 2, 3
	before := r.e.Stats()
	vs.forgeOldest(seq1Ref)
	err := r.publish(t, 64, 4) // takes back the forged entry
	var ce *ownedpub.ConnError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, uint32(2), ce.Conn)
	require.ErrorIs(t, err, parallax.ErrInvalidRef)
	require.ErrorIs(t, victim.Err(), parallax.ErrNotHeld)
	require.NoError(t, honest.Err())
	after := r.e.Stats()
	require.Equal(t, before.BadReturns+1, after.BadReturns)
	require.Equal(t, before.Free-1, after.Free, "one loan, nothing freed: %+v → %+v", before, after)
	require.False(t, victim.Stats().Live)
	require.Equal(t, uint64(1), after.Failed)

	// The honest connection still has 1..4, intact (mustPop checks the
	// payload against the header): the forged ref freed nothing.
	for want := uint64(1); want <= 4; want++ {
		ref, s := hs.mustPop()
		require.Equal(t, want, s)
		hs.give(ref)
	}
	var s uint64

	// Deliveries stop on the failed connection; the honest one goes on.
	require.NoError(t, r.publish(t, 64, 5))
	_, s = hs.mustPop()
	require.Equal(t, uint64(5), s)
	require.Equal(t, uint64(3), victim.Stats().Delivered, "2, 3, 4 and nothing after the failure")
	out := victim.Stats().Outstanding
	n, err := r.e.RemoveConn(victim)
	require.NoError(t, err)
	require.Equal(t, out, n)
	_, err = r.e.RemoveConn(victim)
	require.ErrorIs(t, err, ownedpub.ErrConnGone)
}

// peekOldest returns the ref at the head of s's data ring without popping.
func peekOldest(t *testing.T, s *consumer) parallax.ChunkRef {
	t.Helper()
	r := s.c.DataRing()
	require.Positive(t, r.Len())
	slot := int(r.Head().Pos()) & (r.Cap() - 1)
	dataRing := ringbuf.ConnHeaderSize + 2*ringbuf.NotifierSize
	off := dataRing + ringbuf.HeaderSize + 8*slot
	var v uint64
	for i := range 8 {
		v |= uint64(s.mem[off+i]) << (8 * i)
	}
	return parallax.ChunkRef(v)
}

// TestBound: a subscriber that holds chunks keeps its connection at its
// bound, never beyond. Discard-oldest takes the oldest queued entry back
// before delivering; with nothing queued (the subscriber holds them all)
// the message is not delivered there. Block-producer waits and times out.
func TestBound(t *testing.T) {
	t.Parallel()
	t.Run("discard-oldest", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, ownedpub.Options{MaxLoans: 1}, 64, 1+3)
		c, s := r.conn(t, 1, ringbuf.DiscardOldest, 4, 3, 0)
		for seq := uint64(1); seq <= 10; seq++ {
			require.NoError(t, r.publish(t, 64, seq))
			require.LessOrEqual(t, c.Stats().Outstanding, 3)
		}
		// 3 outstanding, all queued (ring cap 4 > bound): the newest three.
		require.Equal(t, 3, s.c.DataRing().Len())
		var held []parallax.ChunkRef
		for want := uint64(8); want <= 10; want++ {
			ref, seq := s.mustPop()
			require.Equal(t, want, seq)
			held = append(held, ref)
		}
		require.NoError(t, r.publish(t, 64, 11)) // nothing to take back: skipped on c
		require.Equal(t, 3, c.Stats().Outstanding)
		require.Zero(t, s.c.DataRing().Len())
		require.True(t, c.Stats().Live)
		for _, ref := range held {
			s.give(ref)
		}
		require.NoError(t, r.publish(t, 64, 12)) // at the bound: drain, deliver
		_, seq := s.mustPop()
		require.Equal(t, uint64(12), seq)
	})
	t.Run("block-producer", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, ownedpub.Options{MaxLoans: 1, BlockTimeout: 20 * time.Millisecond}, 64, 1+3)
		c, s := r.conn(t, 1, ringbuf.BlockProducer, 2, 3, 0)
		require.NoError(t, r.publish(t, 64, 1))
		require.NoError(t, r.publish(t, 64, 2))
		held, _ := s.mustPop() // held: 1; queued: 2
		require.NoError(t, r.publish(t, 64, 3))
		require.Equal(t, 3, c.Stats().Outstanding)
		// At the bound, nothing returned: waits for a return, times out.
		err := r.publish(t, 64, 4)
		require.ErrorIs(t, err, parallax.ErrTimeout)
		require.Equal(t, 3, c.Stats().Outstanding)
		require.Equal(t, uint64(1), c.Stats().Timeouts)
		require.True(t, c.Stats().Live)
		// A return makes room under the bound, but the ring is still full:
		// the push waits for space and times out; the delivery is undone.
		s.give(held)
		err = r.publish(t, 64, 5)
		require.ErrorIs(t, err, parallax.ErrTimeout)
		require.Equal(t, 2, c.Stats().Outstanding)
		require.Equal(t, 2, s.c.DataRing().Len())
		// The subscriber pops while Publish waits: it goes through.
		done := make(chan error, 1)
		go func() { done <- r.publish(t, 64, 6) }()
		require.Eventually(t, func() bool { return c.Stats().Outstanding == 3 }, 5*time.Second, time.Millisecond)
		ref, seq := s.mustPop()
		require.Equal(t, uint64(2), seq)
		s.give(ref)
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("publish did not complete after the pop")
		}
		for _, want := range []uint64{3, 6} {
			_, seq := s.mustPop()
			require.Equal(t, want, seq)
		}
	})
}

// TestBlockedPublishEndsOnClose: CloseConn and RemoveConn end a Publish
// waiting on a full block-producer ring, without an error, and RemoveConn
// returns only after it has stopped touching the connection.
func TestBlockedPublishEndsOnClose(t *testing.T) {
	t.Parallel()
	for _, remove := range []bool{false, true} {
		r := newRig(t, ownedpub.Options{BlockTimeout: time.Minute}, 64, 8)
		c, _ := r.conn(t, 1, ringbuf.BlockProducer, 2, 3, 0)
		require.NoError(t, r.publish(t, 64, 1))
		require.NoError(t, r.publish(t, 64, 2))
		done := make(chan error, 1)
		go func() { done <- r.publish(t, 64, 3) }()
		require.Eventually(t, func() bool { return c.Stats().Outstanding == 3 }, 5*time.Second, time.Millisecond)
		if remove {
			// The waiting Publish undoes its delivery before RemoveConn
			// reclaims: the third message never reached the ring.
			n, err := r.e.RemoveConn(c)
			require.NoError(t, err)
			require.Equal(t, 2, n)
		} else {
			r.e.CloseConn(c)
		}
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("publish still blocked")
		}
		if !remove {
			require.False(t, c.Stats().Live)
			require.Equal(t, 2, c.Stats().Outstanding, "the undelivered one is not outstanding")
			n, err := r.e.RemoveConn(c)
			require.NoError(t, err)
			require.Equal(t, 2, n)
		}
		require.Zero(t, r.e.Stats().InUse)
	}
}

// TestLIFOReuse: the most recently returned chunk is loaned next.
func TestLIFOReuse(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{DrainEvery: -1}, 64, 8)
	_, s := r.conn(t, 1, ringbuf.DiscardOldest, 4, 4, 0)
	for seq := uint64(1); seq <= 3; seq++ {
		require.NoError(t, r.publish(t, 64, seq))
	}
	var refs []parallax.ChunkRef
	for range 3 {
		ref, _ := s.mustPop()
		refs = append(refs, ref)
	}
	// Returned in the order 2, 0, 1: the last returned goes out first.
	for _, i := range []int{2, 0, 1} {
		s.give(refs[i])
	}
	r.e.Drain()
	for _, i := range []int{1, 0, 2} {
		l, err := r.e.Loan(64)
		require.NoError(t, err)
		require.Equal(t, refs[i].Slot(), l.Ref().Slot())
		require.NotEqual(t, refs[i].Gen(), l.Ref().Gen(), "a new generation")
	}
}

// TestHistoryReplay: a late connection gets up to min(asked, kept, bound)
// of the newest history entries, oldest first.
func TestHistoryReplay(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{History: 3}, 64, 16)
	for seq := uint64(1); seq <= 5; seq++ {
		require.NoError(t, r.publish(t, 64, seq))
	}
	require.Equal(t, 3, r.e.Stats().InUse, "history alone holds 3")
	for _, tc := range []struct {
		asked, bound int
		want         []uint64
	}{
		{2, 4, []uint64{4, 5}},
		{10, 4, []uint64{3, 4, 5}},
		{10, 2, []uint64{4, 5}},
		{0, 4, nil},
	} {
		c, s := r.conn(t, uint32(10+tc.asked+tc.bound), ringbuf.DiscardOldest, 4, tc.bound, tc.asked)
		require.Equal(t, tc.want, s.popAll(), "asked %d bound %d", tc.asked, tc.bound)
		r.e.Drain()
		n, err := r.e.RemoveConn(c)
		require.NoError(t, err)
		require.Zero(t, n)
	}
	require.Equal(t, 3, r.e.Stats().InUse)
}

// TestRemoveConnReclaims: whatever the subscriber did with its chunks
// (queued, held, returned and not drained), RemoveConn takes back exactly
// those, and nothing is in use afterwards.
func TestRemoveConnReclaims(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{DrainEvery: -1}, 64, 32)
	a, sa := r.conn(t, 1, ringbuf.DiscardOldest, 8, 9, 0)
	b, sb := r.conn(t, 2, ringbuf.BlockProducer, 8, 9, 0)
	for seq := uint64(1); seq <= 6; seq++ {
		require.NoError(t, r.publish(t, 64, seq))
	}
	ref, _ := sa.mustPop() // returned, not drained
	sa.give(ref)
	sa.mustPop() // held
	sb.popAll()  // all returned, not drained
	require.Equal(t, 6, r.e.Stats().InUse)
	n, err := r.e.RemoveConn(a)
	require.NoError(t, err)
	require.Equal(t, 6, n)
	require.Equal(t, 6, r.e.Stats().InUse, "b still has all six")
	n, err = r.e.RemoveConn(b)
	require.NoError(t, err)
	require.Equal(t, 6, n)
	st := r.e.Stats()
	require.Zero(t, st.InUse, "%+v", st)
	require.Zero(t, st.Units)
	require.Equal(t, 2*6, int(st.Reclaimed))
}

// TestLoanErrors: limits, sizes and spent loans.
func TestLoanErrors(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{MaxLoans: 2}, 64, 2)
	_, err := r.e.Loan(65)
	require.ErrorIs(t, err, ownedpub.ErrTooLarge)
	l1, err := r.e.Loan(8)
	require.NoError(t, err)
	require.Len(t, l1.Bytes(), 8)
	require.Equal(t, 64, cap(l1.Bytes()))
	l2, err := r.e.Loan(64)
	require.NoError(t, err)
	_, err = r.e.Loan(1)
	require.ErrorIs(t, err, parallax.ErrLimit)
	stale := l1
	require.NoError(t, r.e.Publish(&l1))
	require.ErrorIs(t, r.e.Publish(&l1), ownedpub.ErrNotLoaned)
	require.ErrorIs(t, r.e.Publish(&stale), ownedpub.ErrNotLoaned, "a copy of a published loan")
	require.ErrorIs(t, r.e.Release(&stale), ownedpub.ErrNotLoaned)
	require.NoError(t, r.e.Release(&l2))
	require.ErrorIs(t, r.e.Release(&l2), ownedpub.ErrNotLoaned)
	require.Zero(t, r.e.Stats().InUse)

	// Exhausted: every chunk out on a connection that returns nothing.
	r2 := newRig(t, ownedpub.Options{}, 64, 2)
	r2.conn(t, 1, ringbuf.DiscardOldest, 4, 4, 0)
	require.NoError(t, r2.publish(t, 64, 1))
	require.NoError(t, r2.publish(t, 64, 2))
	_, err = r2.e.Loan(64)
	require.ErrorIs(t, err, parallax.ErrPoolExhausted)
	require.True(t, errors.Is(err, parallax.ErrPoolExhausted))

	// AddConn validates its arguments against the segment.
	_, err = r2.e.AddConn(nil, 1, ringbuf.DiscardOldest, 0)
	require.ErrorIs(t, err, ownedpub.ErrInvalidArgument)
}

// TestConcurrentLoans runs Loan/Release on other goroutines while one
// publishes to a consumer goroutine: the accounting ends exact (-race).
func TestConcurrentLoans(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{MaxLoans: 8}, 64, 8+2*9)
	c, s := r.conn(t, 1, ringbuf.BlockProducer, 8, 9, 0)
	var stop atomic.Bool
	out := make(chan []uint64, 1)
	go runConsumer(s, &stop, out)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range 2000 {
				l, err := r.e.Loan(64)
				if errors.Is(err, parallax.ErrLimit) || errors.Is(err, parallax.ErrPoolExhausted) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if err := r.e.Release(&l); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	const n = 5000
	for seq := uint64(1); seq <= n; seq++ {
		l, err := r.e.Loan(64)
		for errors.Is(err, parallax.ErrLimit) {
			l, err = r.e.Loan(64)
		}
		require.NoError(t, err)
		l.Bytes()[0] = 0
		putSeq(l.Bytes(), seq)
		l.SetMeta(metaSeq(seq))
		require.NoError(t, r.e.Publish(&l))
	}
	wg.Wait()
	stop.Store(true)
	require.Len(t, <-out, n)
	r.e.Drain()
	require.Zero(t, r.e.Stats().InUse)
	_, err := r.e.RemoveConn(c)
	require.NoError(t, err)
}

// TestBoundWaitNotStolen: while a Publish waits for returns on a
// block-producer connection at its bound, a drain of every connection on
// another goroutine (Drain, or a Loan that found no free chunk) leaves that
// one alone, so the waiting Publish
// finds the returns and delivers.
func TestBoundWaitNotStolen(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{BlockTimeout: 5 * time.Second, Wait: ringbuf.WaitOptions{Spin: -1}}, 64, 16)
	c, s := r.conn(t, 1, ringbuf.BlockProducer, 2, 3, 0)
	require.NoError(t, r.publish(t, 64, 1))
	require.NoError(t, r.publish(t, 64, 2))
	held, _ := s.mustPop()
	require.NoError(t, r.publish(t, 64, 3)) // bound reached: 1 held, 2 and 3 queued
	done := make(chan error, 1)
	go func() { done <- r.publish(t, 64, 4) }()
	require.Eventually(t, func() bool { return s.c.ReturnWake().Sleeping() }, 5*time.Second, time.Millisecond)
	ref, _ := s.mustPop()
	// Returns without a wake, then a drain of everything it may drain.
	_, err := s.c.ReturnRing().TryPush(held)
	require.NoError(t, err)
	_, err = s.c.ReturnRing().TryPush(ref)
	require.NoError(t, err)
	r.e.Drain()
	require.NoError(t, s.c.ReturnWake().Notify())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("publish still waiting")
	}
	require.Equal(t, 2, c.Stats().Outstanding, "3 and 4")
}

// TestDrainFailureReturned: a forged return found by a drain that no
// Publish made (Engine.Drain, as Stats does) fails the connection, and the
// next Publish returns that failure once, so the caller can report it;
// the other connection keeps getting every message.
func TestDrainFailureReturned(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{DrainEvery: -1}, 64, 32)
	bad, sbad := r.conn(t, 1, ringbuf.BlockProducer, 8, 9, 0)
	_, sok := r.conn(t, 2, ringbuf.BlockProducer, 8, 9, 0)
	require.NoError(t, r.publish(t, 64, 1))
	sbad.give(parallax.ChunkRef(0x0000_0000_1f00_0077)) // never delivered
	r.e.Drain()
	require.Error(t, bad.Err())
	err := r.publish(t, 64, 2)
	var ce *ownedpub.ConnError
	require.ErrorAs(t, err, &ce, "the next Publish returns the failure found by Drain")
	require.Equal(t, uint32(1), ce.Conn)
	require.ErrorIs(t, err, parallax.ErrInvalidRef)
	require.NoError(t, r.publish(t, 64, 3), "returned once")
	require.Equal(t, []uint64{1, 2, 3}, sok.popAll())
}
