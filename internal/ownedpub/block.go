package ownedpub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/owner"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// The block-producer slow path (design §2.6). Each wait releases mu, with
// e.blocked set (other Publish calls wait: c's data ring has one producer)
// and c.pushing set (RemoveConn waits before it lets the caller unmap c).
// Waits allocate nothing; a timeout allocates its error.

// waitPush pushes ref, already delivered on c in the Tracker, into c's
// full block-producer data ring, waiting for space up to BlockTimeout. mu
// held on entry and return.
func (e *Engine) waitPush(c *Conn, ref parallax.ChunkRef) error {
	// The subscriber must pop to make room: make sure it is awake.
	if err := e.notify(c); err != nil {
		return err
	}
	return e.pushWaiting(e.blockDeadline(), c, ref)
}

// blockDeadline is the end of a block-producer wait starting now:
// BlockTimeout from now, or the deadline of e.ctx when it has one. mu
// held.
func (e *Engine) blockDeadline() time.Time {
	if e.ctx != nil {
		if d, ok := e.ctx.Deadline(); ok {
			return d
		}
	}
	return time.Now().Add(e.opts.BlockTimeout)
}

// waitUnblocked waits until no Publish of e waits (blocked false) or ctx
// ends (its error). mu held on entry and return.
func (e *Engine) waitUnblocked(ctx context.Context) error {
	if ctx.Done() != nil {
		// cond.Wait cannot watch ctx: its end broadcasts.
		stop := context.AfterFunc(ctx, func() {
			e.lock()
			e.cond.Broadcast()
			e.unlock()
		})
		defer stop()
	}
	for e.blocked {
		if err := ctx.Err(); err != nil {
			return ctxErr("wait for another publish", err)
		}
		e.cond.Wait()
	}
	return nil
}

// ctxEnded returns ctx's error, or DeadlineExceeded once its deadline
// passed (its timer may not have fired yet); nil for a nil ctx.
func ctxEnded(ctx context.Context) error {
	if ctx == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// ctxErr wraps the end of a caller's ctx: with parallax.ErrTimeout as well
// for a deadline.
func ctxErr(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w (%w)", what, parallax.ErrTimeout, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// pushWaiting is waitPush's wait until deadline. mu held.
func (e *Engine) pushWaiting(deadline time.Time, c *Conn, ref parallax.ChunkRef) error {
	var err error
	w := &c.wctx
	if e.ctx != nil {
		// PublishTo's ctx: the ring registers a callback on Done, whose
		// goroutine may call Done after this wait returned, so this wait
		// gets a waitCtx of its own that nobody writes again (one
		// allocation, on this slow path only).
		w = &waitCtx{c: c, parent: e.ctx}
	}
	w.deadline = deadline
	e.unlocked(c, func() {
		if pushed, serr := e.spinPush(c, ref, deadline); pushed {
			err = serr
			return
		}
		_, err = c.data.Push(w, ref)
	})
	if err == nil && !c.removed {
		c.delivered++
		e.delivered++
		return e.notify(c)
	}
	// Not pushed (or pushed into a connection removed meanwhile, whose
	// chunks RemoveConn took back): undo the delivery. The ref never
	// reached the ring, so nobody else can have returned it, and the bit
	// is ours to clear unless RemoveConn reclaimed it.
	if !c.ct.Gone() {
		_ = e.tr.Return(c.ct, ref)
	}
	return e.blockErr(c, err)
}

// spinPush retries the push of ref into c's full data ring for the spin
// budget ([Options.Wait]'s Spin; negative: none), then yields the
// processor once and tries again: a subscriber that is awake frees a slot
// within microseconds, and a publisher asleep on the ring costs that
// subscriber a wake system call (and itself a context switch) for every
// few slots it frees. It reports whether the push happened (or failed for
// another reason than a full ring: err); false leaves the sleeping Push to
// the caller, as does a connection closed meanwhile. mu released, c
// marked as waited on (unlocked).
func (e *Engine) spinPush(c *Conn, ref parallax.ChunkRef, deadline time.Time) (pushed bool, err error) {
	budget := e.opts.Wait.Spin
	if budget == 0 {
		budget = ringbuf.DefaultSpin
	}
	budget = min(budget, time.Until(deadline))
	if budget <= 0 {
		return false, nil
	}
	var done <-chan struct{}
	if e.ctx != nil {
		done = e.ctx.Done()
	}
	c.spinRef, c.spinPushed, c.spinErr = ref, false, nil
	// Paced: each attempt reads the subscriber's head line (the ring
	// looked full), and a look every few tens of nanoseconds took that
	// line from the subscriber's every pop: in a slow cross-core state
	// one way 64 B ran ~20 % slower than with these gaps (design §8.24).
	// The room that piles up meanwhile serves the next pushes without a
	// look (the ring's head view).
	if !sys.SpinPaced(budget, spinFirstGap, spinMaxGap, done, c.spinTry) {
		sys.YieldThread()
		c.spinTry()
	}
	return c.spinPushed, c.spinErr
}

// spinFirstGap and spinMaxGap pace spinPush's attempts: the first after
// 1 us (a few pops of an awake subscriber), then twice the last gap.
const (
	spinFirstGap = time.Microsecond
	spinMaxGap   = 8 * time.Microsecond
)

// trySpinPush is one attempt of spinPush: true when spinRef was pushed
// (spinPushed), the push failed for another reason than a full ring
// (spinErr too) or the connection closed (the sleeping Push then returns
// at once).
func (c *Conn) trySpinPush() bool {
	switch _, err := c.data.TryPush(c.spinRef); {
	case err == nil:
		c.spinPushed = true
		return true
	case err != ringbuf.ErrFull:
		c.spinPushed, c.spinErr = true, err
		return true
	}
	return c.closed.Load()
}

// waitBound waits until c, a block-producer connection at its bound after
// a drain, has returned something, drains it, and delivers idx. mu held.
func (e *Engine) waitBound(c *Conn, idx uint32, ref parallax.ChunkRef) error {
	opts := e.opts.Wait
	opts.Timeout, opts.Deadline = 0, e.blockDeadline()
	ctx := context.Background()
	if e.ctx != nil {
		ctx = e.ctx
	}
	for {
		var err error
		e.unlocked(c, func() { err = c.rc.ReturnWake().Wait(ctx, c.retReady, opts) })
		if err != nil || c.removed || !c.ct.Live() {
			return e.blockErr(c, err)
		}
		e.drain(c)
		if c.err != nil {
			return c.err
		}
		switch err := e.tr.Deliver(c.ct, idx); {
		case err == nil:
			if e.push(c, ref) {
				return e.notify(c)
			}
			if c.err != nil {
				return c.err
			}
			return e.pushWaiting(opts.Deadline, c, ref)
		case err != owner.ErrBound:
			e.fail(c, err)
			return c.err
		}
	}
}

// unlocked runs wait with mu released and c marked as waited on. mu held
// on entry and return.
func (e *Engine) unlocked(c *Conn, wait func()) {
	e.waits++
	e.blocked, c.pushing = true, true
	// A PublishBatch's deferred wakes go out before it waits: a waiting
	// publisher leaves no subscriber asleep on samples it has. A failed
	// wake fails its connection, reported by a later Publish.
	batching := e.batching
	if batching {
		_ = e.flushWakes()
		e.batching = false
	}
	e.unlock()
	wait()
	e.lock()
	e.batching = batching
	e.blocked, c.pushing = false, false
	e.cond.Broadcast()
}

// blockErr turns the end of a failed wait on c into Publish's error: nil
// when the connection was closed or removed meanwhile (it no longer wants
// messages), a timeout error naming c, or c's failure. mu held.
func (e *Engine) blockErr(c *Conn, err error) error {
	switch {
	case c.removed || !c.ct.Live() || c.closed.Load():
		return c.err
	case ctxEnded(e.ctx) != nil:
		// The caller's ctx ended (PublishTo): not c's failure.
		return ctxErr(fmt.Sprintf("publish on block-producer connection %d (full)", c.ID()), ctxEnded(e.ctx))
	case errors.Is(err, parallax.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		c.timeouts++
		e.timeouts++
		return fmt.Errorf("publish on block-producer connection %d: full for %v: %w", c.ID(), e.opts.BlockTimeout, parallax.ErrTimeout)
	case err == nil:
		return nil
	}
	e.fail(c, err)
	return c.err
}

// waitCtx is the context of a Push wait on c's data ring: a deadline and
// c's closed flag, with no Done channel. Ring.Push polls Err before every
// futex slice and bounds each slice by the deadline, so this needs no
// timer, goroutine or allocation per wait (context.WithTimeout plus the
// AfterFunc Push registers for a Done channel cost ~1 µs and 400 B, on a
// path a fast publisher takes often). A closing connection is woken by
// the ring's Close (stopWaits), not by Done. Only for ringbuf waits: it
// breaks the context contract (Err turns non-nil without Done).
//
// parent is PublishTo's ctx (nil in the connection's own waitCtx, which
// Publish uses): Done is then the parent's, so its end wakes the wait (the
// ring registers a callback for it). Such a waitCtx is made per wait and
// never written after it starts (pushWaiting).
type waitCtx struct {
	c        *Conn
	deadline time.Time       // written by the waiter before each wait
	parent   context.Context // set once, in a per-wait waitCtx
}

func (w *waitCtx) Deadline() (time.Time, bool) { return w.deadline, true }
func (w *waitCtx) Done() <-chan struct{} {
	if w.parent != nil {
		return w.parent.Done()
	}
	return nil
}
func (w *waitCtx) Value(any) any { return nil }
func (w *waitCtx) Err() error {
	if w.c.closed.Load() {
		return context.Canceled
	}
	if w.parent != nil {
		if err := w.parent.Err(); err != nil {
			return err
		}
	}
	if !time.Now().Before(w.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}
