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

// LoanWait is [Engine.Loan] that waits for a chunk when n's size class has
// none free but subscribers hold some: it sleeps on the return wakes of the
// connections with chunks outstanding (one futex, or futex_waitv over up to
// 128 of them), drains the return rings when woken and tries again, until a
// chunk is free or ctx ends. opts tunes the spin before each sleep; its
// Timeout and Deadline apply as well as ctx's.
//
// When no connection has a chunk outstanding, nothing can come back: it
// returns Loan's error (wrapping [parallax.ErrPoolExhausted]) at once, and
// the caller may grow. Other errors of Loan (MaxLoans, too large) return at
// once too. An end of ctx gives an error wrapping ctx's error
// ([parallax.ErrTimeout] as well for a deadline).
//
// A chunk free at the first look costs what Loan costs and allocates
// nothing; a wait that sleeps allocates (its set of words, ctx's callback).
func (e *Engine) LoanWait(ctx context.Context, n int, opts ringbuf.WaitOptions) (Loan, error) {
	l, err := e.Loan(n)
	if err == nil || !errors.Is(err, parallax.ErrPoolExhausted) {
		return l, err
	}
	deadline := opts.Deadline
	if opts.Timeout > 0 {
		if d := time.Now().Add(opts.Timeout); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	for {
		ns, ready, cut := e.returnWakes()
		if len(ns) == 0 {
			return Loan{}, err
		}
		w := opts
		w.Timeout, w.Deadline = 0, deadline
		if cut {
			// More connections than futex_waitv takes: a return on one
			// not in the set is seen at the next slice.
			if d := time.Now().Add(waitvSlice); deadline.IsZero() || d.Before(deadline) {
				w.Deadline = d
			}
		}
		var werr error
		if len(ns) == 1 {
			werr = ns[0].Wait(ctx, ready, w)
		} else {
			var wt *ringbuf.Waiter
			if wt, werr = ringbuf.NewWaiter(ns...); werr == nil {
				werr = wt.Wait(ctx, ready, w)
			}
		}
		l, err = e.Loan(n) // drains every connection when the class is empty
		if err == nil || !errors.Is(err, parallax.ErrPoolExhausted) {
			return l, err
		}
		sliceEnded := cut && errors.Is(werr, parallax.ErrTimeout) && ctx.Err() == nil &&
			(deadline.IsZero() || time.Now().Before(deadline))
		if werr != nil && !sliceEnded {
			return Loan{}, fmt.Errorf("wait for a chunk of %d bytes to come back: %w", n, werr)
		}
	}
}

// waitvSlice bounds one wait when some connections are left out of the
// futex_waitv set.
const waitvSlice = 10 * time.Millisecond

// returnWakes returns the return wakes of the connections that hold chunks
// of e (at most sys.MaxWaitv of them, cut true when there were more) and a
// check of their return rings. mu not held.
func (e *Engine) returnWakes() (ns []*ringbuf.Notifier, ready func() bool, cut bool) {
	e.lock()
	defer e.unlock()
	var rings []*ringbuf.Ring
	for _, c := range e.conns {
		if c.err != nil || c.removed || c.ct.Outstanding() == 0 {
			continue
		}
		if len(ns) == sys.MaxWaitv {
			cut = true
			break
		}
		ns = append(ns, c.rc.ReturnWake())
		rings = append(rings, c.rc.ReturnRing())
	}
	ready = func() bool {
		for _, r := range rings {
			if r.Len() > 0 {
				return true
			}
		}
		return false
	}
	return ns, ready, cut
}
