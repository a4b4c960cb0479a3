package ownedsub_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// TestStream runs two publishers, each on its own goroutine, into one
// subscriber engine that holds up to MaxHeld samples and releases the
// oldest: every message is intact and in order per publisher; with
// block-producer none is lost. Afterwards both publishers get every chunk
// back.
func TestStream(t *testing.T) {
	t.Parallel()
	for _, policy := range []ringbuf.Policy{ringbuf.DiscardOldest, ringbuf.BlockProducer} {
		for _, single := range []bool{false, true} {
			t.Run(fmt.Sprintf("policy=%v/single=%v", policy, single), func(t *testing.T) {
				t.Parallel()
				testStream(t, policy, single)
			})
		}
	}
}

func testStream(t *testing.T, policy ringbuf.Policy, single bool) {
	const n, dataCap, maxHeld, payload = 3000, 8, 4, 200
	s := ownedsub.New(ownedsub.Options{})
	pubs := []*pub{
		newPub(t, 1, ownedpub.Options{MaxLoans: 1, SingleGoroutine: single}, 256, 1+dataCap+maxHeld),
		newPub(t, 2, ownedpub.Options{MaxLoans: 1, SingleGoroutine: single}, 256, 1+dataCap+maxHeld),
	}
	links := []*link{
		connect(t, pubs[0], s, 1, policy, dataCap, maxHeld, 0),
		connect(t, pubs[1], s, 2, policy, dataCap, maxHeld, 0),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(1); seq <= n; seq++ {
				if err := p.publish(t, payload, seq); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	last := map[uint32]uint64{}
	count := map[uint32]int{}
	var held []ownedsub.Sample
	deadline := time.Now().Add(30 * time.Second)
	for last[1] != n || last[2] != n {
		x, err := s.Take(context.Background(), ringbuf.WaitOptions{Deadline: deadline})
		require.NoError(t, err)
		id, seq := check(t, x.Bytes())
		require.Equal(t, x.Conn().PubID(), id, "sample's origin is its connection's publisher")
		require.Greater(t, seq, last[id], "publisher %d reordered", id)
		require.Equal(t, seq, x.Meta().UserSeq)
		require.Equal(t, uint32(payload), x.Meta().Length)
		last[id] = seq
		count[id]++
		held = append(held, x)
		if len(held) == maxHeld {
			require.NoError(t, held[0].Release())
			held = held[1:]
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, x := range held {
		require.NoError(t, x.Release())
	}
	if policy == ringbuf.BlockProducer {
		require.Equal(t, n, count[1])
		require.Equal(t, n, count[2])
	}
	for i, p := range pubs {
		require.NoError(t, links[i].pc.Err())
		require.NoError(t, links[i].sc.Err())
		p.e.Drain()
		st := p.e.Stats()
		require.Equal(t, st.Chunks-st.InUse, st.Free)
		require.Equal(t, 0, links[i].pc.Stats().Outstanding, "publisher %d: every chunk returned", p.id)
		cs := links[i].sc.Stats()
		require.Equal(t, cs.Taken, cs.Released)
		require.Zero(t, cs.Held)
		require.Zero(t, cs.Dropped)
	}
	st := s.Stats()
	require.Equal(t, uint64(count[1]+count[2]), st.Taken)
	require.Zero(t, st.Held)
}

// TestHistoryReplay: a connection added after five publishes with history
// 3 delivers the newest three, oldest first.
func TestHistoryReplay(t *testing.T) {
	t.Parallel()
	s := ownedsub.New(ownedsub.Options{})
	p := newPub(t, 1, ownedpub.Options{MaxLoans: 1, History: 3}, 64, 1+3+8+4)
	for seq := uint64(1); seq <= 5; seq++ {
		require.NoError(t, p.publish(t, 64, seq))
	}
	connect(t, p, s, 1, ringbuf.DiscardOldest, 8, 4, 3)
	for _, want := range []uint64{3, 4, 5} {
		x, err := s.TryTake()
		require.NoError(t, err)
		_, seq := check(t, x.Bytes())
		require.Equal(t, want, seq)
		require.NoError(t, x.Release())
	}
	_, err := s.TryTake()
	require.ErrorIs(t, err, ownedsub.ErrEmpty)
}

// TestMaxHeld: at MaxHeld samples held, TryTake pops nothing from the
// connection and reports ErrHeldLimit; a release lets it take again.
func TestMaxHeld(t *testing.T) {
	t.Parallel()
	s := ownedsub.New(ownedsub.Options{})
	p := newPub(t, 1, ownedpub.Options{MaxLoans: 1}, 64, 1+8+2)
	l := connect(t, p, s, 1, ringbuf.BlockProducer, 8, 2, 0)
	for seq := uint64(1); seq <= 4; seq++ {
		require.NoError(t, p.publish(t, 64, seq))
	}
	a, err := s.TryTake()
	require.NoError(t, err)
	b, err := s.TryTake()
	require.NoError(t, err)
	ring := l.pubRC.DataRing()
	require.Equal(t, 2, ring.Len())
	_, err = s.TryTake()
	require.ErrorIs(t, err, ownedsub.ErrHeldLimit)
	require.ErrorIs(t, err, parallax.ErrLimit)
	require.Equal(t, 2, ring.Len(), "a take at the bound popped")
	_, err = s.Take(context.Background(), ringbuf.WaitOptions{Timeout: time.Second})
	require.ErrorIs(t, err, ownedsub.ErrHeldLimit, "Take at the bound returns at once")
	require.Equal(t, 2, l.sc.Held())
	require.NoError(t, a.Release())
	c, err := s.TryTake()
	require.NoError(t, err)
	_, seq := check(t, c.Bytes())
	require.Equal(t, uint64(3), seq)
	require.NoError(t, b.Release())
	require.NoError(t, c.Release())
}

// TestDoubleRelease: a second release of a sample, a release of a copy of a
// released sample (also after its held entry was reused) and of the zero
// Sample are ErrNotHeld and push nothing: the publisher gets back exactly
// the chunks released once.
func TestDoubleRelease(t *testing.T) {
	t.Parallel()
	s := ownedsub.New(ownedsub.Options{})
	p := newPub(t, 1, ownedpub.Options{MaxLoans: 1}, 64, 1+4+1)
	l := connect(t, p, s, 1, ringbuf.BlockProducer, 4, 1, 0)
	ret := l.pubRC.ReturnRing()
	require.NoError(t, p.publish(t, 64, 1))
	require.NoError(t, p.publish(t, 64, 2))
	x, err := s.TryTake()
	require.NoError(t, err)
	cp := x
	require.NoError(t, x.Release())
	require.Equal(t, 1, ret.Len())
	require.ErrorIs(t, x.Release(), ownedsub.ErrNotHeld)
	require.ErrorIs(t, cp.Release(), parallax.ErrNotHeld)
	y, err := s.TryTake() // reuses the only held entry
	require.NoError(t, err)
	require.ErrorIs(t, x.Release(), ownedsub.ErrNotHeld, "stale sample after its entry was reused")
	require.ErrorIs(t, ownedsub.Sample{}.Release(), ownedsub.ErrNotHeld)
	require.Equal(t, 1, ret.Len(), "a refused release pushed")
	require.NoError(t, y.Release())
	require.Equal(t, 2, ret.Len())
	p.e.Drain()
	require.NoError(t, l.pc.Err())
	st := p.e.Stats()
	require.Equal(t, st.Chunks, st.Free, "every chunk free, none twice")
	require.Zero(t, l.pc.Stats().Outstanding)
}

// TestOrphan: after the publisher is gone the engine keeps taking what is
// queued, releases push nothing, and Finished runs once the ring is empty
// and nothing is held.
func TestOrphan(t *testing.T) {
	t.Parallel()
	var finished []*ownedsub.Conn
	s := ownedsub.New(ownedsub.Options{Finished: func(c *ownedsub.Conn) { finished = append(finished, c) }})
	p := newPub(t, 1, ownedpub.Options{MaxLoans: 1}, 64, 1+4+2)
	l := connect(t, p, s, 1, ringbuf.BlockProducer, 4, 2, 0)
	for seq := uint64(1); seq <= 3; seq++ {
		require.NoError(t, p.publish(t, 64, seq))
	}
	x, err := s.TryTake()
	require.NoError(t, err)
	s.OrphanConn(l.sc)
	require.Equal(t, ownedsub.Orphaned, l.sc.State())
	require.NoError(t, x.Release())
	require.Zero(t, l.pubRC.ReturnRing().Len(), "release after orphan pushed")
	for _, want := range []uint64{2, 3} {
		y, err := s.TryTake()
		require.NoError(t, err)
		_, seq := check(t, y.Bytes())
		require.Equal(t, want, seq)
		require.Empty(t, finished)
		if want == 3 {
			_, err := s.TryTake()
			require.ErrorIs(t, err, ownedsub.ErrEmpty)
			require.Empty(t, finished, "finished with a sample held")
		}
		require.NoError(t, y.Release())
	}
	require.Equal(t, []*ownedsub.Conn{l.sc}, finished)
	require.Zero(t, l.pubRC.ReturnRing().Len())
	cs := l.sc.Stats()
	require.Equal(t, uint64(3), cs.Dropped)
	held, err := s.RemoveConn(l.sc)
	require.NoError(t, err)
	require.Zero(t, held)
	_, err = s.RemoveConn(l.sc)
	require.ErrorIs(t, err, ownedsub.ErrConnGone)
}

// TestClosing: a closing connection is not taken from, its releases still
// push, and Finished runs when its last sample is released.
func TestClosing(t *testing.T) {
	t.Parallel()
	var finished []*ownedsub.Conn
	s := ownedsub.New(ownedsub.Options{Finished: func(c *ownedsub.Conn) { finished = append(finished, c) }})
	p := newPub(t, 1, ownedpub.Options{MaxLoans: 1}, 64, 1+4+2)
	l := connect(t, p, s, 1, ringbuf.BlockProducer, 4, 2, 0)
	for seq := uint64(1); seq <= 3; seq++ {
		require.NoError(t, p.publish(t, 64, seq))
	}
	x, err := s.TryTake()
	require.NoError(t, err)
	y, err := s.TryTake()
	require.NoError(t, err)
	s.CloseConn(l.sc)
	require.Equal(t, ownedsub.Closing, l.sc.State())
	_, err = s.TryTake()
	require.ErrorIs(t, err, ownedsub.ErrEmpty, "took from a closing connection")
	require.Equal(t, 1, l.pubRC.DataRing().Len())
	require.NoError(t, x.Release())
	require.Equal(t, 1, l.pubRC.ReturnRing().Len(), "a closing connection's release pushes")
	require.Empty(t, finished)
	require.NoError(t, y.Release())
	require.Equal(t, []*ownedsub.Conn{l.sc}, finished)
	require.Equal(t, 2, l.pubRC.ReturnRing().Len())
	// The publisher's side: it reclaims the queued one and the returns.
	n, err := p.e.RemoveConn(l.pc)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	st := p.e.Stats()
	require.Equal(t, st.Chunks, st.Free)

	// A connection closed with nothing held finishes at once.
	s2 := ownedsub.New(ownedsub.Options{Finished: func(c *ownedsub.Conn) { finished = append(finished, c) }})
	l2 := connect(t, newPub(t, 2, ownedpub.Options{}, 64, 8), s2, 2, ringbuf.BlockProducer, 4, 2, 0)
	s2.Close()
	require.Equal(t, l2.sc, finished[len(finished)-1])
	_, err = s2.TryTake()
	require.ErrorIs(t, err, ownedsub.ErrClosed)
}

// TestTakeWaits: Take sleeps until a publisher on another goroutine
// publishes, times out with ErrTimeout, and Close ends it.
func TestTakeWaits(t *testing.T) {
	t.Parallel()
	for _, conns := range []int{1, 3} {
		t.Run(fmt.Sprintf("conns=%d", conns), func(t *testing.T) {
			t.Parallel()
			s := ownedsub.New(ownedsub.Options{})
			var ps []*pub
			for i := range conns {
				p := newPub(t, uint32(i+1), ownedpub.Options{MaxLoans: 1}, 64, 8)
				connect(t, p, s, uint32(i+1), ringbuf.BlockProducer, 4, 2, 0)
				ps = append(ps, p)
			}
			_, err := s.Take(context.Background(), ringbuf.WaitOptions{Timeout: 5 * time.Millisecond})
			require.ErrorIs(t, err, parallax.ErrTimeout)
			done := make(chan error, 1)
			go func() { done <- ps[len(ps)-1].publish(t, 64, 7) }()
			x, err := s.Take(context.Background(), ringbuf.WaitOptions{Spin: -1, Timeout: 10 * time.Second})
			require.NoError(t, err)
			_, seq := check(t, x.Bytes())
			require.Equal(t, uint64(7), seq)
			require.NoError(t, <-done)
			require.NoError(t, x.Release())

			ended := make(chan error, 1)
			go func() {
				_, err := s.Take(context.Background(), ringbuf.WaitOptions{Spin: -1})
				ended <- err
			}()
			waitSleeping(t, s)
			s.Close()
			require.ErrorIs(t, <-ended, ownedsub.ErrClosed)
		})
	}
}

// waitSleeping waits until some connection's taker announced sleep.
func waitSleeping(t *testing.T, s *ownedsub.Engine) {
	t.Helper()
	require.Eventually(t, func() bool { return sleeping(s) }, 10*time.Second, 100*time.Microsecond)
}

// sleeping reports whether the taker announced sleep on some connection.
func sleeping(s *ownedsub.Engine) bool {
	ns, _ := s.Notifiers(nil)
	for _, n := range ns {
		if n.Sleeping() {
			return true
		}
	}
	return false
}

// TestRemoveConnWakesWaiter: RemoveConn of a connection a Take sleeps on
// returns (the wait moves to the remaining connections), and the Take
// then gets a message from another connection.
func TestRemoveConnWakesWaiter(t *testing.T) {
	t.Parallel()
	s := ownedsub.New(ownedsub.Options{})
	p1 := newPub(t, 1, ownedpub.Options{MaxLoans: 1}, 64, 8)
	p2 := newPub(t, 2, ownedpub.Options{MaxLoans: 1}, 64, 8)
	l1 := connect(t, p1, s, 1, ringbuf.BlockProducer, 4, 2, 0)
	connect(t, p2, s, 2, ringbuf.BlockProducer, 4, 2, 0)
	got := make(chan error, 1)
	go func() {
		x, err := s.Take(context.Background(), ringbuf.WaitOptions{Spin: -1, Timeout: 20 * time.Second})
		if err == nil {
			if x.Conn().PubID() != 2 {
				err = fmt.Errorf("sample of publisher %d", x.Conn().PubID())
			}
			err = errors.Join(err, x.Release())
		}
		got <- err
	}()
	waitSleeping(t, s)
	held, err := s.RemoveConn(l1.sc)
	require.NoError(t, err)
	require.Zero(t, held)
	clear(l1.mem) // as an unmap would: the waiter must not look any more
	require.NoError(t, p2.publish(t, 64, 1))
	require.NoError(t, <-got)
}

// TestManyConns: with more connections than futex_waitv takes (128), a
// message on the last one still ends a sleeping Take (within a 1 ms slice).
func TestManyConns(t *testing.T) {
	t.Parallel()
	s := ownedsub.New(ownedsub.Options{})
	p := newPub(t, 1, ownedpub.Options{MaxLoans: 1}, 64, 8)
	const n = 130
	var last *link
	for i := range n {
		last = connectRaw(t, 1, s, uint32(i+1), ringbuf.BlockProducer, 1, 1, 1)
		require.NoError(t, s.AddSegment(last.sc, p.ro))
	}
	l, err := p.e.Loan(64)
	require.NoError(t, err)
	msg(l.Bytes(), 1, 1)
	ref := l.Ref()
	require.NoError(t, p.e.Publish(&l)) // no connection in the engine: kept only
	go func() {
		for end := time.Now().Add(10 * time.Second); !sleeping(s) && time.Now().Before(end); {
			time.Sleep(100 * time.Microsecond)
		}
		_, _ = last.pubRC.DataRing().TryPush(ref)
		_ = last.pubRC.DataWake().Notify()
	}()
	x, err := s.Take(context.Background(), ringbuf.WaitOptions{Spin: -1, Timeout: 20 * time.Second})
	require.NoError(t, err)
	require.Equal(t, last.sc, x.Conn())
	require.NoError(t, x.Release())
}

// TestRoundRobin: takes alternate between connections with data (none
// starves), and removing connections behind the round-robin position
// leaves the engine taking from the rest.
func TestRoundRobin(t *testing.T) {
	t.Parallel()
	s := ownedsub.New(ownedsub.Options{})
	var ls []*link
	for i := range 3 {
		p := newPub(t, uint32(i+1), ownedpub.Options{MaxLoans: 1}, 64, 1+8+2)
		ls = append(ls, connect(t, p, s, uint32(i+1), ringbuf.BlockProducer, 8, 2, 0))
		for seq := uint64(1); seq <= 4; seq++ {
			require.NoError(t, p.publish(t, 64, seq))
		}
	}
	for round := uint64(1); round <= 3; round++ {
		for i := range 3 {
			x, err := s.TryTake()
			require.NoError(t, err)
			id, seq := check(t, x.Bytes())
			require.Equal(t, uint32(i+1), id, "round %d", round)
			require.Equal(t, round, seq)
			require.NoError(t, x.Release())
		}
	}
	// The next take would start after connection 3: remove 3 and 2.
	for _, l := range ls[1:] {
		_, err := s.RemoveConn(l.sc)
		require.NoError(t, err)
	}
	x, err := s.TryTake()
	require.NoError(t, err)
	id, seq := check(t, x.Bytes())
	require.Equal(t, uint32(1), id)
	require.Equal(t, uint64(4), seq)
	require.NoError(t, x.Release())
	_, err = s.TryTake()
	require.ErrorIs(t, err, ownedsub.ErrEmpty)
}

// TestReturnRingFull: a release into a full return ring (a publisher that
// broke its bound never drained it) fails the connection instead of
// waiting; the entry is freed and later releases push nothing.
func TestReturnRingFull(t *testing.T) {
	t.Parallel()
	s := ownedsub.New(ownedsub.Options{})
	h := newHostile(t)
	l := connectRaw(t, 1, s, 1, ringbuf.BlockProducer, 4, 2, 1)
	require.NoError(t, s.AddSegment(l.sc, h.ro[0]))
	push(t, l, h.chunk(0, 0, 1))
	push(t, l, h.chunk(0, 1, 2))
	x, err := s.TryTake()
	require.NoError(t, err)
	y, err := s.TryTake()
	require.NoError(t, err)
	// Fill the return ring as the publisher side would never let happen.
	sub, err := ringbuf.AttachConn(l.mem, l.pubRC.Desc())
	require.NoError(t, err)
	for sub.ReturnRing().Len() < sub.ReturnRing().Cap() {
		_, err := sub.ReturnRing().TryPush(parallax.MakeRef(0, 7, 1))
		require.NoError(t, err)
	}
	err = x.Release()
	require.ErrorIs(t, err, ownedsub.ErrConnFailed)
	require.ErrorIs(t, err, ringbuf.ErrFull)
	require.Equal(t, ownedsub.Failed, l.sc.State())
	require.NoError(t, y.Release(), "a failed connection's release frees the entry, pushes nothing")
	require.Zero(t, l.sc.Held())
	require.Equal(t, uint64(1), l.sc.Stats().Dropped)
}

// TestRemoveSegment: retiring a segment reports the samples of it still
// held; a ref naming it afterwards is pending until a segment with that
// index is added again (index reuse).
func TestRemoveSegment(t *testing.T) {
	t.Parallel()
	s := ownedsub.New(ownedsub.Options{})
	h := newHostile(t)
	l := connectRaw(t, 1, s, 1, ringbuf.BlockProducer, 4, 2, 2)
	require.NoError(t, s.AddSegment(l.sc, h.ro[0]))
	require.NoError(t, s.AddSegment(l.sc, h.ro[1]))
	require.ErrorIs(t, s.AddSegment(l.sc, h.ro[1]), ownedsub.ErrInvalidArgument, "index in use")
	require.ErrorIs(t, s.AddSegment(l.sc, h.w[0]), ownedsub.ErrInvalidArgument, "writable")
	push(t, l, h.chunk(1, 2, 1))
	x, err := s.TryTake()
	require.NoError(t, err)
	held, err := s.RemoveSegment(l.sc, 1)
	require.NoError(t, err)
	require.Equal(t, 1, held)
	_, err = s.RemoveSegment(l.sc, 1)
	require.ErrorIs(t, err, ownedsub.ErrInvalidArgument)
	require.NoError(t, x.Release())
	push(t, l, h.chunk(1, 3, 2))
	_, err = s.TryTake()
	require.ErrorIs(t, err, ownedsub.ErrPendingSegment)
	require.NoError(t, s.AddSegment(l.sc, h.ro[1]))
	y, err := s.TryTake()
	require.NoError(t, err)
	_, seq := check(t, y.Bytes())
	require.Equal(t, uint64(2), seq)
	require.NoError(t, y.Release())
	st := l.sc.Stats()
	require.Equal(t, uint64(2), st.Taken)
	require.Equal(t, uint64(1), st.Pendings)
}

// TestTakeSleepAllocs: a Take that sleeps on the futex (context.Background,
// no timeout) and is woken by a publish allocates nothing.
func TestTakeSleepAllocs(t *testing.T) {
	s := ownedsub.New(ownedsub.Options{})
	p := newPub(t, 1, ownedpub.Options{MaxLoans: 1}, 64, 1+4+2)
	connect(t, p, s, 1, ringbuf.BlockProducer, 4, 2, 0)
	ns, _ := s.Notifiers(nil)
	req := make(chan struct{})
	defer close(req)
	go func() {
		var seq uint64
		for range req {
			for !ns[0].Sleeping() {
				runtime.Gosched()
			}
			seq++
			l, err := p.e.Loan(64)
			if err != nil {
				panic(err)
			}
			msg(l.Bytes(), 1, seq)
			if err := p.e.Publish(&l); err != nil {
				panic(err)
			}
		}
	}()
	var x ownedsub.Sample
	allocs := testing.AllocsPerRun(20, func() {
		req <- struct{}{}
		var err error
		x, err = s.Take(context.Background(), ringbuf.WaitOptions{Spin: -1})
		if err == nil {
			err = x.Release()
		}
		if err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs)
	require.Positive(t, ns[0].Stats().Sleeps, "the takes slept")
}

// TestConcurrentRelease: samples taken on one goroutine are released on
// another while the taker keeps taking (and sleeping), and connections
// come and go meanwhile: every message arrives intact, every release
// pushes once, and the publishers get every chunk back.
func TestConcurrentRelease(t *testing.T) {
	t.Parallel()
	const n, dataCap, maxHeld = 2000, 8, 4
	s := ownedsub.New(ownedsub.Options{})
	pubs := []*pub{
		newPub(t, 1, ownedpub.Options{MaxLoans: 1}, 64, 1+dataCap+maxHeld),
		newPub(t, 2, ownedpub.Options{MaxLoans: 1}, 64, 1+dataCap+maxHeld),
	}
	links := []*link{
		connect(t, pubs[0], s, 1, ringbuf.BlockProducer, dataCap, maxHeld, 0),
		connect(t, pubs[1], s, 2, ringbuf.BlockProducer, dataCap, maxHeld, 0),
	}
	rel := make(chan ownedsub.Sample, 2*maxHeld)
	relErr := make(chan error, 1)
	go func() {
		var first error
		for x := range rel {
			if err := x.Release(); err != nil && first == nil {
				first = err
			}
		}
		relErr <- first
	}()
	pubErr := make(chan error, 2)
	for _, p := range pubs {
		go func() {
			for seq := uint64(1); seq <= n; seq++ {
				l, err := p.e.Loan(64)
				if err != nil {
					pubErr <- err
					return
				}
				msg(l.Bytes(), p.id, seq)
				if err := p.e.Publish(&l); err != nil {
					pubErr <- err
					return
				}
			}
			pubErr <- nil
		}()
	}
	// Connections that come and go while the taker waits and takes.
	d := ringbuf.ConnDesc{ConnID: 100, PubID: 9, SubID: 100, Policy: ringbuf.BlockProducer,
		DataCap: 1, ReturnCap: 2, MaxHeld: 1, Bound: 2}
	cmem := make([]byte, ringbuf.ConnSize(1, 2))
	_, err := ringbuf.FormatConn(cmem, d)
	require.NoError(t, err)
	churn := make(chan struct{})
	churned := make(chan error, 1)
	go func() {
		for {
			select {
			case <-churn:
				churned <- nil
				return
			default:
			}
			rc, err := ringbuf.AttachConn(cmem, d)
			if err == nil {
				var c *ownedsub.Conn
				if c, err = s.AddConn(rc, 1); err == nil {
					_, err = s.RemoveConn(c)
				}
			}
			if err != nil {
				churned <- err
				return
			}
		}
	}()
	last := map[uint32]uint64{}
	deadline := time.Now().Add(30 * time.Second)
	for last[1] != n || last[2] != n {
		x, err := s.Take(context.Background(), ringbuf.WaitOptions{Deadline: deadline})
		if errors.Is(err, ownedsub.ErrHeldLimit) {
			runtime.Gosched() // the releaser is behind
			continue
		}
		require.NoError(t, err)
		id, seq := check(t, x.Bytes())
		require.Equal(t, last[id]+1, seq)
		last[id] = seq
		rel <- x
	}
	close(churn)
	require.NoError(t, <-churned)
	close(rel)
	require.NoError(t, <-relErr)
	require.NoError(t, <-pubErr)
	require.NoError(t, <-pubErr)
	for i, p := range pubs {
		p.e.Drain()
		require.Zero(t, links[i].pc.Stats().Outstanding)
		st := p.e.Stats()
		require.Equal(t, st.Chunks, st.Free)
	}
	require.Equal(t, uint64(2*n), s.Stats().Released)
}

// TestTakeWithoutConns: a Take on an engine without connections waits for
// one (it wakes when AddConn adds it), ends with an error wrapping
// ErrTimeout at a ctx or option deadline, and with ErrClosed at Close.
func TestTakeWithoutConns(t *testing.T) {
	t.Parallel()
	s := ownedsub.New(ownedsub.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	_, err := s.Take(ctx, ringbuf.WaitOptions{})
	require.ErrorIs(t, err, parallax.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = s.Take(context.Background(), ringbuf.WaitOptions{Timeout: 5 * time.Millisecond})
	require.ErrorIs(t, err, parallax.ErrTimeout)

	got := make(chan error, 1)
	go func() {
		x, err := s.Take(context.Background(), ringbuf.WaitOptions{Spin: -1, Timeout: 20 * time.Second})
		if err == nil {
			_, seq := check(t, x.Bytes())
			if seq != 5 {
				err = fmt.Errorf("seq %d", seq)
			}
			err = errors.Join(err, x.Release())
		}
		got <- err
	}()
	p := newPub(t, 1, ownedpub.Options{MaxLoans: 1}, 64, 8)
	connect(t, p, s, 1, ringbuf.BlockProducer, 4, 2, 0)
	require.NoError(t, p.publish(t, 64, 5))
	require.NoError(t, <-got)

	s2 := ownedsub.New(ownedsub.Options{})
	ended := make(chan error, 1)
	go func() {
		_, err := s2.Take(context.Background(), ringbuf.WaitOptions{})
		ended <- err
	}()
	s2.Close()
	require.ErrorIs(t, <-ended, ownedsub.ErrClosed)
}
