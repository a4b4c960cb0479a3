package ownedpub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// LoanWait is [Engine.Loan] that waits instead of failing in two cases,
// until a loan succeeds or ctx ends:
//
//   - n's size class has no chunk free but subscribers hold some: it
//     sleeps on the return wakes of the connections with chunks
//     outstanding (one futex, or futex_waitv over up to 128 of them),
//     drains the return rings when woken and tries again;
//   - MaxLoans chunks are loaned: it waits until another goroutine
//     publishes or releases one (a channel the ending loan closes; the
//     common path of Publish and Release only reads a nil field). With
//     [Options.SingleGoroutine] nobody else can end a loan: it fails at
//     once as Loan does.
//
// opts tunes the spin before each futex sleep; its Timeout and Deadline
// apply to the whole wait as well as ctx's.
//
// When no connection has a chunk outstanding, nothing can come back: it
// returns Loan's error (wrapping [parallax.ErrPoolExhausted]) at once, and
// the caller may grow. Loan's other errors (too large) return at once
// too. An end of ctx gives an error wrapping ctx's error
// ([parallax.ErrTimeout] as well for a deadline).
//
// A chunk free at the first look costs what Loan costs and allocates
// nothing; a wait that sleeps allocates (its set of words, ctx's callback,
// a channel and timer at MaxLoans).
func (e *Engine) LoanWait(ctx context.Context, n int, opts ringbuf.WaitOptions) (Loan, error) {
	l, err := e.Loan(n)
	if err == nil {
		return l, nil
	}
	// The waits below sleep on words of the connections' segments: the
	// engine's memory stays in use until they end (Close then waits).
	if !e.Hold() {
		return Loan{}, ErrClosed
	}
	defer e.Unhold()
	deadline := opts.Deadline
	if opts.Timeout > 0 {
		if d := time.Now().Add(opts.Timeout); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	for {
		var werr error // how a wait for returns ended; final unless the next Loan succeeds
		switch {
		case errors.Is(err, parallax.ErrLimit) && !e.opts.SingleGoroutine:
			if werr := e.waitLoanEnd(ctx, deadline); werr != nil {
				return Loan{}, fmt.Errorf("wait for one of the %d loans to end: %w", e.opts.MaxLoans, werr)
			}
		case errors.Is(err, parallax.ErrPoolExhausted):
			var none bool
			if none, werr = e.waitReturns(ctx, opts, deadline); none {
				return Loan{}, err
			}
		default:
			return Loan{}, err
		}
		if l, err = e.Loan(n); err == nil { // drains every connection when the class is empty
			return l, nil
		}
		if werr != nil {
			return Loan{}, fmt.Errorf("wait for a chunk of %d bytes to come back: %w", n, werr)
		}
	}
}

// waitReturns is LoanWait's wait for a return on any connection holding
// chunks: none when no connection holds any (nothing can come back), else
// the wait's error (nil when a return came, or when only a slice of a cut
// set ended). While it sleeps, every connection it sleeps on counts it
// (sleepers): RemoveConn wakes it and waits for it to leave before the
// caller unmaps the connection's segment.
func (e *Engine) waitReturns(ctx context.Context, opts ringbuf.WaitOptions, deadline time.Time) (none bool, err error) {
	conns, cut := e.sleepOnReturns()
	if len(conns) == 0 {
		return true, nil
	}
	defer e.wokeFromReturns(conns)
	w := opts
	w.Timeout, w.Deadline = 0, deadline
	if cut {
		// More connections than futex_waitv takes: a return on one not in
		// the set is seen at the next slice.
		if d := time.Now().Add(waitvSlice); deadline.IsZero() || d.Before(deadline) {
			w.Deadline = d
		}
	}
	// Ready when a return came or a connection is being removed
	// (RemoveConn sets gone before it wakes us).
	ready := func() bool {
		for _, c := range conns {
			if c.gone.Load() || c.rc.ReturnRing().Len() > 0 {
				return true
			}
		}
		return false
	}
	var werr error
	if len(conns) == 1 {
		werr = conns[0].rc.ReturnWake().Wait(ctx, ready, w)
	} else {
		ns := make([]*ringbuf.Notifier, len(conns))
		for i, c := range conns {
			ns[i] = c.rc.ReturnWake()
		}
		var wt *ringbuf.Waiter
		if wt, werr = ringbuf.NewWaiter(ns...); werr == nil {
			werr = wt.Wait(ctx, ready, w)
		}
	}
	sliceEnded := cut && errors.Is(werr, parallax.ErrTimeout) && ctx.Err() == nil &&
		(deadline.IsZero() || time.Now().Before(deadline))
	if sliceEnded {
		return false, nil
	}
	return false, werr
}

// waitLoanEnd waits until fewer than MaxLoans chunks are loaned (another
// goroutine published or released one), ctx ends or deadline (zero:
// none) passes.
func (e *Engine) waitLoanEnd(ctx context.Context, deadline time.Time) error {
	e.lock()
	if e.opts.MaxLoans <= 0 || e.tr.Loans() < e.opts.MaxLoans {
		e.unlock()
		return nil // one ended meanwhile: loan again
	}
	if e.loanEnded == nil {
		e.loanEnded = make(chan struct{})
	}
	ended := e.loanEnded
	e.sleeping++
	e.unlock()
	defer func() {
		e.lock()
		e.sleeping--
		e.unlock()
	}()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
		if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", parallax.ErrTimeout, err)
		}
		return ctx.Err()
	case <-timeout:
		return fmt.Errorf("%w: %w", parallax.ErrTimeout, context.DeadlineExceeded)
	}
}

// waitvSlice bounds one wait when some connections are left out of the
// futex_waitv set.
const waitvSlice = 10 * time.Millisecond

// sleepOnReturns returns the connections that hold chunks of e and can
// still return them (at most sys.MaxWaitv of them, cut true when there
// were more), each counting one more sleeper until wokeFromReturns. mu not
// held.
func (e *Engine) sleepOnReturns() (conns []*Conn, cut bool) {
	e.lock()
	defer e.unlock()
	for _, c := range e.conns {
		if c.err != nil || c.removed || c.gone.Load() || c.ct.Outstanding() == 0 {
			continue
		}
		if len(conns) == sys.MaxWaitv {
			cut = true
			break
		}
		c.sleepers++
		conns = append(conns, c)
	}
	if len(conns) > 0 {
		e.sleeping++
	}
	return conns, cut
}

// wokeFromReturns ends the sleep sleepOnReturns began on conns and lets a
// RemoveConn waiting for it go on. mu not held.
func (e *Engine) wokeFromReturns(conns []*Conn) {
	e.lock()
	for _, c := range conns {
		c.sleepers--
	}
	e.sleeping--
	e.cond.Broadcast()
	e.unlock()
}
