package ownedpub

import (
	"context"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/owner"
	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/ringbuf"
)

var errLength = fmt.Errorf("publish: meta length exceeds the chunk: %w", ErrInvalidArgument)

// Publish writes l's chunk header (its meta, the loan's size as Length
// unless set, the next sequence number as Seq), keeps the chunk in history
// and delivers it on every live connection with that connection's policy.
// The loan is spent afterwards, whatever the result.
//
// A connection that fails during the call (a forged take-back, corrupt
// indices) gets the message no more; Publish delivers to the others and
// returns the first such [*ConnError]. A connection that failed earlier,
// in a drain no Publish reported (Loan's, [Engine.Drain]'s, the batched
// drain after the deliveries), is returned by the next Publish that has no
// failure of its own, one per call, so every failure is returned once. A block-producer connection that
// stays full for [Options.BlockTimeout] misses this message and Publish
// returns an error wrapping [parallax.ErrTimeout] naming it. Errors about
// the loan itself ([ErrNotLoaned], a bad length) deliver nothing.
//
// The common path (room in every ring) takes the engine's mutex once,
// allocates nothing and makes no system call except a wake of a sleeping
// subscriber.
func (e *Engine) Publish(l *Loan) error {
	e.lock()
	err := e.publish(l)
	idle := e.gate.Closed() && e.becameIdle()
	e.unlock()
	e.runIdle(idle)
	return err
}

// publish is Publish under mu.
func (e *Engine) publish(l *Loan) error {
	for e.blocked {
		e.cond.Wait()
	}
	if e.gate.Closed() {
		return e.refuseClosed(l)
	}
	if !e.loaned(l) {
		return ErrNotLoaned
	}
	if err := e.writeHeader(l); err != nil {
		return err
	}
	idx, ref := l.idx, l.ref
	*l = Loan{}
	if err := e.tr.HistoryPush(idx); err != nil {
		return err // not reached: idx is loaned and not in history
	}
	var first error
	reached := false
	// A snapshot: AddConn and RemoveConn replace e.conns, so the slice
	// stays valid while a blocking delivery releases mu.
	for i, c := range e.conns {
		if c.err != nil || c.removed || !c.ct.Live() {
			continue
		}
		reached = true
		if err := e.deliver(c, idx, ref); err != nil && first == nil {
			first = err
		}
		if i == 0 && len(e.conns) > 1 {
			testhook.Stop("publish.mid") // kill window: on the first connection, not the others
		}
	}
	if err := e.tr.Published(idx); err != nil && first == nil {
		first = err // not reached: the loan unit is ours until here
	}
	e.loanDone()
	e.published++
	if !reached {
		e.unconnected++
	}
	e.mirror()
	if e.drainEvery > 0 {
		if e.sinceDrain++; e.sinceDrain >= e.drainEvery {
			e.sinceDrain = 0
			e.drainAll()
		}
	}
	if len(e.unreported) > 0 {
		first = e.reportFailure(first)
	}
	return first
}

// writeHeader writes l's chunk header for its publish with the next
// sequence number: Length (the loan's size unless SetMeta set one), Seq,
// Stamp, and the media fields as zero unless SetMeta wrote them. mu held.
func (e *Engine) writeHeader(l *Loan) error {
	length := l.length
	if length == 0 {
		length = uint32(len(l.buf))
	} else if int64(length) > int64(cap(l.buf)) {
		return errLength
	}
	e.seq++
	seg := e.segs[l.ref.Pool()]
	if l.media {
		seg.SetPublished(l.ref.Slot(), length, e.seq, l.stamp)
	} else {
		seg.SetMeta(l.ref.Slot(), dataseg.Meta{Length: length, Seq: e.seq, Stamp: l.stamp})
	}
	return nil
}

// PublishBatch publishes n loans, loan(0) to loan(n-1) in that order, as
// n calls of [Engine.Publish] would, and calls done(i, err) (done may be
// nil) after the i-th with what Publish would have returned for it; every
// loan is spent afterwards, whatever the result. The difference is the
// wake-up of sleeping subscribers: Publish wakes a connection's subscriber
// after each push, PublishBatch once per connection, after the last push
// (and before any block-producer wait, so no subscriber sleeps on samples
// while the batch waits). A failed wake-up is the last sample's error. It
// takes the mutex once for the batch. loan and done run with the mutex
// held and must not call the engine.
func (e *Engine) PublishBatch(n int, loan func(i int) *Loan, done func(i int, err error)) {
	e.lock()
	for e.blocked {
		e.cond.Wait()
	}
	e.batching = true
	for i := range n {
		err := e.publish(loan(i))
		if i == n-1 {
			// The last sample: the deferred wakes are due now.
			e.batching = false
			if werr := e.flushWakes(); err == nil {
				err = werr
			}
		}
		if done != nil {
			done(i, err)
		}
	}
	e.batching = false
	idle := e.gate.Closed() && e.becameIdle()
	e.unlock()
	e.runIdle(idle)
}

// flushWakes wakes the subscribers of the connections whose deliveries
// deferred their wake-up (PublishBatch) and returns the first failure. mu
// held.
func (e *Engine) flushWakes() error {
	var first error
	for _, c := range e.conns {
		if !c.wakePending {
			continue
		}
		c.wakePending = false
		if c.err != nil || c.removed {
			continue
		}
		if err := e.notify(c); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// deliver records chunk idx on c and pushes ref into c's data ring, with
// c's policy when c is at its bound or the ring is full. mu held (released
// and re-taken while a block-producer delivery waits).
func (e *Engine) deliver(c *Conn, idx uint32, ref parallax.ChunkRef) error {
	err := e.tr.Deliver(c.ct, idx)
	if err == owner.ErrBound {
		// At the bound: take back what the subscriber returned, then
		// retry once (design §2.3 (b)).
		e.drain(c)
		if c.err != nil {
			return c.err
		}
		err = e.tr.Deliver(c.ct, idx)
	}
	if err == owner.ErrBound {
		if c.policy == ringbuf.BlockProducer {
			return e.waitBound(c, idx, ref)
		}
		if !e.takeBack(c) {
			return c.err // nil: nothing in the ring to take back (see takeBack)
		}
		err = e.tr.Deliver(c.ct, idx)
	}
	if err != nil {
		e.fail(c, err) // not reached: c is live and idx loaned, not yet on c
		return c.err
	}
	if e.push(c, ref) {
		if c.err != nil {
			return c.err // a forged take-back
		}
		if e.batching {
			c.wakePending = true // PublishBatch wakes once, at its end
			return nil
		}
		return e.notify(c)
	}
	if c.err != nil {
		return c.err
	}
	return e.waitPush(c, ref)
}

// push pushes ref into c's data ring without waiting. On a full
// discard-oldest ring the push takes the oldest entry back, which is
// validated as a return (design §2.5). It reports whether ref is in the
// ring; false with c.err nil means a full block-producer ring. mu held.
func (e *Engine) push(c *Conn, ref parallax.ChunkRef) bool {
	old, err := c.data.TryPush(ref)
	if err == ringbuf.ErrFull {
		return false
	}
	if err != nil {
		e.fail(c, err)
		return false
	}
	c.delivered++
	e.delivered++
	if old != parallax.NilRef {
		testhook.Stop("discard.won") // kill window: taken back from the ring, bit still set
		c.discarded++
		e.discarded++
		e.accept(c, old)
	}
	return true
}

// takeBack makes room on a discard-oldest connection at its bound: it
// takes the oldest entry back from the data ring and validates it as a
// return. It reports whether a chunk came back. An empty data ring means
// the subscriber holds all Bound chunks itself (more than its queue
// capacity plus MaxHeld, or the bound is below the queue capacity): the
// message is not delivered on c (counted as discarded) and c stays live.
// mu held.
func (e *Engine) takeBack(c *Conn) bool {
	old, err := c.data.TryDiscard()
	if err == ringbuf.ErrEmpty {
		c.discarded++
		e.discarded++
		return false
	}
	if err != nil {
		e.fail(c, err)
		return false
	}
	testhook.Stop("discard.won") // kill window: taken back from the ring, bit still set
	c.discarded++
	e.discarded++
	e.accept(c, old)
	return c.err == nil
}

// notify wakes c's subscriber if it sleeps. mu held.
func (e *Engine) notify(c *Conn) error {
	if err := c.wake.Notify(); err != nil {
		e.fail(c, err)
		return c.err
	}
	return nil
}

// PublishTo is Publish on connection c only, for request/response
// (docs/design/request-response.md): the chunk is not kept in history and
// no other connection gets it. The loan's meta is written as given (Flags
// and UserSeq carry the call's correlation), with Length and Seq as in
// Publish. A connection that is not live (closing, failed, removed or of
// another engine) gets nothing: the chunk goes back to the free list and
// PublishTo returns [ErrConnGone] (or the connection's [*ConnError]). The
// loan is spent afterwards, whatever the result; the cost is Publish's
// for one connection.
//
// ctx bounds the block-producer waits (c full, or another Publish of the
// engine waiting): its deadline replaces [Options.BlockTimeout] when it
// has one, and its end stops the wait at once with an error wrapping
// ctx.Err() ([parallax.ErrTimeout] too for a deadline); the chunk is then
// not delivered and the connection stays live. Only a wait that watches a
// cancellable ctx allocates (its callback).
func (e *Engine) PublishTo(ctx context.Context, l *Loan, c *Conn) error {
	e.lock()
	if e.blocked {
		if err := e.waitUnblocked(ctx); err != nil {
			if e.loaned(l) {
				_ = e.tr.Unloan(l.idx)
				*l = Loan{}
				e.loanDone() // a LoanWait at MaxLoans may go on
			}
			idle := e.gate.Closed() && e.becameIdle()
			e.unlock()
			e.runIdle(idle)
			return err
		}
	}
	if e.gate.Closed() {
		err := e.refuseClosed(l)
		idle := e.becameIdle()
		e.unlock()
		e.runIdle(idle)
		return err
	}
	if !e.loaned(l) {
		e.unlock()
		return ErrNotLoaned
	}
	if err := e.writeHeader(l); err != nil {
		e.unlock()
		return err
	}
	idx, ref := l.idx, l.ref
	*l = Loan{}
	var err error
	switch {
	case c == nil || c.e != e || c.removed || !c.ct.Live():
		err = ErrConnGone
	case c.err != nil:
		err = c.err
	default:
		e.ctx = ctx
		err = e.deliver(c, idx, ref)
		e.ctx = nil
	}
	if perr := e.tr.Published(idx); perr != nil && err == nil {
		err = perr // not reached: the loan unit is ours until here
	}
	e.loanDone()
	e.published++
	e.mirror()
	if e.drainEvery > 0 {
		if e.sinceDrain++; e.sinceDrain >= e.drainEvery {
			e.sinceDrain = 0
			e.drainAll()
		}
	}
	idle := e.gate.Closed() && e.becameIdle()
	e.unlock()
	e.runIdle(idle)
	return err
}

// mirror stores the engine's counters in the header of the first data
// segment (dataseg.Segment.SetCounters), where the router reads them after
// this process dies (design §8.20): four plain stores into a cache line
// only this process writes and nobody reads on the data path. mu held.
func (e *Engine) mirror() {
	if e.ctr != nil {
		e.ctr.SetCounters(e.published, e.delivered, e.discarded+e.timeouts, e.unconnected)
	}
}
