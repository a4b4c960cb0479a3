package event

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/rpclink"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/subscriber"
)

// maxWords is futex_waitv's limit; a listener with more notifier
// connections sleeps in slices of sliceWait (docs/design/events.md).
const (
	maxWords  = 128
	sliceWait = time.Millisecond
)

// A Listener receives the ids its service's notifiers signal. Use
// [NewListener]; the zero value is invalid. One goroutine at a time
// waits on it ([Listener.Wait], [Listener.TryWait] or a wait set); the
// others get [ErrBusy]. Close and the counters are safe for concurrent use.
type Listener struct {
	service string
	opts    Options
	sub     *subscriber.Subscriber
	link    *rpclink.Sub // its Report hook is set by subscriber.New

	mu      sync.Mutex
	conns   []*lconn // current connections (one per notifier)
	retired []*lconn // removed: drained and unmapped by the waiter
	closed  bool
	changed chan struct{} // closed and replaced on every change of conns

	gen    atomic.Uint64     // bumped on every change of conns
	local  *ringbuf.Notifier // process-local word: changes wake the waiter
	waitMu sync.Mutex        // held by the one waiting goroutine
	done   atomic.Bool

	// The waiter's state (waitMu).
	seen   map[uint64]struct{}
	out    []uint64
	waiter *ringbuf.Waiter
	wgen   uint64
	words  []*ringbuf.Notifier
	snap   []*lconn
	ready  func() bool
	bad    atomic.Uint64
}

// lconn is one notifier connection as the listener reads it.
type lconn struct {
	id, pub uint32
	oc      *clientrt.OwnedConn
	ring    *ringbuf.Ring
	wake    *ringbuf.Notifier
	bad     bool // the ring failed validation: not read any more (waiter)
}

// NewListener returns a listener of service. Access rules decide on the
// subscribe side ("may not listen to"); the router must run the owned
// model.
func NewListener(ctx context.Context, service string, opts Options) (*Listener, error) {
	if err := opts.check("listener", service); err != nil {
		return nil, err
	}
	local, err := ringbuf.FormatNotifier(make([]byte, ringbuf.NotifierSize))
	if err != nil {
		return nil, fmt.Errorf("event listener of %q: %w", service, err)
	}
	l := &Listener{service: service, opts: opts, local: local, seen: map[uint64]struct{}{}, changed: make(chan struct{})}
	l.ready = l.readyWait
	link := &rpclink.Sub{Kind: wire.EndpointEvent, Added: l.added, Gone: l.gone}
	l.link = link
	s, err := subscriber.New(rpclink.WithSub(ctx, link), service, subscriber.Options{Domain: opts.Domain, Socket: opts.Socket,
		QueueCapacity: opts.Capacity, Policy: subscriber.BlockProducer, MaxHeld: 1, Spin: opts.Spin, BusyPoll: opts.BusyPoll})
	if err != nil {
		return nil, fmt.Errorf("event listener of %q: %w", service, err)
	}
	l.sub = s
	return l, nil
}

func (l *Listener) added(id, pub uint32, oc *clientrt.OwnedConn) {
	rc := oc.Conn()
	c := &lconn{id: id, pub: pub, oc: oc, ring: rc.DataRing(), wake: rc.DataWake()}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		oc.Close()
		return
	}
	l.conns = append(l.conns, c)
	l.changedLocked()
	l.mu.Unlock()
	_ = l.local.Notify()
}

// gone retires connection id: the waiter reads what its notifier queued
// (a dead notifier's last signals count) and unmaps it afterwards, never
// while it sleeps on its word.
func (l *Listener) gone(id uint32, _ wire.RemovedCode) {
	l.mu.Lock()
	for i, c := range l.conns {
		if c.id == id {
			l.conns = append(l.conns[:i], l.conns[i+1:]...)
			l.retired = append(l.retired, c)
			l.changedLocked()
			break
		}
	}
	l.mu.Unlock()
	_ = l.local.Notify()
}

// changedLocked records a change of conns; l.mu held.
func (l *Listener) changedLocked() {
	l.gen.Add(1)
	close(l.changed)
	l.changed = make(chan struct{})
}

// Service returns the service name.
func (l *Listener) Service() string { return l.service }

// Notifiers returns how many notifiers are connected.
func (l *Listener) Notifiers() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// BadConnections counts notifier connections the listener stopped reading
// because their ring failed validation; each was reported to the router,
// which cuts it.
func (l *Listener) BadConnections() uint64 { return l.bad.Load() }

// WaitForNotifiers waits until at least k notifiers are connected.
func (l *Listener) WaitForNotifiers(ctx context.Context, k int) error {
	for l.Notifiers() < k {
		l.mu.Lock()
		ch := l.changed
		l.mu.Unlock()
		if l.Notifiers() >= k {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("event listener of %q: waiting for %d notifiers: %w", l.service, k, ctx.Err())
		}
	}
	return nil
}

// TryWait returns the ids that fired since the previous wake, sorted,
// without waiting (empty when none). The slice is reused by the next call.
func (l *Listener) TryWait() ([]uint64, error) {
	if !l.waitMu.TryLock() {
		return nil, ErrBusy
	}
	defer l.waitMu.Unlock()
	if l.done.Load() {
		return nil, ErrClosed
	}
	return l.drain(), nil
}

// Wait blocks until some id fired and returns the set of ids that fired
// since the previous wake, sorted, each once however often it was
// signalled. The slice is reused by the next call. ctx ending returns an
// error wrapping ctx.Err() (and parallax.ErrTimeout for a deadline).
func (l *Listener) Wait(ctx context.Context) ([]uint64, error) {
	if !l.waitMu.TryLock() {
		return nil, ErrBusy
	}
	defer l.waitMu.Unlock()
	for {
		if l.done.Load() {
			return nil, ErrClosed
		}
		if ids := l.drain(); len(ids) > 0 {
			return ids, nil
		}
		if err := l.sleep(ctx); err != nil {
			return nil, fmt.Errorf("event listener of %q: %w", l.service, err)
		}
	}
}

// sleep waits until a ring has data or the connections change. waitMu.
func (l *Listener) sleep(ctx context.Context) error {
	l.rebuild()
	w := ringbuf.WaitOptions{Spin: l.opts.Spin, BusyPoll: l.opts.BusyPoll}
	if l.waiter == nil { // > 128 connections: slices
		w.Deadline = time.Now().Add(sliceWait)
		err := l.local.Wait(ctx, l.ready, w)
		if errors.Is(err, parallax.ErrTimeout) && ctx.Err() == nil {
			return nil
		}
		return err
	}
	return l.waiter.Wait(ctx, l.ready, w)
}

// rebuild makes the waiter current: the local word and every connection's
// data wake. waitMu held.
func (l *Listener) rebuild() {
	g := l.gen.Load()
	if l.waiter != nil && g == l.wgen {
		return
	}
	l.mu.Lock()
	l.snap = append(l.snap[:0], l.conns...)
	l.wgen = l.gen.Load()
	l.mu.Unlock()
	l.words = append(l.words[:0], l.local)
	for _, c := range l.snap {
		l.words = append(l.words, c.wake)
	}
	if l.waiter != nil {
		l.waiter.Release() // drop the context registration it keeps
	}
	l.waiter = nil
	if len(l.words) <= maxWords {
		l.waiter, _ = ringbuf.NewWaiter(l.words...)
	}
}

// readyWait is the sleep's readiness check over the snapshot.
func (l *Listener) readyWait() bool {
	if l.done.Load() || l.gen.Load() != l.wgen {
		return true
	}
	for _, c := range l.snap {
		if !c.bad && c.ring.Len() > 0 {
			return true
		}
	}
	return false
}

// Ready reports whether a wake would find ids (or a connection change to
// process). Lock-free over the current snapshot; for wait sets.
func (l *Listener) Ready() bool {
	if l.done.Load() || l.gen.Load() != l.wgen {
		return true
	}
	return l.readyWait()
}

// AppendNotifiers appends the words a wait set sleeps on for l and
// returns them with l's generation (a wait set rebuilds when it changes).
// Only the goroutine that waits on l may call it.
func (l *Listener) AppendNotifiers(dst []*ringbuf.Notifier) ([]*ringbuf.Notifier, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	dst = append(dst, l.local)
	for _, c := range l.conns {
		dst = append(dst, c.wake)
	}
	return dst, l.gen.Load()
}

// drain pops every ring (retired ones last, then unmapped) into the set.
// waitMu held.
func (l *Listener) drain() []uint64 {
	clear(l.seen)
	l.out = l.out[:0]
	l.mu.Lock()
	l.snap = append(l.snap[:0], l.conns...)
	retired := l.retired
	l.retired = nil
	l.wgen = l.gen.Load()
	l.mu.Unlock()
	for _, c := range l.snap {
		l.drainConn(c)
	}
	for _, c := range retired {
		l.drainConn(c)
		c.oc.Close()
	}
	if len(retired) > 0 {
		l.waiter = nil // rebuilt without them
	}
	slices.Sort(l.out)
	return l.out
}

// drainConn pops c's ring: at most its capacity entries (a notifier
// pushing meanwhile is read at the next wake). Every entry is validated:
// 0 names no id (the notifier pushes id+1).
func (l *Listener) drainConn(c *lconn) {
	if c.bad {
		return
	}
	for range c.ring.Cap() {
		v, err := c.ring.TryPop()
		if err == ringbuf.ErrEmpty {
			return
		}
		if err == nil && v == parallax.NilRef {
			err = fmt.Errorf("entry 0 names no event id: %w", parallax.ErrCorrupt)
		}
		if err != nil {
			l.badConn(c, err)
			return
		}
		id := uint64(v) - 1
		if _, ok := l.seen[id]; !ok {
			l.seen[id] = struct{}{}
			l.out = append(l.out, id)
		}
	}
}

// badConn stops reading c, whose ring failed validation, and reports it
// to the router, which cuts the connection (its notifier may be hostile or
// broken); the router's removal then retires and unmaps it (gone). Other
// connections are untouched. waitMu held.
func (l *Listener) badConn(c *lconn, err error) {
	c.bad = true
	l.bad.Add(1)
	slog.Warn("parallax: event listener stops reading a notifier connection", "service", l.service, "conn", c.id, "pub", c.pub, "err", err)
	if report := l.link.Report; report != nil {
		report(c.id, errors.Is(err, ringbuf.ErrCorruptRing), fmt.Sprintf("event listener of %q: %v", l.service, err))
	}
}

// Close ends the listener: a waiting Wait returns ErrClosed; every
// connection is unmapped once no wait uses it.
func (l *Listener) Close() error {
	if l.done.Swap(true) {
		return nil
	}
	_ = l.local.Notify()
	l.waitMu.Lock() // the waiter left
	defer l.waitMu.Unlock()
	err := l.sub.Close()
	l.mu.Lock()
	l.closed = true
	all := append(l.conns, l.retired...)
	l.conns, l.retired = nil, nil
	l.mu.Unlock()
	for _, c := range all {
		c.oc.Close()
	}
	if err != nil {
		return fmt.Errorf("event listener of %q: close: %w", l.service, err)
	}
	return nil
}
