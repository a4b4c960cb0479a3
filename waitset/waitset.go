package waitset

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// A Source is an endpoint a WaitSet can wait on: a readiness check and
// the futex words (ringbuf notifiers, with the sleeping-flag protocol)
// its producers wake. [subscriber.Subscriber], [rpc.Server] (a request
// arrived), [rpc.Client] (a response arrived) and [event.Listener]
// implement it.
type Source interface {
	// Ready reports whether the source has something to take. It must be
	// cheap, lock-light and allocation-free: Wait calls it on every look.
	Ready() bool
	// AppendNotifiers appends the words to sleep on and returns them with
	// a generation that changes whenever that set of words changes.
	AppendNotifiers(dst []*ringbuf.Notifier) ([]*ringbuf.Notifier, uint64)
}

// A Guard is a Source whose words can go away (an owned-model
// connection is unmapped when it is removed). AppendNotifiers registers
// the set as the source's waiter; the source then keeps a removed word
// mapped until LeaveWait, which the set calls after every sleep. While
// the set sleeps it also asks Changed (cheap, lock-free): true ends the
// sleep so the set leaves and asks for the new words.
// [subscriber.Subscriber], [rpc.Server] and [rpc.Client] implement it.
type Guard interface {
	LeaveWait()
	Changed() bool
}

// slice bounds one sleep: a source's words can change without a wake on
// a word the set sleeps on (a subscriber's new connection), so the set
// looks again at least this often.
const slice = 10 * time.Millisecond

// wideSlice bounds one sleep of a set with more than 128 words (it sleeps
// on its local word only and polls the sources between slices).
const wideSlice = time.Millisecond

// Options tune a WaitSet's sleep (as ringbuf.WaitOptions).
type Options struct {
	// Spin is how long Wait keeps checking before it sleeps (zero:
	// ringbuf.DefaultSpin; negative: no spin).
	Spin time.Duration
	// BusyPoll makes Wait poll without sleeping (dedicated cores only).
	BusyPoll bool
}

// A WaitSet waits on any mix of sources, timers and fds and reports the
// keys of those that fired. Use [New]. Add and Wait must not be called
// concurrently (one goroutine owns the set); Close may be called from any
// goroutine and ends a running Wait.
type WaitSet struct {
	opts   Options
	local  *ringbuf.Notifier // process-local word: fd helper, Close
	srcs   []source
	timers []timer
	fds    []*fdSource
	fdw    *fdWatch
	closed atomic.Bool

	out    []int
	ready  func() bool // cached method value: no allocation per Wait
	words  []*ringbuf.Notifier
	gens   []uint64
	waiter *ringbuf.Waiter
	stale  bool // rebuild the waiter before the next sleep
}

type source struct {
	src   Source
	guard Guard // src as a Guard, or nil
	key   int
}

// New returns an empty wait set.
func New(opts Options) (*WaitSet, error) {
	local, err := ringbuf.FormatNotifier(make([]byte, ringbuf.NotifierSize))
	if err != nil {
		return nil, fmt.Errorf("new wait set: %w", err)
	}
	ws := &WaitSet{opts: opts, local: local, stale: true}
	ws.ready = ws.anyReady
	return ws, nil
}

// Add adds a source reported as key while it is Ready.
func (ws *WaitSet) Add(src Source, key int) error {
	if ws.closed.Load() {
		return ErrClosed
	}
	if src == nil {
		return fmt.Errorf("add a nil source: %w", ErrInvalidSource)
	}
	g, _ := src.(Guard)
	ws.srcs = append(ws.srcs, source{src: src, guard: g, key: key})
	ws.stale = true
	return nil
}

// Len returns how many sources, timers and fds the set holds.
func (ws *WaitSet) Len() int { return len(ws.srcs) + len(ws.timers) + len(ws.fds) }

// anyReady is the sleep's readiness check: no lock, no syscall.
func (ws *WaitSet) anyReady() bool {
	if ws.closed.Load() {
		return true
	}
	for i := range ws.srcs {
		if s := &ws.srcs[i]; s.src.Ready() || (s.guard != nil && s.guard.Changed()) {
			return true
		}
	}
	for _, f := range ws.fds {
		if f.ready.Load() {
			return true
		}
	}
	if len(ws.timers) > 0 {
		now := time.Now()
		for i := range ws.timers {
			if ws.timers[i].due(now) {
				return true
			}
		}
	}
	return ws.fdw != nil && ws.fdw.err.Load() != nil
}

// collect appends the keys of everything ready to ws.out, in the order:
// sources, fds, timers (each in the order added). Reported fds and timers
// are consumed (an fd is re-armed level-triggered, a timer moves on).
func (ws *WaitSet) collect() {
	ws.out = ws.out[:0]
	for i := range ws.srcs {
		if ws.srcs[i].src.Ready() {
			ws.out = append(ws.out, ws.srcs[i].key)
		}
	}
	for _, f := range ws.fds {
		if f.ready.Swap(false) {
			ws.out = append(ws.out, f.key)
		}
	}
	if len(ws.timers) > 0 {
		now := time.Now()
		for i := range ws.timers {
			if t := &ws.timers[i]; t.due(now) {
				t.fire(now)
				ws.out = append(ws.out, t.key)
			}
		}
	}
}

// Wait blocks until something in the set fired and returns the keys of
// everything that did (sources, then fds, then timers, each in the order
// added). The slice is reused by the next Wait. When something is ready
// at the first look, Wait makes no system call and allocates nothing.
//
// A source may be reported with nothing to take (an event listener whose
// connections changed); treat that as a spurious wake. ctx ending returns
// an error wrapping ctx.Err() (and parallax.ErrTimeout for a deadline);
// Close ends a Wait with [ErrClosed].
func (ws *WaitSet) Wait(ctx context.Context) ([]int, error) {
	if ws.Len() == 0 {
		return nil, ErrEmpty
	}
	for {
		if ws.closed.Load() {
			return nil, ErrClosed
		}
		if ws.collect(); len(ws.out) > 0 {
			return ws.out, nil
		}
		if p := ws.fdErr(); p != nil {
			return nil, fmt.Errorf("wait set: %w", p)
		}
		if err := ctx.Err(); err != nil {
			return nil, ctxErr(err)
		}
		if ws.fdw != nil {
			ws.fdw.maybeArm()
		}
		if err := ws.sleep(ctx); err != nil {
			return nil, err
		}
	}
}

// fdErr returns the fd helper's poll failure, if any.
func (ws *WaitSet) fdErr() error {
	if ws.fdw == nil {
		return nil
	}
	if p := ws.fdw.err.Load(); p != nil {
		return *p
	}
	return nil
}

// sleep sleeps until something may be ready, a slice or a timer ended;
// it returns an error only for ctx's end.
func (ws *WaitSet) sleep(ctx context.Context) error {
	ws.rebuild()
	defer ws.leave()
	w := ringbuf.WaitOptions{Spin: ws.opts.Spin, BusyPoll: ws.opts.BusyPoll}
	cut := slice
	if ws.waiter == nil {
		cut = wideSlice
	}
	w.Deadline = time.Now().Add(cut)
	if at := ws.nextTimer(); !at.IsZero() && at.Before(w.Deadline) {
		w.Deadline = at
	}
	var err error
	if ws.waiter != nil {
		err = ws.waiter.Wait(ctx, ws.ready, w)
	} else {
		err = ws.local.Wait(ctx, ws.ready, w)
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctxErr(ctx.Err())
	case errors.Is(err, parallax.ErrTimeout):
		// A slice or a timer ended: look again.
	default:
		// A word went away under the sleep (a connection removed and
		// unmapped), or futex_waitv is missing: rebuild; sleep on the
		// local word this time, so a lasting failure costs a slice.
		ws.dropWaiter()
		ws.stale = true
		w.Deadline = time.Now().Add(wideSlice)
		if err := ws.local.Wait(ctx, ws.ready, w); err != nil && ctx.Err() != nil {
			return ctxErr(ctx.Err())
		}
	}
	return nil
}

// leave tells every guarded source that the set no longer sleeps on its
// words.
func (ws *WaitSet) leave() {
	for i := range ws.srcs {
		if g := ws.srcs[i].guard; g != nil {
			g.LeaveWait()
		}
	}
}

// rebuild makes the waiter current: the local word and every source's
// words, rebuilt when a source's generation or word count changed. It
// asks every source each time: that registers the set with guarded
// sources for the sleep that follows.
func (ws *WaitSet) rebuild() {
	changed := ws.stale
	if len(ws.gens) != len(ws.srcs) {
		ws.gens, changed = make([]uint64, len(ws.srcs)), true
	}
	n := len(ws.words)
	words := append(ws.words[:0], ws.local)
	for i := range ws.srcs {
		var g uint64
		words, g = ws.srcs[i].src.AppendNotifiers(words)
		if ws.gens[i] != g {
			ws.gens[i], changed = g, true
		}
	}
	ws.words = words
	if !changed && len(words) == n {
		return
	}
	ws.stale = false
	ws.dropWaiter()
	if len(words) <= sys.MaxWaitv {
		// A copy: the waiter keeps its slice while ws.words is reused.
		ws.waiter, _ = ringbuf.NewWaiter(append([]*ringbuf.Notifier(nil), words...)...)
	}
}

// ctxErr wraps a context's end as ringbuf's waits do.
func ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("wait set: %w: %w", parallax.ErrTimeout, err)
	}
	return fmt.Errorf("wait set: %w", err)
}

// Close ends the set: a running Wait returns ErrClosed, the fd helper
// goroutine ends. The sources stay open (they belong to the caller).
func (ws *WaitSet) Close() error {
	if ws.closed.Swap(true) {
		return nil
	}
	err := ws.local.Close() // wakes a sleeping Wait
	if ws.fdw != nil {
		ws.fdw.close()
	}
	if err != nil {
		return fmt.Errorf("close wait set: %w", err)
	}
	return nil
}

// dropWaiter discards the waiter and the context registration it keeps
// between sleeps.
func (ws *WaitSet) dropWaiter() {
	if ws.waiter != nil {
		ws.waiter.Release()
		ws.waiter = nil
	}
}
