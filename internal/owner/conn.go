package owner

import (
	"fmt"
	"math/bits"

	"github.com/parallax-ipc/parallax"
)

// Connection states.
const (
	connLive    uint8 = iota // deliveries and returns
	connClosing              // the subscriber closed: no deliveries, returns still drained
	connGone                 // reclaimed: nothing outstanding, nothing accepted
)

// A ConnTrack is a Tracker's view of one publisher–subscriber connection:
// the chunks delivered on it and not yet returned (one bit per chunk index,
// counted in Outstanding) and the cap on their number (Bound). The
// subscriber can see these chunks in its data ring, its hands or its return
// ring; the publisher's bits are the only record, so a return is accepted
// only if its bit is set, and a dead subscriber's chunks are exactly the set
// bits ([Tracker.ReclaimConn]).
//
// Use [Tracker.AddConn]; the zero value is invalid. A ConnTrack belongs to
// the Tracker that made it and shares its lock: it is not safe for
// concurrent use, and its accessors run under the publisher's mutex too.
type ConnTrack struct {
	t           *Tracker
	id          uint32
	delivered   bitset
	outstanding int
	bound       int
	state       uint8
	badReturns  uint64
}

// ID returns the connection id given to [Tracker.AddConn].
func (c *ConnTrack) ID() uint32 { return c.id }

// Outstanding returns the number of chunks delivered on c and not returned.
func (c *ConnTrack) Outstanding() int { return c.outstanding }

// Bound returns the cap on Outstanding.
func (c *ConnTrack) Bound() int { return c.bound }

// Live reports whether c accepts deliveries (not closing, not gone).
func (c *ConnTrack) Live() bool { return c.state == connLive }

// Gone reports whether c was reclaimed.
func (c *ConnTrack) Gone() bool { return c.state == connGone }

// BadReturns returns the number of returns refused on c.
func (c *ConnTrack) BadReturns() uint64 { return c.badReturns }

// AddConn starts tracking connection id with at most bound chunks
// outstanding (bound(c) of the design, ≥ 1). It allocates the delivered
// bitset; it belongs on the control path.
func (t *Tracker) AddConn(id uint32, bound int) (*ConnTrack, error) {
	if bound < 1 {
		return nil, fmt.Errorf("add connection %d: bound %d < 1: %w", id, bound, parallax.ErrLimit)
	}
	c := &ConnTrack{t: t, id: id, bound: bound}
	c.delivered.grow(len(t.chunks))
	t.conns = append(t.conns, c)
	return c, nil
}

// CloseConn stops deliveries on c (the subscriber closed); returns are still
// accepted until [Tracker.ReclaimConn]. Closing a closing or gone
// connection does nothing.
func (t *Tracker) CloseConn(c *ConnTrack) {
	if c.t == t && c.state == connLive {
		c.state = connClosing
	}
}

// Deliver records that chunk idx goes out on c: it sets c's bit and adds a
// unit to the chunk. The chunk must be loaned or in history (the publisher
// delivers while publishing, or replays history to a new connection).
// Errors: [ErrConnClosed]; [ErrNotLoaned]; [ErrDelivered] if c already has
// it; [ErrBound] if c has Bound chunks outstanding (drain c's return ring
// and retry). Deliver allocates nothing.
func (t *Tracker) Deliver(c *ConnTrack, idx uint32) error {
	if c.t != t || c.state != connLive {
		return ErrConnClosed
	}
	if int(idx) >= len(t.chunks) {
		return ErrNotLoaned
	}
	ch := &t.chunks[idx]
	if ch.state != stateLoaned && !ch.hist {
		return ErrNotLoaned
	}
	if c.delivered.has(idx) {
		return ErrDelivered
	}
	if c.outstanding >= c.bound {
		return ErrBound
	}
	c.delivered.set(idx)
	c.outstanding++
	t.outstanding++
	ch.fanout++
	t.units++
	return nil
}

// Return accepts ref back from c: a value the subscriber pushed into c's
// return ring, or one the publisher took back from c's data ring
// (discard-oldest). Both come from memory the subscriber can write, so Return
// validates before it changes anything: the segment exists, the slot is
// within it, the generation is not 0, c's bit for the chunk is set and the
// generation is the chunk's current one. Then it clears the bit and drops
// the unit, freeing the chunk if it was the last.
//
// A refused ref changes no chunk and frees nothing; the error is a
// [*ReturnError] (matching [parallax.ErrInvalidRef]) and is counted on c.
// The publisher reports the connection. A double return finds the bit clear
// ([parallax.ErrNotHeld]). Return allocates only when it refuses.
func (t *Tracker) Return(c *ConnTrack, ref parallax.ChunkRef) error {
	if c.t != t {
		return ErrConnClosed
	}
	seg, slot, gen := ref.Pool(), ref.Slot(), ref.Gen()
	if seg >= uint32(len(t.segs)) || !t.segs[seg].present || slot >= t.segs[seg].count || gen == 0 {
		return t.refuse(c, ref, parallax.ErrInvalidRef)
	}
	idx := t.segs[seg].base + slot
	if !c.delivered.has(idx) {
		return t.refuse(c, ref, parallax.ErrNotHeld)
	}
	if t.chunks[idx].gen != gen {
		return t.refuse(c, ref, parallax.ErrStaleRef)
	}
	c.delivered.clear(idx)
	c.outstanding--
	t.outstanding--
	t.returned++
	t.drop(idx)
	return nil
}

func (t *Tracker) refuse(c *ConnTrack, ref parallax.ChunkRef, reason error) error {
	c.badReturns++
	t.badReturns++
	return &ReturnError{Conn: c.id, Ref: ref, Reason: reason}
}

// ReclaimConn takes back every chunk outstanding on c, whatever the
// subscriber did with it (queued, held, returned but not drained), clears
// c and marks it gone, and returns how many chunks it took back. It is the
// whole of crash recovery for a dead or departed subscriber; the publisher
// calls it when the router reports the connection gone. Chunks are freed in
// ascending index order. Reclaiming a gone connection returns 0.
func (t *Tracker) ReclaimConn(c *ConnTrack) int {
	if c.t != t || c.state == connGone {
		return 0
	}
	n := 0
	for w, word := range c.delivered {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &^= 1 << b
			t.drop(uint32(w*64 + b))
			n++
		}
		c.delivered[w] = 0
	}
	t.outstanding -= c.outstanding
	c.outstanding = 0
	c.state = connGone
	t.reclaimed += uint64(n)
	for i, x := range t.conns {
		if x == c {
			t.conns[i] = t.conns[len(t.conns)-1]
			t.conns[len(t.conns)-1] = nil
			t.conns = t.conns[:len(t.conns)-1]
			break
		}
	}
	return n
}

// bitset is one bit per chunk index.
type bitset []uint64

func (b bitset) has(i uint32) bool { return int(i>>6) < len(b) && b[i>>6]&(1<<(i&63)) != 0 }
func (b bitset) set(i uint32)      { b[i>>6] |= 1 << (i & 63) }
func (b bitset) clear(i uint32)    { b[i>>6] &^= 1 << (i & 63) }

// grow makes room for n bits, keeping the set ones.
func (b *bitset) grow(n int) {
	words := (n + 63) / 64
	if words > len(*b) {
		*b = append(*b, make([]uint64, words-len(*b))...)
	}
}
