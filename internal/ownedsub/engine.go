package ownedsub

import (
	"sync"
	"sync/atomic"

	"github.com/parallax-ipc/parallax/internal/amutex"
	"github.com/parallax-ipc/parallax/internal/idlegate"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// Options configure an [Engine]. The zero value is the default: a mutex,
// no Finished callback.
type Options struct {
	// SingleGoroutine promises that every call to the engine, its Conns
	// and its Samples comes from one goroutine at a time, with the
	// happens-before edges between them supplied by the caller. The
	// engine then takes no mutex (two local atomic read-modify-writes
	// fewer per TryTake and per Release).
	SingleGoroutine bool
	// Finished, if set, is called once per connection when the engine
	// needs nothing more from it: a closing connection with no sample held,
	// or an orphaned one with an empty data ring and no sample held (design
	// §4.1). The caller then unmaps what it can and sends
	// ReleaseConnection. It runs on the goroutine of the call that finished
	// the connection (Release, TryTake, Take, CloseConn, OrphanConn,
	// Close), without the engine's mutex held, so it may call the engine
	// (RemoveConn included).
	Finished func(*Conn)
	// OnIdle, if not nil, runs once after [Engine.Close], when no sample
	// is held and no [Engine.Hold] lasts any more (after the Finished
	// calls of the same moment): the caller lets go of what the samples'
	// bytes alias. It runs without the engine's mutex.
	OnIdle func()
}

// An Engine is one subscriber's owned data path: its connections, each
// with its publisher's data segments and its held table. See the package
// doc.
//
// Use [New]; the zero value is invalid. An Engine is safe for concurrent use
// as the package doc describes (one waiting taker at a time), unless
// [Options.SingleGoroutine] says it need not be; it must not be copied. It
// owns no fds or mappings: the caller keeps each connection segment mapped
// until RemoveConn returns, and each data segment until no sample of it is
// held.
type Engine struct {
	opts Options

	// mu guards everything below and every Conn's fields marked "mu".
	// Never held across a wait. An amutex.Mutex: one locked instruction
	// per Lock/Unlock pair instead of sync.Mutex's two (the taking
	// goroutine takes it twice per message: take, release).
	mu amutex.Mutex

	// set is the current connection set. It is replaced (copy on write)
	// by AddConn and RemoveConn under mu and loaded without mu by the
	// waiting path (atomic pointer: process-local, any ordering beyond
	// the pointer's own acquire is not needed).
	set atomic.Pointer[connSet]

	// waitMu guards waitingOn, the set a Wait looks at (nil: no wait).
	// It is taken only on the waiting path and by RemoveConn, never with
	// mu held. RemoveConn waits on waitCond until no wait looks at a set
	// older than the one it published, so when it returns no wait touches
	// the removed connection's memory any more.
	waitMu    sync.Mutex
	waitCond  sync.Cond
	waitingOn *connSet
	readyFn   func() bool // e.waiterReady, built once: a wait allocates no closure

	// closed is set by Close: takes return ErrClosed and waits end.
	// Process-local; seq-cst (Dekker with the waiter's sleeping flags, via
	// Notify after the store).
	closed atomic.Bool

	next int // round-robin start of the next TryTake
	gen  uint64

	taken, released, badRefs, pendings uint64
	// gate: the holds and OnIdle (Hold); closed above is its Close too.
	gate      idlegate.Gate
	finishedQ []*Conn // connections finished under mu, to report after unlock
}

// connSet is one immutable snapshot of the connections.
type connSet struct {
	conns []*Conn
	// waiter sleeps on the data wakes of up to sys.MaxWaitv connections
	// (nil with fewer than 2); slices says waits must be cut into 1 ms
	// slices because some connections are not in it.
	waiter *ringbuf.Waiter
	slices bool
	gen    uint64 // Engine.gen when published
	// changed is closed when a newer set replaces this one, or at Close:
	// a wait with no connection to sleep on waits for it.
	changed chan struct{}
}

// New returns an engine without connections; add them with
// [Engine.AddConn].
func New(opts Options) *Engine {
	amutex.Enable() // once per process: the engines' locks unlock with a plain store
	e := &Engine{opts: opts, gate: idlegate.New(opts.OnIdle)}
	e.waitCond.L = &e.waitMu
	e.readyFn = e.waiterReady
	e.set.Store(&connSet{changed: make(chan struct{})})
	return e
}

// Stats is a snapshot of an engine: totals since New.
type Stats struct {
	Conns    int    // connections added and not removed
	Held     int    // samples held now, over every connection (removed ones included)
	Taken    uint64 // samples handed out
	Released uint64 // samples released
	BadRefs  uint64 // refs refused (connections failed by a bad ref)
	Pendings uint64 // refs that named a segment not granted yet
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.lock()
	defer e.unlock()
	return Stats{
		Conns: len(e.set.Load().conns), Held: int(e.taken - e.released),
		Taken: e.taken, Released: e.released, BadRefs: e.badRefs, Pendings: e.pendings,
	}
}

// Close ends takes: TryTake and Take return [ErrClosed], a waiting Take
// wakes up, and every connection turns closing (releases still push;
// [Options.Finished] runs for each once it holds nothing); once no sample
// is held and no [Engine.Hold] lasts, [Options.OnIdle] runs. Closing
// twice does nothing.
func (e *Engine) Close() {
	if e.closed.Swap(true) {
		return
	}
	e.lock()
	e.gate.Close()
	for _, c := range e.set.Load().conns {
		c.close()
	}
	e.wakeWaiter(e.set.Load())
	close(e.set.Load().changed) // a wait without connections
	idle := e.becameIdle()
	e.unlockReport()
	e.runIdle(idle)
}

// Hold keeps the engine from running OnIdle until the matching
// [Engine.Unhold], for a caller that works on its memory outside a
// sample (Close itself). It reports false, holding nothing, once OnIdle
// has run.
func (e *Engine) Hold() bool {
	e.lock()
	defer e.unlock()
	return e.gate.Hold()
}

// Unhold ends a [Engine.Hold] that succeeded; the last one after Close
// runs OnIdle when no sample is held.
func (e *Engine) Unhold() {
	e.lock()
	e.gate.Unhold()
	idle := e.becameIdle()
	e.unlockReport()
	e.runIdle(idle)
}

// becameIdle reports, once, that the engine is closed with no sample held
// and no hold: OnIdle is due. mu held.
func (e *Engine) becameIdle() bool { return e.gate.Due(e.taken != e.released) }

// runIdle runs OnIdle when idle says it is due; mu not held.
func (e *Engine) runIdle(idle bool) { e.gate.Run(idle) }

// lock takes mu unless the caller promised a single goroutine.
func (e *Engine) lock() {
	if !e.opts.SingleGoroutine {
		e.mu.Lock()
	}
}

// unlock releases mu unless the caller promised a single goroutine.
func (e *Engine) unlock() {
	if !e.opts.SingleGoroutine {
		e.mu.Unlock()
	}
}

// unlockReport releases mu and then calls Finished for every connection
// that finished under it.
func (e *Engine) unlockReport() {
	if len(e.finishedQ) == 0 {
		e.unlock()
		return
	}
	q := e.finishedQ
	e.finishedQ = nil
	// The Finished calls still touch their connections' segments (the
	// caller removes and unmaps them there): they hold the engine, so
	// OnIdle, which lets the runtime and its mappings go, waits for them
	// even when another goroutine's release ends the last sample first.
	held := e.gate.Hold()
	e.unlock()
	if e.opts.Finished != nil {
		for _, c := range q {
			e.opts.Finished(c)
		}
	}
	if held {
		e.Unhold()
	}
}

// publish installs conns as the new set, with a waiter over their data
// wakes. mu held.
func (e *Engine) publish(conns []*Conn) {
	s := &connSet{conns: conns, changed: make(chan struct{})}
	if len(conns) > 1 {
		ns := make([]*ringbuf.Notifier, 0, min(len(conns), sys.MaxWaitv))
		for _, c := range conns[:min(len(conns), sys.MaxWaitv)] {
			ns = append(ns, c.wake)
		}
		s.waiter, _ = ringbuf.NewWaiter(ns...) // 2..MaxWaitv notifiers: cannot fail
		s.slices = len(conns) > sys.MaxWaitv
	}
	e.gen++
	s.gen = e.gen
	old := e.set.Load()
	e.set.Store(s)
	if !e.closed.Load() {
		close(old.changed) // Close closed it already
	}
}

// wakeWaiter wakes a Take sleeping on any connection of s: a Notify on
// every data wake (a system call only where the waiter announced sleep).
func (e *Engine) wakeWaiter(s *connSet) {
	for _, c := range s.conns {
		if !c.removed {
			_ = c.wake.Notify()
		}
	}
}
