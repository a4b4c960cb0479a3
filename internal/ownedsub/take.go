package ownedsub

import (
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// A Sample is one taken message: a view of the chunk's payload in the
// publisher's data segment (mapped read-only) and a private copy of its
// chunk header. It is a small value; copies name the same sample, and only
// one of them may be released (the others then get [ErrNotHeld]). The zero
// Sample is not held.
type Sample struct {
	buf   []byte
	meta  dataseg.Meta
	ref   parallax.ChunkRef
	c     *Conn
	entry int32
	epoch uint32
}

// Bytes returns the payload, Meta().Length bytes. It aliases the
// publisher's shared memory (read-only: do not write) and is only valid
// until the sample is released. Its bounds are fixed; its contents can
// change only if the publisher misbehaves.
func (x Sample) Bytes() []byte { return x.buf }

// Meta returns the chunk header as read once at take time.
func (x Sample) Meta() dataseg.Meta { return x.meta }

// Ref returns the chunk's ref, meaningful only with its connection.
func (x Sample) Ref() parallax.ChunkRef { return x.ref }

// Conn returns the connection the sample arrived on (nil for the zero
// Sample). Its PubID is the sample's origin.
func (x Sample) Conn() *Conn { return x.c }

// Release gives the sample back: one push of its ref into its connection's
// return ring and a wake of the publisher if it sleeps there. On an
// orphaned, failed or removed connection it only frees the held entry.
// Errors: [ErrNotHeld] (nothing pushed), or the connection's [*ConnError]
// if the push failed (a full return ring: the publisher broke its bound;
// the entry is freed anyway). Release allocates nothing unless the
// connection fails.
func (x Sample) Release() error {
	// Small enough to inline: the caller passes the four words release
	// needs, not a copy of the whole Sample.
	if x.c == nil {
		return ErrNotHeld
	}
	return x.c.release(x.ref, x.entry, x.epoch)
}

// release is Release of held entry entry, use epoch, holding ref.
func (c *Conn) release(ref parallax.ChunkRef, entry int32, epoch uint32) error {
	e := c.e
	e.lock()
	if entry < 0 || int(entry) >= len(c.held) || ref == parallax.NilRef ||
		c.held[entry].ref != ref || c.held[entry].epoch != epoch {
		e.unlock()
		return ErrNotHeld
	}
	c.held[entry].ref = parallax.NilRef
	c.free = append(c.free, entry)
	c.released++
	e.released++
	var err error
	if c.removed || c.err != nil || c.orphaned {
		c.dropped++
	} else {
		err = c.pushReturn(ref)
	}
	c.checkFinished()
	idle := e.closed.Load() && e.becameIdle()
	e.unlockReport()
	e.runIdle(idle)
	return err
}

// pushReturn pushes ref into c's return ring and wakes the publisher if it
// sleeps there. It returns c's error if either fails (and fails c). mu held.
func (c *Conn) pushReturn(ref parallax.ChunkRef) error {
	testhook.Stop("release.pre") // kill window: entry freed, ref not in the return ring
	if _, err := c.ret.TryPush(ref); err != nil {
		c.fail(fmt.Errorf("return %v: %w", ref, err))
		return c.err
	}
	testhook.Stop("release.post") // kill window: ref in the return ring, publisher not woken
	if err := c.retWake.Notify(); err != nil {
		c.fail(err)
		return c.err
	}
	return nil
}

// TryTake takes the next sample without waiting, from the connections in
// round-robin order (the one after the connection served last goes first,
// so none starves). It skips closing, failed and removed connections, a
// connection whose pending ref's segment is not added yet, and a
// connection holding MaxHeld samples (nothing is popped from it).
//
// Errors: [ErrEmpty] (nothing to take), [ErrHeldLimit] (data only on
// connections at their bound), [ErrClosed], a [*PendingError] (a ref waits
// for a segment; reported once per ref), a [*ConnError] (the connection
// failed: bad ref, corrupt ring; reported once, then the connection is
// skipped). TryTake allocates nothing except a failing connection's error.
func (e *Engine) TryTake() (Sample, error) {
	var x Sample
	err := e.TryTakeInto(&x)
	return x, err
}

// TryTakeInto is [Engine.TryTake] that stores the sample in *x (on error
// *x may be partly overwritten and must not be used): a caller that keeps
// its current sample in place avoids copying it out of a return value
// right after it was written.
func (e *Engine) TryTakeInto(x *Sample) error {
	if e.closed.Load() {
		return ErrClosed
	}
	e.lock()
	err := e.tryTake(x)
	e.unlockReport()
	return err
}

// tryTake is TryTake under mu; it fills *x (one copy of the Sample fewer
// per frame than returning it: ~15 % of a take-and-release in
// BenchmarkTakeRelease).
func (e *Engine) tryTake(x *Sample) error {
	conns := e.set.Load().conns
	n := len(conns)
	limited := false
	start := e.next
	if start >= n {
		start = 0 // the set shrank (RemoveConn) since the last take
	}
	for i := range n {
		j := start + i
		if j >= n {
			j -= n
		}
		c := conns[j]
		if c.err != nil || c.closing {
			continue
		}
		if c.pending != parallax.NilRef {
			if !c.segmentAdded(c.pending.Pool()) {
				continue
			}
			ref, entry := c.pending, c.pendEntry
			c.pending = parallax.NilRef
			c.updateSkip()
			e.next = j + 1
			return e.resolve(c, ref, entry, x)
		}
		if len(c.free) == 0 {
			if c.data.Len() > 0 {
				limited = true
			}
			continue
		}
		ref, err := c.data.TryPop()
		if err == ringbuf.ErrEmpty {
			if c.orphaned {
				c.checkFinished()
			}
			continue
		}
		e.next = j + 1
		if err != nil {
			c.fail(fmt.Errorf("pop data ring: %w", err))
			return c.err
		}
		testhook.Stop("take.popped") // kill window: popped, not recorded as held
		entry := c.free[len(c.free)-1]
		c.free = c.free[:len(c.free)-1]
		return e.resolve(c, ref, entry, x)
	}
	if limited {
		return ErrHeldLimit
	}
	return ErrEmpty
}

// resolve validates ref, popped from c, against c's publisher's segments
// and, if it names a chunk, records it in held entry entry (taken from the
// free stack by the caller) and returns its sample. A pending ref keeps
// the entry; a bad one frees it and fails c. mu held.
func (e *Engine) resolve(c *Conn, ref parallax.ChunkRef, entry int32, x *Sample) error {
	seg := ref.Pool()
	var s *dataseg.Segment
	if seg < uint32(len(c.segs)) {
		s = c.segs[seg]
	}
	switch {
	case ref.Gen() == 0:
		c.free = append(c.free, entry)
		return c.badRef(ref, "generation 0", parallax.ErrInvalidRef)
	case s == nil && seg < uint32(c.maxSegments):
		c.pending, c.pendEntry = ref, entry
		c.pendings++
		e.pendings++
		c.updateSkip()
		c.pendErr.Segment = uint16(seg)
		return &c.pendErr
	case s == nil:
		c.free = append(c.free, entry)
		return c.badRef(ref, fmt.Sprintf("segment index beyond the publisher's %d", c.maxSegments), parallax.ErrInvalidRef)
	}
	// The header is decoded in place (ViewInto), not copied: a 64-byte
	// copy of just-stored fields stalls on store forwarding.
	buf, err := s.ViewInto(ref.Slot(), &x.meta)
	if err != nil {
		c.free = append(c.free, entry)
		return c.badRef(ref, "view", err)
	}
	h := &c.held[entry]
	h.ref = ref
	h.epoch++
	c.taken++
	e.taken++
	x.buf, x.ref, x.c, x.entry, x.epoch = buf, ref, c, entry, h.epoch
	return nil
}
