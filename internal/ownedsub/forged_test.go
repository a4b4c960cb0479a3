package ownedsub_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// hostile is a publisher the test plays by hand: its own data segments
// (index 0 granted to the subscriber at once, index 1 later) written
// directly, and raw pushes into connection data rings.
type hostile struct {
	mem   [2][]byte
	w, ro [2]*dataseg.Segment
	gen   uint32
}

const hostileCount = 8

func newHostile(t *testing.T) *hostile {
	h := &hostile{}
	for i := range 2 {
		d := dataseg.Desc{PubID: 1, Index: uint16(i), ChunkSize: 64, Count: hostileCount, PageSize: 4096}
		mem := make([]byte, dataseg.Size(d))
		h.mem[i] = mem
		var err error
		h.w[i], err = dataseg.Format(mem, d)
		require.NoError(t, err)
		h.ro[i], err = dataseg.Attach(mem, d, true)
		require.NoError(t, err)
	}
	return h
}

// chunk writes message seq into slot of segment seg and returns a ref to it.
func (h *hostile) chunk(seg, slot uint32, seq uint64) parallax.ChunkRef {
	msg(h.w[seg].Chunk(slot)[:64], 1, seq)
	h.w[seg].SetMeta(slot, dataseg.Meta{Length: 64, UserSeq: seq})
	h.gen++
	return parallax.MakeRef(seg, slot, h.gen)
}

// honest tracks the honest stream the taker sees meanwhile.
type honest struct {
	t    *testing.T
	last uint64
	n    int
}

// take takes until a sample of a connection other than the honest
// stream's arrives, or an error: honest samples are checked and released.
func (hs *honest) take(s *ownedsub.Engine, deadline time.Time) (ownedsub.Sample, error) {
	t := hs.t
	for {
		x, err := s.Take(context.Background(), ringbuf.WaitOptions{Deadline: deadline})
		if err != nil || x.Conn().PubID() != 2 {
			return x, err
		}
		id, seq := check(t, x.Bytes())
		require.Equal(t, uint32(2), id)
		require.Greater(t, seq, hs.last)
		hs.last = seq
		hs.n++
		require.NoError(t, x.Release())
	}
}

// TestForgedRefsBothRings: while an honest publisher streams on one
// connection, forged refs on other connections — garbage, another
// publisher's segment index, a slot out of range, generation 0, a length
// beyond the chunk, corrupt ring indices — fail only their connection
// with a ConnError, and nothing after them is taken from it; a ref naming
// a segment not granted yet is pending, then delivered once the segment is
// added. On the return rings, forged and double returns (written by a
// hostile subscriber) fail only that connection at the honest publisher,
// whose Free count ends exact; a double release through the engine pushes
// nothing. The honest stream arrives intact (CRC) and in order.
func TestForgedRefsBothRings(t *testing.T) {
	t.Parallel()
	s := ownedsub.New(ownedsub.Options{})
	const dataCap, maxHeld = 8, 2
	hp := newPub(t, 2, ownedpub.Options{MaxLoans: 1, DrainEvery: 4}, 64, 1+2*(dataCap+maxHeld))
	stream := connect(t, hp, s, 2, ringbuf.BlockProducer, dataCap, maxHeld, 0)
	victim := connect(t, hp, s, 3, ringbuf.DiscardOldest, dataCap, maxHeld, 0)
	// The subscriber engine closes the victim: it never takes from it or
	// pushes into its return ring, which the hostile subscriber below
	// writes instead (one producer per ring).
	s.CloseConn(victim.sc)

	var stop atomic.Bool
	var pubErrs []error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint64(1); !stop.Load(); seq++ {
			l, err := hp.e.Loan(64)
			if err != nil {
				pubErrs = append(pubErrs, err)
				return
			}
			msg(l.Bytes(), 2, seq)
			if err := hp.e.Publish(&l); err != nil {
				var ce *ownedpub.ConnError
				if !errors.As(err, &ce) || ce.Conn != victim.pc.ID() {
					pubErrs = append(pubErrs, err)
					return
				}
			}
		}
	}()
	hs := &honest{t: t}
	deadline := time.Now().Add(30 * time.Second)
	h := newHostile(t)

	// The hostile subscriber on the victim connection: a forged
	// generation, garbage, and a double return of a chunk the victim
	// really got (it pops one from its data ring itself).
	require.Eventually(t, func() bool { return victim.pubRC.DataRing().Len() > 0 }, 10*time.Second, 50*time.Microsecond)
	vsub, err := ringbuf.AttachConn(victim.mem, victim.pubRC.Desc())
	require.NoError(t, err)
	got, err := vsub.DataRing().TryPop()
	require.NoError(t, err)
	for _, r := range []parallax.ChunkRef{
		parallax.MakeRef(got.Pool(), got.Slot(), parallax.NextGen(got.Gen())),
		parallax.ChunkRef(0xdead_beef_cafe_f00d),
		got, got,
	} {
		_, err := vsub.ReturnRing().TryPush(r)
		require.NoError(t, err)
	}
	for victim.pc.Err() == nil { // keep the stream moving: the publisher drains as it publishes
		_, err := hs.take(s, time.Now().Add(time.Millisecond))
		require.ErrorIs(t, err, parallax.ErrTimeout)
		require.True(t, time.Now().Before(deadline), "the publisher never refused the forged returns")
	}
	require.ErrorIs(t, victim.pc.Err(), parallax.ErrInvalidRef)

	cases := []struct {
		name        string
		maxSegments int
		forge       func(l *link) // pushes the forged entry
		want        error
	}{
		{"garbage", 4, func(l *link) { push(t, l, 0xdead_beef_cafe_f00d) }, parallax.ErrInvalidRef},
		{"other publisher's index", 1, func(l *link) { push(t, l, parallax.MakeRef(1, 0, 1)) }, parallax.ErrInvalidRef},
		{"slot out of range", 4, func(l *link) { push(t, l, parallax.MakeRef(0, hostileCount, 1)) }, dataseg.ErrSlot},
		{"generation 0", 4, func(l *link) { push(t, l, parallax.MakeRef(0, 1, 0)) }, parallax.ErrInvalidRef},
		{"length beyond chunk", 4, func(l *link) {
			r := h.chunk(0, 3, 1)
			forgeLength(h, 3, 65)
			push(t, l, r)
		}, dataseg.ErrLength},
		{"corrupt indices", 4, func(l *link) {
			ring := ringbuf.ConnHeaderSize + 2*ringbuf.NotifierSize
			binary.LittleEndian.PutUint64(l.mem[ring+256:], 1000) // tail far ahead of head
		}, ringbuf.ErrCorruptRing},
	}
	for i, c := range cases {
		l := connectRaw(t, 1, s, uint32(10+i), ringbuf.BlockProducer, dataCap, maxHeld, c.maxSegments)
		require.NoError(t, s.AddSegment(l.sc, h.ro[0]))
		c.forge(l)
		// An honest ref behind it, never taken (a push into corrupt
		// indices fails at the publisher's side: ignored).
		_, _ = l.pubRC.DataRing().TryPush(h.chunk(0, 0, 100))
		_, err := hs.take(s, deadline)
		require.ErrorIs(t, err, ownedsub.ErrConnFailed, c.name)
		require.ErrorIs(t, err, c.want, c.name)
		var ce *ownedsub.ConnError
		require.ErrorAs(t, err, &ce, c.name)
		require.Equal(t, l.sc.ID(), ce.Conn, c.name)
		require.Equal(t, ownedsub.Failed, l.sc.State(), c.name)
		require.Zero(t, l.sc.Held(), c.name)
		// The failed connection is skipped from now on: only honest
		// samples arrive (hs.take returns any other).
		for hs.n < 10*(i+1) {
			_, err := hs.take(s, time.Now().Add(50*time.Millisecond))
			require.ErrorIs(t, err, parallax.ErrTimeout, c.name)
		}
		_, err = s.RemoveConn(l.sc)
		require.NoError(t, err)
	}

	// Pending: a ref into segment 1, not granted yet; then granted.
	l := connectRaw(t, 1, s, 30, ringbuf.BlockProducer, dataCap, maxHeld, 4)
	require.NoError(t, s.AddSegment(l.sc, h.ro[0]))
	push(t, l, h.chunk(1, 5, 201))
	push(t, l, h.chunk(0, 1, 202))
	_, err = hs.take(s, deadline)
	var pe *ownedsub.PendingError
	require.ErrorAs(t, err, &pe)
	require.ErrorIs(t, err, ownedsub.ErrPendingSegment)
	require.Equal(t, uint16(1), pe.Segment)
	require.Equal(t, uint32(1), pe.PubID)
	idx, ok := l.sc.Pending()
	require.True(t, ok)
	require.Equal(t, uint16(1), idx)
	for n := hs.n + 10; hs.n < n; { // the pending connection is skipped meanwhile
		_, err := hs.take(s, time.Now().Add(50*time.Millisecond))
		require.ErrorIs(t, err, parallax.ErrTimeout)
	}
	require.Equal(t, 1, l.pubRC.DataRing().Len(), "the connection was taken from while pending")
	require.NoError(t, s.AddSegment(l.sc, h.ro[1]))
	for _, want := range []uint64{201, 202} {
		x, err := hs.take(s, deadline)
		require.NoError(t, err)
		id, seq := check(t, x.Bytes())
		require.Equal(t, uint32(1), id)
		require.Equal(t, want, seq, "the pending ref comes first")
		require.NoError(t, x.Release())
		require.ErrorIs(t, x.Release(), ownedsub.ErrNotHeld)
	}
	require.Equal(t, 2, l.pubRC.ReturnRing().Len(), "one push per release, none for the double")
	require.NoError(t, l.sc.Err())

	// A pending ref the router refuses: FailConn.
	l = connectRaw(t, 1, s, 31, ringbuf.BlockProducer, dataCap, maxHeld, 4)
	push(t, l, parallax.MakeRef(3, 0, 1))
	_, err = hs.take(s, deadline)
	require.ErrorIs(t, err, ownedsub.ErrPendingSegment)
	require.ErrorIs(t, s.FailConn(l.sc, fmt.Errorf("get data segment 3: %w", parallax.ErrInvalidRef)), ownedsub.ErrConnFailed)
	require.Zero(t, l.sc.Held(), "the pending ref's entry is freed")

	stop.Store(true)
	// Unblock the publisher if it waits on the stream's full ring.
	for {
		x, err := s.TryTake()
		if err != nil {
			break
		}
		require.NoError(t, x.Release())
	}
	wg.Wait()
	require.Empty(t, pubErrs)
	require.Greater(t, hs.n, 70)
	require.NoError(t, stream.pc.Err())
	require.NoError(t, stream.sc.Err())
	// Exact accounting at the honest publisher: after removing the failed
	// victim (reclaim) and the stream, every chunk is free, once.
	_, err = hp.e.RemoveConn(victim.pc)
	require.NoError(t, err)
	for {
		x, err := s.TryTake()
		if err != nil {
			break
		}
		require.NoError(t, x.Release())
	}
	hp.e.Drain()
	_, err = hp.e.RemoveConn(stream.pc)
	require.NoError(t, err)
	st := hp.e.Stats()
	require.Equal(t, st.Chunks, st.Free)
	require.Zero(t, st.InUse)
}

// push pushes r into l's data ring as its publisher and wakes the taker.
func push(t *testing.T, l *link, r parallax.ChunkRef) {
	t.Helper()
	_, err := l.pubRC.DataRing().TryPush(r)
	require.NoError(t, err)
	require.NoError(t, l.pubRC.DataWake().Notify())
}

// forgeLength rewrites the length field of slot's chunk header in the
// hostile publisher's segment 0. (SetMeta refuses a length beyond the
// chunk, as an honest publisher would; a hostile one writes the bytes.)
func forgeLength(h *hostile, slot uint32, n uint32) {
	binary.LittleEndian.PutUint32(h.mem[0][dataseg.HeadersOffset+int(slot)*dataseg.ChunkHeaderSize:], n)
}
