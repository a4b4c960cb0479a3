package ownedsub

import (
	"fmt"
	"sync/atomic"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// MaxSegments is the most segment indices a publisher can have: the
// 16-bit segment field of a [parallax.ChunkRef].
const MaxSegments = 1 << 16

// State is a connection's place in the life cycle of design §4.1.
type State uint8

// Connection states.
const (
	Live     State = iota // taken from, released into
	Closing               // the subscriber closed: not taken from, releases push
	Orphaned              // the publisher is gone: taken from, releases push nothing
	Failed                // a ConnError: not taken from, releases push nothing
	Removed               // RemoveConn: the engine no longer touches the segment
)

func (s State) String() string {
	switch s {
	case Live:
		return "live"
	case Closing:
		return "closing"
	case Orphaned:
		return "orphaned"
	case Failed:
		return "failed"
	case Removed:
		return "removed"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// A Conn is the engine's side of one publisher–subscriber connection: the
// connection segment (the engine pops from its data ring and pushes into
// its return ring), the publisher's data segments by index and the held
// table.
//
// Use [Engine.AddConn]; the zero value is invalid. Its methods are safe for
// concurrent use; it must not be copied.
type Conn struct {
	e               *Engine
	id, pub         uint32
	maxHeld         int
	maxSegments     int
	rc              *ringbuf.Conn
	data, ret       *ringbuf.Ring
	wake, retWake   *ringbuf.Notifier
	pendErr         PendingError // reused: one pending ref at a time
	finishedHandled bool         // mu: Finished was queued

	// skip tells the waiting path (without mu) not to count this
	// connection's data as ready: it is pending, failed, closing or
	// removed. Process-local, any ordering (a stale value costs a
	// spurious wake-up or a re-check, never a lost take: TryTake decides
	// under mu).
	skip atomic.Bool
	// pendReady tells the waiting path that a pending ref's segment was
	// added: the kept ref is takeable although the data ring may be
	// empty. Same ordering rules as skip.
	pendReady atomic.Bool

	// Guarded by e.mu.
	segs      []*dataseg.Segment // by segment index; nil where not added
	held      []heldEntry        // maxHeld entries
	free      []int32            // indices of free held entries (a stack)
	pending   parallax.ChunkRef  // a popped ref waiting for its segment; NilRef if none
	pendEntry int32              // the held entry the pending ref reserves
	closing   bool
	orphaned  bool
	removed   bool
	err       *ConnError // first failure

	taken, released, dropped, badRefs, pendings uint64
}

// heldEntry is one slot of a connection's held table. ref is NilRef when
// the entry is free; epoch counts the entry's uses, so a Sample names one
// use exactly.
type heldEntry struct {
	ref   parallax.ChunkRef
	epoch uint32
}

// ID returns the connection id (the descriptor's ConnID).
func (c *Conn) ID() uint32 { return c.id }

// PubID returns the connection's publisher id (the descriptor's PubID).
func (c *Conn) PubID() uint32 { return c.pub }

// Err returns the connection's failure (a [*ConnError]), or nil.
func (c *Conn) Err() error {
	c.e.lock()
	defer c.e.unlock()
	if c.err == nil {
		return nil
	}
	return c.err
}

// Held returns the number of samples of c held now.
func (c *Conn) Held() int {
	c.e.lock()
	defer c.e.unlock()
	return c.nHeld()
}

// Pending returns the segment index a kept ref waits for, if any.
func (c *Conn) Pending() (segment uint16, ok bool) {
	c.e.lock()
	defer c.e.unlock()
	if c.pending == parallax.NilRef {
		return 0, false
	}
	return uint16(c.pending.Pool()), true
}

// nHeld is the number of entries in use (the pending ref holds one). mu held.
func (c *Conn) nHeld() int { return c.maxHeld - len(c.free) }

// State returns c's life-cycle state. Failed wins over closing and
// orphaned; removed over everything.
func (c *Conn) State() State {
	c.e.lock()
	defer c.e.unlock()
	return c.state()
}

func (c *Conn) state() State {
	switch {
	case c.removed:
		return Removed
	case c.err != nil:
		return Failed
	case c.closing:
		return Closing
	case c.orphaned:
		return Orphaned
	}
	return Live
}

// ConnStats is a snapshot of one connection.
type ConnStats struct {
	State    State
	Held     int    // samples held now (a pending ref counts)
	MaxHeld  int    // the bound on Held
	Taken    uint64 // samples handed out
	Released uint64 // samples released (pushed or, when orphaned, failed or removed, dropped)
	Dropped  uint64 // releases that pushed nothing (orphaned, failed or removed)
	BadRefs  uint64 // refs refused (0 or 1: the first fails the connection)
	Pendings uint64 // refs that named a segment not granted yet
}

// Stats returns c's counters.
func (c *Conn) Stats() ConnStats {
	c.e.lock()
	defer c.e.unlock()
	return ConnStats{
		State: c.state(), Held: c.nHeld(), MaxHeld: c.maxHeld,
		Taken: c.taken, Released: c.released, Dropped: c.dropped,
		BadRefs: c.badRefs, Pendings: c.pendings,
	}
}

// AddConn adds a connection whose segment rc the caller attached (as the
// subscriber side, mapped read-write). Its held table has the descriptor's
// MaxHeld entries. maxSegments is the number of segment indices the
// publisher may use (the router's max_segments_per_publisher, at most
// [MaxSegments]): a ref naming an index below it that was not added with
// [Engine.AddSegment] is pending, one at or beyond it is invalid. The
// connection starts live, with no data segment; add the publisher's
// segments before taking.
//
// AddConn allocates (the held table, a new wait set); it belongs on the
// control path. Errors wrap [ErrInvalidArgument].
func (e *Engine) AddConn(rc *ringbuf.Conn, maxSegments int) (*Conn, error) {
	if rc == nil {
		return nil, fmt.Errorf("add connection: nil segment: %w", ErrInvalidArgument)
	}
	d := rc.Desc()
	switch {
	case d.MaxHeld < 1 || d.MaxHeld > d.Bound:
		return nil, fmt.Errorf("add connection %d: max held %d not in [1, bound %d]: %w", d.ConnID, d.MaxHeld, d.Bound, ErrInvalidArgument)
	case maxSegments < 1 || maxSegments > MaxSegments:
		return nil, fmt.Errorf("add connection %d: max segments %d not in [1, %d]: %w", d.ConnID, maxSegments, MaxSegments, ErrInvalidArgument)
	}
	c := &Conn{
		e: e, id: d.ConnID, pub: d.PubID, maxHeld: int(d.MaxHeld), maxSegments: maxSegments,
		rc: rc, data: rc.DataRing(), ret: rc.ReturnRing(), wake: rc.DataWake(), retWake: rc.ReturnWake(),
		held: make([]heldEntry, d.MaxHeld), free: make([]int32, d.MaxHeld),
	}
	c.pendErr = PendingError{Conn: c.id, PubID: c.pub}
	for i := range c.free {
		c.free[i] = int32(len(c.free) - 1 - i) // entry 0 on top
	}
	e.lock()
	defer e.unlockReport()
	old := e.set.Load().conns
	for _, x := range old {
		if x.id == c.id {
			return nil, fmt.Errorf("add connection %d: already added: %w", c.id, ErrInvalidArgument)
		}
	}
	if e.closed.Load() {
		c.close() // added after Close: closing, and finished at once
	}
	conns := make([]*Conn, len(old), len(old)+1)
	copy(conns, old)
	e.publish(append(conns, c))
	return c, nil
}

// AddSegment adds one of c's publisher's data segments, attached
// read-only: the first ones, a growth segment, or the one a pending ref
// waits for (which TryTake then delivers first). The same Segment may be
// added to several connections of the same publisher. An index that is in
// use is replaced only after [Engine.RemoveSegment]. Errors wrap
// [ErrInvalidArgument] or are [ErrConnGone].
func (e *Engine) AddSegment(c *Conn, s *dataseg.Segment) error {
	if s == nil || !s.ReadOnly() {
		return fmt.Errorf("add segment: nil or writable segment (a subscriber maps its publisher's segments read-only): %w", ErrInvalidArgument)
	}
	d := s.Desc()
	e.lock()
	defer e.unlock()
	if err := e.own(c); err != nil {
		return err
	}
	switch {
	case d.PubID != c.pub:
		return fmt.Errorf("add segment %d of publisher %d to connection %d of publisher %d: %w", d.Index, d.PubID, c.id, c.pub, ErrInvalidArgument)
	case int(d.Index) >= c.maxSegments:
		return fmt.Errorf("add segment %d to connection %d: index beyond the publisher's %d segments: %w", d.Index, c.id, c.maxSegments, ErrInvalidArgument)
	case int(d.Index) < len(c.segs) && c.segs[d.Index] != nil:
		return fmt.Errorf("add segment %d to connection %d: index in use: %w", d.Index, c.id, ErrInvalidArgument)
	}
	segs := c.segs
	for len(segs) <= int(d.Index) {
		segs = append(segs, nil)
	}
	segs[d.Index] = s
	c.segs = segs
	if c.pending != parallax.NilRef && c.pending.Pool() == uint32(d.Index) {
		c.updateSkip()
		_ = c.wake.Notify() // a Take sleeping meanwhile: the kept ref is ready now
	}
	return nil
}

// RemoveSegment removes segment index from c (the publisher retired it).
// Refs naming it are pending again until an index reuse adds a new
// segment. It returns how many samples of that segment c still holds: the
// caller keeps the segment mapped until they are released. Errors:
// [ErrConnGone], or one wrapping [ErrInvalidArgument] for an index that is
// not added.
func (e *Engine) RemoveSegment(c *Conn, index uint16) (held int, err error) {
	e.lock()
	defer e.unlock()
	if err := e.own(c); err != nil {
		return 0, err
	}
	if int(index) >= len(c.segs) || c.segs[index] == nil {
		return 0, fmt.Errorf("remove segment %d from connection %d: not added: %w", index, c.id, ErrInvalidArgument)
	}
	c.segs[index] = nil
	return c.heldIn(index), nil
}

// HeldIn returns how many samples of segment index c holds (taken and not
// released), for example to know when a removed segment may be unmapped.
// A removed connection counts what it held at removal and was not
// released since.
func (e *Engine) HeldIn(c *Conn, index uint16) int {
	e.lock()
	defer e.unlock()
	return c.heldIn(index)
}

// heldIn counts c's held samples of segment index. mu held.
func (c *Conn) heldIn(index uint16) int {
	held := 0
	for _, h := range c.held {
		if h.ref != parallax.NilRef && h.ref.Pool() == uint32(index) && h.ref != c.pending {
			held++
		}
	}
	return held
}

// CloseConn turns c closing (the subscriber closed it): TryTake takes from
// it no more, releases still push, and [Options.Finished] runs once
// nothing is held (at once if nothing is). A pending ref is dropped (it
// never becomes a sample; the publisher reclaims it when the connection
// goes). Closing twice, or a removed connection, does nothing.
func (e *Engine) CloseConn(c *Conn) {
	e.lock()
	if e.own(c) == nil {
		c.close()
	}
	e.unlockReport()
}

// close is CloseConn under mu.
func (c *Conn) close() {
	if c.closing {
		return
	}
	c.closing = true
	c.dropPending()
	c.updateSkip()
	c.checkFinished()
}

// OrphanConn turns c orphaned (its publisher is gone): TryTake keeps taking
// what is queued in the data ring, releases push nothing, and
// [Options.Finished] runs once the data ring is empty and nothing is held
// (at once if so). A removed connection is left alone.
func (e *Engine) OrphanConn(c *Conn) {
	e.lock()
	if e.own(c) == nil && !c.orphaned {
		c.orphaned = true
		c.checkFinished()
	}
	e.unlockReport()
}

// FailConn fails c with err (for example: the router refused the segment a
// pending ref waits for): TryTake takes from it no more and releases push
// nothing. It returns the connection's [*ConnError] (the first failure if
// it had failed already), or [ErrConnGone].
func (e *Engine) FailConn(c *Conn, err error) error {
	e.lock()
	defer e.unlock()
	if e2 := e.own(c); e2 != nil {
		return e2
	}
	c.fail(err)
	return c.err
}

// RemoveConn ends c: the engine forgets it and no longer touches its
// connection segment, and a Take sleeping on its wake word has woken up
// when RemoveConn returns, so the caller may unmap the connection segment
// then. It returns how many samples of c are still held: their views stay
// valid while the caller keeps the data segments mapped, and their release
// pushes nothing. Errors: [ErrConnGone] for a removed connection or one of
// another engine.
func (e *Engine) RemoveConn(c *Conn) (held int, err error) {
	e.lock()
	if err := e.own(c); err != nil {
		e.unlock()
		return 0, err
	}
	c.removed = true
	c.dropPending()
	c.skip.Store(true)
	old := e.set.Load()
	conns := make([]*Conn, 0, len(old.conns))
	for _, x := range old.conns {
		if x != c {
			conns = append(conns, x)
		}
	}
	e.publish(conns)
	held = c.nHeld()
	// Dekker with the waiter: the new set (seq-cst store above) precedes
	// this load of the sleeping flag; the waiter stores sleeping and then
	// re-checks whether its set is current.
	_ = c.wake.Notify()
	gen := e.gen
	e.unlock()
	// A wait that still looks at c (an older set) ends after the wake
	// above; wait for it to leave.
	e.leaveSet(gen)
	return held, nil
}

// own checks that c is a live member of e. mu held.
func (e *Engine) own(c *Conn) error {
	if c == nil || c.e != e || c.removed {
		return ErrConnGone
	}
	return nil
}

// fail records err as c's first failure. mu held.
func (c *Conn) fail(err error) {
	if c.err != nil {
		return
	}
	c.err = &ConnError{Conn: c.id, PubID: c.pub, Err: err}
	c.dropPending()
	c.updateSkip()
}

// badRef fails c for ref. mu held.
func (c *Conn) badRef(ref parallax.ChunkRef, why string, err error) *ConnError {
	c.badRefs++
	c.e.badRefs++
	c.fail(fmt.Errorf("ref %v: %s: %w", ref, why, err))
	return c.err
}

// dropPending forgets a pending ref and frees its held entry. mu held.
func (c *Conn) dropPending() {
	if c.pending == parallax.NilRef {
		return
	}
	c.pending = parallax.NilRef
	c.free = append(c.free, c.pendEntry)
}

// updateSkip recomputes the waiting path's skip flag. mu held.
func (c *Conn) updateSkip() {
	stuck := c.pending != parallax.NilRef && !c.segmentAdded(c.pending.Pool())
	c.skip.Store(c.removed || c.err != nil || c.closing || stuck)
	c.pendReady.Store(c.pending != parallax.NilRef && !stuck)
}

// segmentAdded reports whether index has a segment. mu held.
func (c *Conn) segmentAdded(index uint32) bool {
	return index < uint32(len(c.segs)) && c.segs[index] != nil
}

// checkFinished queues c for Options.Finished when it needs nothing more.
// mu held.
func (c *Conn) checkFinished() {
	if c.finishedHandled || c.removed || c.nHeld() != 0 {
		return
	}
	if c.closing || (c.orphaned && c.err == nil && c.data.Len() == 0) {
		c.finishedHandled = true
		c.e.finishedQ = append(c.e.finishedQ, c)
	}
}
