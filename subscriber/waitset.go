package subscriber

import (
	"context"
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// A WaitSet waits on several subscribers at once: one sleep (futex_waitv
// over their connections' wake words), woken by whichever publisher
// notifies first. It is the Parallax counterpart of select over many topics.
// Package waitset waits on subscribers together with rpc endpoints, event
// listeners, timers and fds.
//
//	ws, _ := subscriber.NewWaitSet(a, b)
//	for {
//		ready, err := ws.Wait(ctx)
//		for _, s := range ready { ... s.TryTake() ... }
//	}
//
// Use [NewWaitSet]; the zero value is invalid. A WaitSet must not be used
// concurrently, and while it waits its subscribers must not be in Take.
type WaitSet struct {
	subs []*Subscriber
	opts ringbuf.WaitOptions
	out  []*Subscriber

	// The connections' wake words (waitset_owned.go).
	owaiter *ringbuf.Waiter
	oready  func() bool // cached ownedReady
	ons     []*ringbuf.Notifier
	ogens   []uint64
	oslice  time.Duration // bound of one sleep: ownedSlice (a test seam changes it)
}

// NewWaitSet returns a wait set over subs (beyond 128 connection words it
// sleeps in slices; waitset_owned.go). Spin (a duration)
// and BusyPoll come from the first subscriber's options.
func NewWaitSet(subs ...*Subscriber) (*WaitSet, error) {
	if len(subs) == 0 {
		return nil, fmt.Errorf("wait set over no subscribers: %w", ringbuf.ErrInvalidArgument)
	}
	ws := &WaitSet{subs: subs, opts: subs[0].wait, out: make([]*Subscriber, 0, len(subs)), oslice: ownedSlice}
	ws.oready = ws.ownedReady
	return ws, nil
}

func (ws *WaitSet) anyReady() bool {
	for _, s := range ws.subs {
		if s.hasData() {
			return true
		}
	}
	return false
}

// Wait blocks until at least one subscriber has a sample (or is closed) and
// returns those that do, in the set's order. The returned slice is reused
// by the next Wait. ctx ending returns an error wrapping ctx.Err() (and
// parallax.ErrTimeout for a deadline).
func (ws *WaitSet) Wait(ctx context.Context) ([]*Subscriber, error) {
	if err := ws.waitOwned(ctx); err != nil { // waitset_owned.go
		return nil, fmt.Errorf("wait set: %w", err)
	}
	ws.out = ws.out[:0]
	for _, s := range ws.subs {
		if s.hasData() {
			ws.out = append(ws.out, s)
		}
	}
	if len(ws.out) == 0 {
		return nil, fmt.Errorf("wait set: woken with nothing ready: %w", parallax.ErrTimeout)
	}
	return ws.out, nil
}
