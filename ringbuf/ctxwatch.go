package ringbuf

import (
	"context"
	"sync"
)

// ctxWatch wakes a [Waiter]'s sleep when the sleep's context ends. It
// registers [context.AfterFunc] once per context (told apart by its Done
// channel) and keeps the registration for the next sleeps, so a waiter
// that sleeps again and again under one context allocates once instead
// of on every sleep (a registration, its callback and a channel: about a
// tenth of a fan-out subscriber's CPU time with its garbage collection).
// The callback wakes only while a sleep is armed, under mu, so it never
// touches a notifier after the sleep ended (the notifier's memory may be
// unmapped then). A registration outlives the waits until the context
// ends, another context is watched, or release.
type ctxWatch struct {
	mu     sync.Mutex
	done   <-chan struct{}
	stop   func() bool
	fireFn func() // cw.fire, built once
	target *Notifier
	armed  bool
}

// arm makes a sleep on target end when ctx (whose Done channel is done,
// not nil) ends. Only the waiter calls arm and disarm.
func (cw *ctxWatch) arm(ctx context.Context, done <-chan struct{}, target *Notifier) {
	if done != cw.done {
		cw.release()
		if cw.fireFn == nil {
			cw.fireFn = cw.fire
		}
		cw.done = done
		cw.stop = context.AfterFunc(ctx, cw.fireFn)
	}
	cw.mu.Lock()
	cw.target, cw.armed = target, true
	cw.mu.Unlock()
}

// disarm ends the sleep arm began: once it returns the callback no longer
// touches the target (a callback under way finishes first).
func (cw *ctxWatch) disarm() {
	cw.mu.Lock()
	cw.target, cw.armed = nil, false
	cw.mu.Unlock()
}

func (cw *ctxWatch) fire() {
	cw.mu.Lock()
	if cw.armed {
		_ = cw.target.wake() // any one word wakes the sleep
	}
	cw.mu.Unlock()
}

// release drops the registration (the waiter is not sleeping).
func (cw *ctxWatch) release() {
	if cw.stop != nil {
		cw.stop()
		cw.stop, cw.done = nil, nil
	}
}
