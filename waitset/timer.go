package waitset

import (
	"fmt"
	"time"
)

// timer is a deadline (every == 0: fires once) or an interval.
type timer struct {
	key   int
	next  time.Time
	every time.Duration
	done  bool // a deadline that fired
}

// due reports whether t fires at now.
func (t *timer) due(now time.Time) bool { return !t.done && !now.Before(t.next) }

// fire records that t was reported at now: a deadline is spent, an
// interval moves to its next tick after now (missed ticks are reported
// once, not queued: the phase is kept).
func (t *timer) fire(now time.Time) {
	if t.every <= 0 {
		t.done = true
		return
	}
	t.next = t.next.Add(t.every)
	if !now.Before(t.next) {
		missed := now.Sub(t.next)/t.every + 1
		t.next = t.next.Add(missed * t.every)
	}
}

// AddDeadline adds a one-shot timer: the Wait that runs at or after at
// reports key once.
func (ws *WaitSet) AddDeadline(at time.Time, key int) error {
	if ws.closed.Load() {
		return ErrClosed
	}
	ws.timers = append(ws.timers, timer{key: key, next: at})
	return nil
}

// AddInterval adds a periodic timer: key is reported every period, the
// first time one period from now. A Wait that comes late reports it once
// (missed ticks are not queued) and the phase is kept.
func (ws *WaitSet) AddInterval(period time.Duration, key int) error {
	if ws.closed.Load() {
		return ErrClosed
	}
	if period <= 0 {
		return fmt.Errorf("add interval of %v: %w", period, ErrInvalidSource)
	}
	ws.timers = append(ws.timers, timer{key: key, next: time.Now().Add(period), every: period})
	return nil
}

// nextTimer returns the earliest pending timer (zero: none).
func (ws *WaitSet) nextTimer() time.Time {
	var at time.Time
	for i := range ws.timers {
		t := &ws.timers[i]
		if !t.done && (at.IsZero() || t.next.Before(at)) {
			at = t.next
		}
	}
	return at
}
