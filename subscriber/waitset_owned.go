package subscriber

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// ownedSlice bounds each sleep of a WaitSet in the owned model, so it
// notices connection changes (its futex words are the connections' data
// wakes, which come and go) within a slice; data wakes it at once.
const ownedSlice = 10 * time.Millisecond

// waitOwned is WaitSet.Wait when the set's subscribers run on the owned
// model: it sleeps on the data wake words of every connection of every
// subscriber (futex_waitv, at most 128; beyond that, or with none, in
// slices), rebuilding its waiter when a subscriber's connections change.
func (ws *WaitSet) waitOwned(ctx context.Context) error {
	w := ws.opts
	if w.Timeout > 0 {
		w.Deadline, w.Timeout = time.Now().Add(w.Timeout), 0
	}
	for {
		if ws.anyReady() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return ctxErr(ctx, err)
		}
		ws.rebuild() // registers the set as each engine's waiter
		slice := w
		d := time.Now().Add(ws.oslice)
		if !w.Deadline.IsZero() && w.Deadline.Before(d) {
			d = w.Deadline
		}
		slice.Deadline = d
		var err error
		if ws.owaiter != nil {
			err = ws.owaiter.Wait(ctx, ws.oready, slice)
		} else {
			sys.SpinFor(time.Millisecond)
		}
		ws.leave()
		switch {
		case err == nil, errors.Is(err, parallax.ErrTimeout) && (w.Deadline.IsZero() || time.Now().Before(w.Deadline)):
			// Ready, or a slice ended: look again.
		case errors.Is(err, parallax.ErrTimeout) && ctx.Err() == nil:
			return err // the wait set's own deadline
		case ctx.Err() != nil:
			return ctxErr(ctx, ctx.Err())
		default:
			ws.ogens = nil // a word went away under the wait: rebuild
		}
		if !w.Deadline.IsZero() && !time.Now().Before(w.Deadline) && !ws.anyReady() {
			return fmt.Errorf("wait: %w", parallax.ErrTimeout)
		}
	}
}

// ctxErr wraps a context's end as ringbuf's waits do.
func ctxErr(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", parallax.ErrTimeout, err)
	}
	return err
}

// ownedReady is the sleep's readiness check: data, or a subscriber's
// connections changed (then the set leaves its words, so a removed
// connection can be unmapped, and rebuilds).
func (ws *WaitSet) ownedReady() bool {
	for _, s := range ws.subs {
		if s.hasData() || s.Changed() {
			return true
		}
	}
	return false
}

// leave ends the registration rebuild made at every engine.
func (ws *WaitSet) leave() {
	for _, s := range ws.subs {
		s.LeaveWait()
	}
}

// rebuild makes the waiter current: the wake words of every connection of
// every subscriber, when one of their sets changed. It registers the set
// as every engine's waiter (until leave): a connection removed meanwhile
// is unmapped only after the set left its word.
func (ws *WaitSet) rebuild() {
	if len(ws.ogens) != len(ws.subs) {
		ws.ogens = make([]uint64, len(ws.subs)) // once: a Wait allocates nothing
		if ws.owaiter != nil {
			ws.owaiter.Release()
		}
		ws.owaiter = nil
	}
	same := ws.owaiter != nil
	ns := ws.ons[:0]
	for i, s := range ws.subs {
		var g uint64
		ns, g = s.own.Load().eng.EnterWait(ns)
		if ws.ogens[i] != g {
			ws.ogens[i], same = g, false
		}
	}
	ws.ons = ns
	if same {
		return
	}
	if ws.owaiter != nil {
		ws.owaiter.Release() // replaced: drop its ctx registration
	}
	ws.owaiter = nil
	if len(ns) > 0 && len(ns) <= sys.MaxWaitv {
		ws.owaiter, _ = ringbuf.NewWaiter(ns...)
	}
}
