package ownedpub

import (
	"fmt"
	"sync/atomic"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/owner"
	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// A Conn is the engine's side of one publisher–subscriber connection: the
// connection segment (the engine pushes into its data ring and drains its
// return ring) and its [owner.ConnTrack].
//
// Use [Engine.AddConn]; the zero value is invalid. Its methods are safe for
// concurrent use; it must not be copied.
type Conn struct {
	e      *Engine
	rc     *ringbuf.Conn
	ct     *owner.ConnTrack
	data   *ringbuf.Ring
	wake   *ringbuf.Notifier
	policy ringbuf.Policy

	// closed is set by CloseConn and RemoveConn: it ends a Publish waiting
	// on this connection. Process-local; any ordering (the waiter re-checks
	// it after every wake, and the closer wakes it after setting it).
	closed atomic.Bool
	// gone is set by RemoveConn before it wakes the waits: a LoanWait
	// asleep on the return wake leaves (a closing connection's returns
	// are still worth waiting for, so closed does not end that sleep).
	gone atomic.Bool
	// retReady is the return-wake readiness check, built once so a wait
	// allocates no closure.
	retReady func() bool
	// wctx is the context of Push waits on the data ring, reused (guarded
	// by the blocked flag: one waiter at a time).
	wctx waitCtx
	// The block-producer spin (spinPush), guarded like wctx: spinTry is
	// built once so a spin allocates nothing.
	spinTry    func() bool
	spinRef    parallax.ChunkRef
	spinPushed bool
	spinErr    error

	// Guarded by e.mu.
	err     error // first failure (*ConnError); deliveries and drains stop
	pushing bool  // a Publish waits on this connection with e.mu released
	// sleepers counts the LoanWait calls asleep on this connection's
	// return wake with e.mu released: RemoveConn waits for them too.
	sleepers int
	// wakePending: a PublishBatch pushed to this connection and has not
	// woken its subscriber yet.
	wakePending bool
	removed     bool
	delivered   uint64
	discarded   uint64
	timeouts    uint64
	returned    uint64 // refs the subscriber returned and drain accepted (counted per batch)
}

// ID returns the connection id (the descriptor's ConnID).
func (c *Conn) ID() uint32 { return c.rc.Desc().ConnID }

// Err returns the connection's failure (a [*ConnError]), or nil.
func (c *Conn) Err() error {
	c.e.lock()
	defer c.e.unlock()
	return c.err
}

// ConnStats is a snapshot of one connection.
type ConnStats struct {
	Outstanding int    // chunks delivered and not returned
	Bound       int    // cap on Outstanding
	Live        bool   // deliveries go to it (not closing, failed or removed)
	Delivered   uint64 // chunks delivered (including history replays)
	Discarded   uint64 // entries taken back by discard-oldest pushes
	Timeouts    uint64 // block-producer deliveries that timed out
	Returned    uint64 // chunks the subscriber gave back and the engine took back (drained)
	BadReturns  uint64 // refs refused
}

// Stats returns c's counters.
func (c *Conn) Stats() ConnStats {
	c.e.lock()
	defer c.e.unlock()
	return ConnStats{
		Outstanding: c.ct.Outstanding(), Bound: c.ct.Bound(), Live: c.ct.Live(),
		Delivered: c.delivered, Discarded: c.discarded, Timeouts: c.timeouts,
		Returned: c.returned, BadReturns: c.ct.BadReturns(),
	}
}

// AddConn adds a connection whose segment rc the caller attached (as the
// publisher side), with at most bound chunks outstanding (design §1.3:
// 1 ≤ bound ≤ the return ring's capacity, so an honest subscriber's return
// push never fails), the data ring's policy (which must match rc's) and
// the number of history samples the subscriber asked for. It replays up to
// min(history, kept, bound) of the newest history entries, oldest first;
// a block-producer ring that fills stops the replay (AddConn never waits).
//
// AddConn allocates (the delivered bitset); it belongs on the control path.
// Errors wrap [ErrInvalidArgument].
func (e *Engine) AddConn(rc *ringbuf.Conn, bound int, policy ringbuf.Policy, history int) (*Conn, error) {
	if rc == nil {
		return nil, fmt.Errorf("add connection: nil segment: %w", ErrInvalidArgument)
	}
	d := rc.Desc()
	switch {
	case policy != d.Policy || policy != rc.DataRing().Policy():
		return nil, fmt.Errorf("add connection %d: policy %v, segment says %v: %w", d.ConnID, policy, d.Policy, ErrInvalidArgument)
	case bound < 1 || bound > int(d.ReturnCap):
		return nil, fmt.Errorf("add connection %d: bound %d not in [1, return capacity %d]: %w", d.ConnID, bound, d.ReturnCap, ErrInvalidArgument)
	case history < 0:
		return nil, fmt.Errorf("add connection %d: history %d < 0: %w", d.ConnID, history, ErrInvalidArgument)
	}
	c := &Conn{e: e, rc: rc, data: rc.DataRing(), wake: rc.DataWake(), policy: policy}
	ret := rc.ReturnRing()
	c.retReady = func() bool { return ret.Len() > 0 || c.closed.Load() }
	c.wctx.c = c
	c.spinTry = c.trySpinPush

	e.lock()
	defer e.unlock()
	ct, err := e.tr.AddConn(d.ConnID, bound)
	if err != nil {
		return nil, fmt.Errorf("add connection %d: %w", d.ConnID, err)
	}
	c.ct = ct
	if n := int(d.ReturnCap); n > len(e.batch) {
		e.batch = make([]parallax.ChunkRef, n)
	}
	conns := make([]*Conn, len(e.conns), len(e.conns)+1)
	copy(conns, e.conns)
	e.conns = append(conns, c)
	e.replay(c, history)
	return c, nil
}

// replay delivers up to min(history, kept, bound) of the newest history
// entries on c, oldest first, without waiting. mu held.
func (e *Engine) replay(c *Conn, history int) {
	hist := e.tr.History(e.histBuf[:0])
	n := min(history, len(hist), c.ct.Bound())
	for _, idx := range hist[len(hist)-n:] {
		if c.err != nil || (c.policy == ringbuf.BlockProducer && c.data.Full()) {
			return
		}
		if err := e.tr.Deliver(c.ct, idx); err != nil {
			return // at the bound: nothing more fits
		}
		if !e.push(c, e.tr.Ref(idx)) {
			return
		}
		e.replayed++
		testhook.Stop("history.mid") // kill window: part of the history on c

	}
	if err := c.wake.Notify(); err != nil {
		e.fail(c, err)
	}
}

// CloseConn stops deliveries on c (the subscriber closed it): Publish skips
// it and a Publish waiting on it gives up, but its returns are still
// drained, until [Engine.RemoveConn]. It closes c's data ring (the
// subscriber still pops what is queued; see [ringbuf.Ring.Close]).
// Closing twice does nothing.
func (e *Engine) CloseConn(c *Conn) {
	if c == nil || c.e != e {
		return
	}
	e.lock()
	defer e.unlock()
	if c.removed {
		return // its segment may be unmapped already: touch nothing
	}
	c.stopWaits()
	e.tr.CloseConn(c.ct)
}

// RemoveConn ends c (the subscriber is gone, or the router cut the
// connection) and takes back every chunk delivered on it and not yet
// drained, whatever the subscriber did with it: exactly the set the
// Tracker recorded. It waits for a Publish blocked on c to give up, and
// for a LoanWait asleep on c's return wake to wake (it does at once), so
// when it returns the engine no longer touches c's segment and the caller
// may unmap it. It returns how many chunks it took back. Errors:
// [ErrConnGone] for a removed connection or one of another engine.
func (e *Engine) RemoveConn(c *Conn) (int, error) {
	if c == nil || c.e != e {
		return 0, ErrConnGone
	}
	e.lock()
	defer e.unlock()
	if c.removed {
		return 0, ErrConnGone // its segment may be unmapped already: touch nothing
	}
	c.gone.Store(true)
	c.stopWaits()
	// No delivery on c from here: a Publish that gets mu while we wait for
	// the blocked one below (its wait ended, its data ring is closed) skips
	// c, as after CloseConn, instead of failing on the closed ring.
	e.tr.CloseConn(c.ct)
	for c.pushing || c.sleepers > 0 {
		e.cond.Wait()
	}
	if c.removed {
		return 0, ErrConnGone // removed by a concurrent RemoveConn while we waited
	}
	c.removed = true
	conns := make([]*Conn, 0, len(e.conns))
	for _, x := range e.conns {
		if x != c {
			conns = append(conns, x)
		}
	}
	e.conns = conns
	return e.tr.ReclaimConn(c.ct), nil
}

// stopWaits ends a Publish waiting on c: it sets closed, closes the data
// ring (a producer waiting for space returns at once; the subscriber,
// closing or gone, only pops from it any more) and wakes a wait for
// returns (a Publish's or a LoanWait's: both re-check closed). It does
// not block. e.mu held, c not removed.
func (c *Conn) stopWaits() {
	c.closed.Store(true)
	_ = c.data.Close()
	_ = c.rc.ReturnWake().Notify()
}
