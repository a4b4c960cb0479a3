package ownedsub

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// sliceWait bounds each sleep when some connections are not in the
// futex_waitv set (more than 128): their data is noticed within a slice.
const sliceWait = time.Millisecond

// Take returns the next sample, waiting for one as w says: it spins for
// w.Spin (a duration; [ringbuf.DefaultSpin] when 0), then sleeps on the
// data wake words of every takeable connection (see the package doc), or
// busy-polls with w.BusyPoll. w.Timeout and w.Deadline bound the wait (an
// error wrapping [parallax.ErrTimeout]); so does ctx (an error wrapping
// ctx.Err()). It returns TryTake's errors other than [ErrEmpty] at once:
// [ErrHeldLimit] does not wait for a release. With a ctx that is never
// done, Take allocates nothing, also when it sleeps (as ringbuf's waits).
func (e *Engine) Take(ctx context.Context, w ringbuf.WaitOptions) (Sample, error) {
	w = absolute(w)
	for {
		x, err := e.TryTake()
		if err != ErrEmpty {
			return x, err
		}
		if err := e.Wait(ctx, w); err != nil {
			return Sample{}, err
		}
	}
}

// Wait returns when some takeable connection has data in its data ring
// (TryTake may still find nothing: another goroutine took it, or it is
// held back by MaxHeld), when the engine is closed, or with an error when
// ctx ends or w's timeout or deadline passes. It waits as [Engine.Take]
// does. Only the taker may call it.
func (e *Engine) Wait(ctx context.Context, w ringbuf.WaitOptions) error {
	w = absolute(w)
	defer e.waitOn(nil)
	for {
		s := e.waitOn(&e.set)
		if e.closed.Load() {
			return nil // (a set made after Close never has changed closed)
		}
		var err error
		switch {
		case len(s.conns) == 0:
			// Nothing to sleep on: wait for a connection.
			err = e.waitNoConn(ctx, w, s)
		case s.waiter == nil:
			err = s.conns[0].wake.Wait(ctx, e.readyFn, w)
		case s.slices:
			err = e.waitSliced(ctx, w, s.waiter)
		default:
			err = s.waiter.Wait(ctx, e.readyFn, w)
		}
		if err != nil {
			if ctx.Err() == nil && isTimeout(err) {
				return errWaitTimeout // w's own timeout: no allocation
			}
			return fmt.Errorf("wait for samples: %w", err)
		}
		if s.waiter != nil && e.set.Load() != s {
			s.waiter.Release() // s is done with: drop its ctx registration
		}
		if e.closed.Load() || e.set.Load() == s || s.ready() {
			return nil
		}
		// The set changed (AddConn, RemoveConn) and had nothing ready:
		// wait on the new one.
	}
}

// absolute turns w's Timeout into a Deadline. The clock is read once, so
// wake-ups that find nothing do not extend the wait; it is read only when
// a Timeout is set.
func absolute(w ringbuf.WaitOptions) ringbuf.WaitOptions {
	if w.Timeout > 0 {
		if d := time.Now().Add(w.Timeout); w.Deadline.IsZero() || d.Before(w.Deadline) {
			w.Deadline = d
		}
		w.Timeout = 0
	}
	return w
}

// waitOn records which set the waiter looks at (nil: none), under waitMu,
// and wakes a RemoveConn waiting for the waiter to leave an older set. With
// a non-nil set pointer it loads the current set under waitMu and returns
// it: a RemoveConn that published a newer set after this either sees the
// waiter on the old set and waits, or the waiter loads the new set.
func (e *Engine) waitOn(set *atomic.Pointer[connSet]) *connSet {
	e.waitMu.Lock()
	defer e.waitMu.Unlock()
	var s *connSet
	if set != nil {
		s = set.Load()
	}
	e.waitingOn = s
	e.waitCond.Broadcast()
	return s
}

// waiterReady is the readiness check of a wait on e.waitingOn: data on a
// takeable connection, the engine closed, or a new set (then Wait reloads).
// Only the waiter calls it, and only the waiter writes waitingOn.
func (e *Engine) waiterReady() bool {
	s := e.waitingOn
	return e.closed.Load() || e.set.Load() != s || s.ready()
}

// leaveSet waits until no wait looks at a set older than gen. It follows a
// Notify on every connection dropped from the set, which ends such a wait
// quickly (its readiness check sees the new set).
func (e *Engine) leaveSet(gen uint64) {
	e.waitMu.Lock()
	for e.waitingOn != nil && e.waitingOn.gen < gen {
		e.waitCond.Wait()
	}
	e.waitMu.Unlock()
}

// waitNoConn waits on set s, which has no connection and so no wake word:
// until s is replaced (AddConn) or the engine closes (s.changed is closed
// then), ctx ends or w's deadline passes. With no deadline and a ctx that
// is never done it allocates nothing.
func (e *Engine) waitNoConn(ctx context.Context, w ringbuf.WaitOptions, s *connSet) error {
	var timeout <-chan time.Time
	if !w.Deadline.IsZero() {
		d := time.Until(w.Deadline)
		if d <= 0 {
			return errTimeout
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-s.changed:
		return nil
	case <-timeout:
		return errTimeout
	case <-ctx.Done():
		if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", parallax.ErrTimeout, err)
		}
		return ctx.Err()
	}
}

// waitSliced is a waiter's wait cut into sliceWait slices, for sets of
// more than 128 connections: after each slice every connection is checked.
func (e *Engine) waitSliced(ctx context.Context, w ringbuf.WaitOptions, wt *ringbuf.Waiter) error {
	end := w.Deadline
	for {
		sw := w
		sw.Deadline = time.Now().Add(sliceWait)
		if !end.IsZero() && end.Before(sw.Deadline) {
			sw.Deadline = end
		}
		err := wt.Wait(ctx, e.readyFn, sw)
		if err == nil || !isTimeout(err) || (!end.IsZero() && !time.Now().Before(end)) {
			return err
		}
	}
}

// ready reports whether some takeable connection of s has data. Lock-free:
// it reads each connection's skip flag and ring indices.
func (s *connSet) ready() bool {
	for _, c := range s.conns {
		if !c.skip.Load() && (c.data.Len() > 0 || c.pendReady.Load()) {
			return true
		}
	}
	return false
}

// Ready reports whether a take may find something: some takeable
// connection has data, or the engine is closed. It is the readiness check
// of a WaitSet over several engines; it takes no lock and allocates
// nothing.
func (e *Engine) Ready() bool { return e.closed.Load() || e.set.Load().ready() }

// Notifiers appends the data wake of every connection to dst and returns
// it, with the engine's set generation: a WaitSet sleeps on these words
// (with [ringbuf.NewWaiter]) and rebuilds its waiter when the generation
// changes (AddConn, RemoveConn). A WaitSet must not be waiting while
// RemoveConn runs on one of its engines (the removed connection's words
// may be unmapped afterwards).
func (e *Engine) Notifiers(dst []*ringbuf.Notifier) ([]*ringbuf.Notifier, uint64) {
	e.lock()
	defer e.unlock()
	for _, c := range e.set.Load().conns {
		dst = append(dst, c.wake)
	}
	return dst, e.gen
}

// EnterWait is Notifiers for a waiter outside the engine (a wait set)
// that is about to sleep on the words: it registers the caller as the
// engine's waiter on the current set, so a RemoveConn waits (after
// waking it) until it calls LeaveWait before the caller unmaps a word it
// sleeps on. The caller takes the place of Take: the two must not wait at
// the same time.
func (e *Engine) EnterWait(dst []*ringbuf.Notifier) ([]*ringbuf.Notifier, uint64) {
	s := e.waitOn(&e.set)
	for _, c := range s.conns {
		dst = append(dst, c.wake)
	}
	return dst, s.gen
}

// LeaveWait ends an EnterWait: the caller no longer touches the words.
func (e *Engine) LeaveWait() { e.waitOn(nil) }

// Changed reports, to the waiter registered by EnterWait (only it may
// call this), whether its set is no longer current: it should wake,
// LeaveWait and look again. Lock-free.
func (e *Engine) Changed() bool {
	s := e.waitingOn
	return s != nil && e.set.Load() != s
}
