package ownedpub

import (
	"fmt"
	"os"
)

// ErrClosed reports a Loan, LoanWait or Publish after [Engine.Close]. It
// wraps [os.ErrClosed].
var ErrClosed = fmt.Errorf("publisher closed: %w", os.ErrClosed)

// Close ends the engine's use for new samples: from now on Loan and
// LoanWait fail with [ErrClosed], and Publish, PublishBatch and PublishTo
// give an outstanding loan back (as Release would) and return ErrClosed.
// Release still works, and so do the connection and statistics calls. A
// LoanWait waiting at MaxLoans returns ErrClosed at once; one asleep on
// return wakes does when its connections are removed.
//
// The engine's memory stays in use while a loan is outstanding or a
// [Engine.Hold] lasts: once the engine is closed and neither remains,
// [Options.OnIdle] runs, exactly once, on the goroutine that ended the
// last of them (this one when none remains now), with no lock held. That
// is where the caller unmaps the data segments: a loan's bytes alias them
// until the loan ends. Close is idempotent.
func (e *Engine) Close() {
	e.lock()
	e.gate.Close()
	e.loanDone() // a LoanWait at MaxLoans loans again and gets ErrClosed
	idle := e.becameIdle()
	e.unlock()
	e.runIdle(idle)
}

// Hold keeps the engine's memory in use (OnIdle waits for the matching
// [Engine.Unhold]) for a caller that works on it outside a loan: growing
// it, retiring a segment, waiting for returns. It reports false, holding
// nothing, once OnIdle has run.
func (e *Engine) Hold() bool {
	e.lock()
	defer e.unlock()
	return e.gate.Hold()
}

// Unhold ends a [Engine.Hold] that succeeded; the last one after Close
// runs OnIdle when no loan is outstanding.
func (e *Engine) Unhold() {
	e.lock()
	e.gate.Unhold()
	idle := e.becameIdle()
	e.unlock()
	e.runIdle(idle)
}

// becameIdle reports, once, that the engine is closed with no loan
// outstanding and no hold: OnIdle is due. Every path that ends a loan or a
// hold asks (the publish path only reads closed). mu held.
func (e *Engine) becameIdle() bool { return e.gate.Due(e.tr.Loans() > 0) }

// runIdle runs OnIdle when idle says it is due; mu not held.
func (e *Engine) runIdle(idle bool) { e.gate.Run(idle) }

// refuseClosed gives back l if it is a current loan, because the engine
// is closed, and returns ErrClosed (for a stale loan too). mu held.
func (e *Engine) refuseClosed(l *Loan) error {
	if e.loaned(l) {
		_ = e.tr.Unloan(l.idx) // l is loaned: cannot fail
		e.loanDone()
	}
	*l = Loan{}
	return ErrClosed
}
