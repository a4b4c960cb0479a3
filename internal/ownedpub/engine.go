package ownedpub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/amutex"
	"github.com/parallax-ipc/parallax/internal/idlegate"
	"github.com/parallax-ipc/parallax/internal/owner"
	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// Defaults of [Options].
const (
	DefaultDrainEvery   = 64
	DefaultBlockTimeout = time.Second
)

// Options configure an [Engine]. The zero value is the default: no loan
// limit, no history, a drain every [DefaultDrainEvery] publishes and a
// block-producer wait of [DefaultBlockTimeout].
type Options struct {
	// MaxLoans caps the chunks loaned and not yet published or released
	// (a Loan beyond it fails with an error wrapping [parallax.ErrLimit]);
	// 0 means no cap.
	MaxLoans int
	// History is the number of published chunks kept for late joiners.
	History int
	// DrainEvery is the number of publishes between two drains of every
	// connection's return ring (design §2.3 (c)); 0 means
	// [DefaultDrainEvery], a negative value never drains on a count (only
	// when the free list is empty or a connection is at its bound).
	DrainEvery int
	// BlockTimeout bounds how long Publish waits on one block-producer
	// connection; 0 means [DefaultBlockTimeout].
	BlockTimeout time.Duration
	// SingleGoroutine promises that every call to the engine, its Conns
	// and its Loans comes from one goroutine at a time, with the
	// happens-before edges between them supplied by the caller (for
	// example the publisher's own state machine). The engine then takes
	// no mutex: two local atomic read-modify-writes fewer per Loan and per
	// Publish (≈20 % of a 64 B one-way message in tests/shm). A Publish
	// waiting on a full block-producer connection then cannot be ended by
	// CloseConn or RemoveConn, only by its timeout or the peer.
	SingleGoroutine bool
	// Wait tunes the wait for returns on a block-producer connection at
	// its bound (spin, then sleep on the return wake). Its Timeout and
	// Deadline are ignored: BlockTimeout applies.
	Wait ringbuf.WaitOptions
	// OnIdle, if not nil, runs once after [Engine.Close], when no loan is
	// outstanding and no [Engine.Hold] lasts any more: the caller may
	// unmap the data segments there. It runs without the engine's lock
	// and must not block on a Loan or Publish of this engine.
	OnIdle func()
}

// An Engine is one publisher's owned data path: its data segments, its
// [owner.Tracker] and its connections. See the package doc.
//
// Use [New]; the zero value is invalid. An Engine is safe for concurrent
// use as the package doc describes (Publish calls are serialised), unless
// [Options.SingleGoroutine] says it need not be; it must not be copied. It owns no fds or mappings: the caller keeps every
// segment mapped until it has removed every connection and stopped using
// the engine.
type Engine struct {
	opts Options

	// mu guards everything below, the Tracker and the ConnTracks. It is
	// never held across a blocking wait. Lock order: a caller's own locks
	// (the publisher's control state) → mu. An amutex.Mutex: one locked
	// instruction per Lock/Unlock pair instead of sync.Mutex's two (the
	// publishing goroutine takes it twice per message).
	mu   amutex.Mutex
	cond sync.Cond // on mu: a blocked Publish ended (blocked or a conn's pushing went false)

	tr    *owner.Tracker
	segs  []*dataseg.Segment // by segment index; nil where absent
	conns []*Conn            // live, closing and failed; replaced, never edited in place (copy on write)

	batch      []parallax.ChunkRef // drain buffer: the largest return capacity
	histBuf    []uint32            // history replay scratch, capacity History
	drainEvery int
	sinceDrain int
	blocked    bool // a Publish waits with mu released
	// batching: deliveries defer their subscriber wake-ups to the end of
	// the PublishBatch running now (flushWakes); false while it waits.
	batching bool
	// ctx is the context of the PublishTo delivering now (nil: Publish,
	// which waits up to BlockTimeout); stable while blocked is set.
	ctx context.Context
	// loanEnded, when not nil, is closed (and cleared) when a loan ends
	// (Publish, PublishTo, Release): LoanWait at MaxLoans waits on it.
	// Made only by a waiter, so the common path reads one nil field.
	loanEnded chan struct{}
	seq       uint64
	// unreported holds failures no Publish has returned yet (found by a
	// drain in Loan, Drain or after the deliveries): Publish returns
	// them one at a time, so the caller reports each failed connection.
	unreported []*ConnError

	published, drains, drained, discarded, waits, timeouts, failed, replayed uint64
	// delivered counts pushes on every connection ever (each Conn's
	// delivered, summed); unconnected the Publish calls that found no
	// live connection. With published, discarded and timeouts they are
	// mirrored into ctr's header (publish.go mirror).
	delivered, unconnected uint64
	ctr                    *dataseg.Segment // segment 0: its header holds the mirrored counters

	// gate: Close, the holds, OnIdle (close.go).
	gate idlegate.Gate
	// sleeping counts the LoanWait calls asleep now (on return wakes or
	// at MaxLoans).
	sleeping int
}

// New returns an engine without memory or connections; add them with
// [Engine.AddSegment] and [Engine.AddConn].
func New(opts Options) *Engine {
	amutex.Enable() // once per process: the engines' locks unlock with a plain store
	e := &Engine{
		opts:       opts,
		tr:         owner.New(owner.Config{MaxLoans: opts.MaxLoans, History: opts.History}),
		histBuf:    make([]uint32, 0, max(opts.History, 0)),
		drainEvery: opts.DrainEvery,
		gate:       idlegate.New(opts.OnIdle),
	}
	if e.drainEvery == 0 {
		e.drainEvery = DefaultDrainEvery
	}
	if e.opts.BlockTimeout <= 0 {
		e.opts.BlockTimeout = DefaultBlockTimeout
	}
	e.cond.L = &e.mu
	return e
}

// AddSegment adds a data segment of the publisher, mapped read-write (the
// first segment, or one the router added for growth or a large loan). Its
// chunks join the size class of its chunk size, below the chunks already
// free there. Errors wrap [ErrInvalidArgument] or [owner.ErrSegment].
func (e *Engine) AddSegment(s *dataseg.Segment) error {
	if s == nil || s.ReadOnly() {
		return fmt.Errorf("add segment: nil or read-only segment: %w", ErrInvalidArgument)
	}
	d := s.Desc()
	e.lock()
	defer e.unlock()
	if _, err := e.tr.AddSegment(d.Index, d.ChunkSize, s.Count()); err != nil {
		return err
	}
	segs := e.segs
	for len(segs) <= int(d.Index) {
		segs = append(segs, nil)
	}
	segs[d.Index] = s
	e.segs = segs
	if d.Index == 0 {
		e.ctr = s
		e.mirror() // a resumed publisher's segment shows its counters at once
	}
	return nil
}

// Stats is a snapshot of an engine: the Tracker's accounting plus the
// engine's own counters (totals since New).
type Stats struct {
	owner.Stats
	Conns     int    // connections added and not removed (live, closing or failed)
	Published uint64 // Publish calls that delivered (or kept) the chunk
	Drains    uint64 // return-ring batches popped
	Drained   uint64 // refs accepted from return rings and take-backs
	Discarded uint64 // entries taken back by discard-oldest pushes
	Waits     uint64 // block-producer deliveries that waited (ring full, or at the bound with nothing returned)
	Timeouts  uint64 // block-producer deliveries that timed out
	Failed    uint64 // connections failed (ConnError)
	Replayed  uint64 // history entries delivered to new connections
	Sleeping  int    // LoanWait calls asleep now (on return wakes, or at MaxLoans)
	// Unconnected counts the Publish calls that found no live connection
	// to deliver to (the samples nobody could receive, but history).
	Unconnected uint64
}

// Published returns the Publish calls that delivered (or kept) their
// chunk: Stats().Published without the rest of the snapshot.
func (e *Engine) Published() uint64 {
	e.lock()
	defer e.unlock()
	return e.published
}

// Stats returns the current accounting.
func (e *Engine) Stats() Stats {
	e.lock()
	defer e.unlock()
	return Stats{
		Stats: e.tr.Stats(), Conns: len(e.conns), Published: e.published,
		Drains: e.drains, Drained: e.drained, Discarded: e.discarded,
		Waits: e.waits, Timeouts: e.timeouts, Failed: e.failed, Replayed: e.replayed,
		Sleeping: e.sleeping, Unconnected: e.unconnected,
	}
}

// Drain drains the return ring of every connection that has not failed,
// for example before reading Stats.
func (e *Engine) Drain() {
	e.lock()
	e.drainAll()
	e.unlock()
}

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

// drainAll drains every connection that has not failed. It skips a
// connection a Publish waits on: that Publish waits for returns to show up
// in the return ring and drains them itself (draining them here would
// leave it asleep until its timeout). mu held.
func (e *Engine) drainAll() {
	for _, c := range e.conns {
		if c.err == nil && !c.pushing {
			e.drain(c)
		}
	}
}

// drain takes back one batch of what c's subscriber returned: at most the
// return ring's capacity, each ref validated by the Tracker. The first
// refused ref or a corrupt ring fails c; the rest of the batch is still
// validated one by one (a valid return is still a return). mu held.
func (e *Engine) drain(c *Conn) {
	n, err := c.rc.PopBatch(e.batch)
	if err != nil {
		e.fail(c, err)
		return
	}
	if n == 0 {
		return
	}
	e.drains++
	before := c.ct.Outstanding()
	for i, r := range e.batch[:n] {
		if i == n/2 {
			testhook.Stop("drain.mid") // kill window: popped, half of the batch not yet taken back
		}
		e.accept(c, r)
	}
	// Counted once per batch, from the Tracker's own count (no work per
	// ref): the refs accepted, not the refused ones.
	c.returned += uint64(before - c.ct.Outstanding())
}

// accept hands one ref from c's subscriber back to the Tracker. mu held.
func (e *Engine) accept(c *Conn, r parallax.ChunkRef) {
	if err := e.tr.Return(c.ct, r); err != nil {
		e.fail(c, err)
		return
	}
	e.drained++
}

// fail records err as c's first error and stops deliveries on c. mu held.
func (e *Engine) fail(c *Conn, err error) {
	if c.err != nil {
		return
	}
	ce := &ConnError{Conn: c.ct.ID(), Err: err}
	c.err = ce
	e.failed++
	e.tr.CloseConn(c.ct)
	e.unreported = append(e.unreported, ce)
}

// reportFailure returns the error a Publish returns, given first, the
// first error of its deliveries: first, taken off the unreported list if
// it is there, or, if first is nil, the oldest unreported failure. mu held.
func (e *Engine) reportFailure(first error) error {
	for i, ce := range e.unreported {
		if error(ce) == first {
			e.unreported = append(e.unreported[:i], e.unreported[i+1:]...)
			return first
		}
	}
	if first == nil && len(e.unreported) > 0 {
		ce := e.unreported[0]
		e.unreported = append(e.unreported[:0], e.unreported[1:]...)
		return ce
	}
	return first
}
