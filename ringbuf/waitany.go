package ringbuf

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax/internal/sys"
)

// A Waiter sleeps on several notifiers at once — the consumer side of a
// wait set whose members each have their own notifier. It uses futex_waitv
// (Linux 5.16+): one sleep, woken by whichever producer notifies first.
//
// Use [NewWaiter]; the zero value is invalid. A Waiter must not be used
// concurrently; it holds no resources and needs no Close.
type Waiter struct {
	plan  spinPlan // what its last yield showed
	ns    []*Notifier
	addrs []*uint32
	seen  []uint32
	watch ctxWatch // wakes a sleep when its context ends
}

// NewWaiter returns a waiter over ns (at most 128 notifiers, the kernel's
// futex_waitv limit).
func NewWaiter(ns ...*Notifier) (*Waiter, error) {
	if len(ns) == 0 || len(ns) > sys.MaxWaitv {
		return nil, fmt.Errorf("waiter over %d notifiers (1..%d): %w", len(ns), sys.MaxWaitv, ErrInvalidArgument)
	}
	w := &Waiter{ns: ns, addrs: make([]*uint32, len(ns)), seen: make([]uint32, len(ns))}
	for i, n := range ns {
		w.addrs[i] = rawWord32(n.seq)
	}
	return w, nil
}

// Wait returns nil once ready reports true, with the semantics of
// [Notifier.Wait] (spin, busy poll, timeout, deadline, ctx) over all the
// waiter's notifiers: a Notify on any of them wakes it. It returns an error
// wrapping os.ErrClosed when every notifier is closed.
//
// The first sleep under a cancellable ctx registers a callback on it
// (allocates); the waiter keeps it for later sleeps under the same ctx,
// which then allocate nothing. It stays registered until ctx ends, a Wait
// under another ctx, or [Waiter.Release].
func (w *Waiter) Wait(ctx context.Context, ready func() bool, opts WaitOptions) error {
	if ready() {
		return nil
	}
	deadline := opts.deadline()
	if !opts.BusyPoll && w.plan.spinThenYield(opts.spinBudget(ctx, deadline), ctx.Done(), ready) {
		return nil
	}
	done := ctx.Done()
	if opts.BusyPoll {
		return w.ns[0].busyPoll(ctx, done, ready, deadline)
	}
	if done != nil {
		// Registered on the sleeping path only, and kept for the next
		// sleeps under the same context: it allocates once per context.
		w.watch.arm(ctx, done, w.ns[0])
		defer w.watch.disarm()
	}
	defer func() {
		for _, n := range w.ns {
			n.sleeping.Store(0)
		}
	}()
	for {
		closed := 0
		for i, n := range w.ns {
			// As in Notifier.sleep: sample Seq, then announce (seq-cst).
			w.seen[i] = n.seq.Load()
			n.sleeping.Store(1)
			if n.closed.Load() != 0 {
				closed++
			}
		}
		if ready() {
			return nil
		}
		if closed == len(w.ns) {
			return errNotifierClosed
		}
		if err := w.ns[0].waitDone(ctx, done, time.Time{}); err != nil && !errors.Is(err, errNotifierClosed) {
			return err
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return errWaitTimeout
		}
		timeout := waitSlice
		if !deadline.IsZero() {
			timeout = min(timeout, max(time.Until(deadline), time.Microsecond))
		}
		for _, n := range w.ns {
			n.sleeps.Add(1) // statistics only
		}
		// nil, EAGAIN, EINTR and ETIMEDOUT all mean "look again".
		if _, err := sys.FutexWaitv(w.addrs, w.seen, timeout); err != nil &&
			!errors.Is(err, sys.EAGAIN) && !errors.Is(err, sys.EINTR) && !errors.Is(err, sys.ETIMEDOUT) {
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// Release drops the context registration Wait keeps between sleeps (see
// [Waiter.Wait]). Call it when the waiter is discarded while its context
// lives on; the waiter stays usable. It must not run during a Wait.
func (w *Waiter) Release() { w.watch.release() }
