package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// Growth, dedicated segments, retirement and the waiting loan in the owned
// model (docs/design/memory-ownership.md §1.3, step 9). A loan that finds
// its size class empty asks the router for a growth segment of the class
// (GrowData, GrowExhausted); one larger than every class gets a dedicated
// segment (GrowOversized), whose class later loans of up to its size
// reuse. A dedicated segment free for RetireAfter is taken out of the
// engine, retired (RetireData) and unmapped after the router's Ack. One
// request runs at a time per publisher (grow.mu), so a retired index that
// the router hands out again is never still in this process's tables.

// DefaultRetireAfter is the [Options.RetireAfter] of 0.
const DefaultRetireAfter = 10 * time.Second

// growTimeout bounds one GrowData or RetireData round trip.
const growTimeout = 5 * time.Second

// growState is the growth part of a publisher's owned state.
type growState struct {
	mu      sync.Mutex // one GrowData or retirement at a time
	primary uint32     // chunk size of segment 0 (the publisher's class)

	// Guarded by owned.mu.
	dedicated map[uint16]idleMark // dedicated segments, by index
	timer     *time.Timer         // the retirement check; nil when not armed

	grown, retired atomic.Uint64

	// Undersized classes (owned_undersized.go). undeclared is set once at
	// start; bg counts the background requests, ctx ends them at Close.
	undeclared bool
	small      smallSizes
	// smallDownAt is the runtime's resume count when a request last
	// found no router (smallUnavailable).
	smallDownAt atomic.Uint64
	bg          sync.WaitGroup
	ctx         context.Context
	cancel      context.CancelFunc
}

// idleMark is what the last retirement check saw of a dedicated segment.
type idleMark struct {
	free bool
	gens uint64
}

// LoanWait is [Publisher.Loan] that waits when no chunk is free: in the
// owned memory model, when the size class is empty while subscribers hold
// chunks of it, it sleeps until one of them returns one (on the futex
// words of the connections' return queues, no polling) or ctx ends, instead
// of asking the router for more memory. When no subscriber holds any chunk
// (nothing can come back) it grows like Loan. When [Options.MaxLoans]
// chunks are loaned it waits, likewise, until another goroutine of this
// process publishes or releases one (Loan fails at once with an error
// wrapping parallax.ErrLimit there). The end of ctx gives an error
// wrapping ctx's error (and parallax.ErrTimeout for a deadline). A chunk free at once costs what Loan
// costs: no allocation, no system call.
func (p *Publisher) LoanWait(ctx context.Context, n int) (Chunk, error) {
	o := p.own.Load()
	if p.opts.TypeSize != 0 && n != int(p.opts.TypeSize) {
		return Chunk{}, fmt.Errorf("loan %d bytes on %q of type %q (%d bytes): %w", n, p.topic, p.opts.TypeName, p.opts.TypeSize, parallax.ErrIncompatibleType)
	}
	l, err := o.eng.LoanWait(ctx, n, ringbuf.WaitOptions{Spin: p.opts.Spin})
	if err != nil {
		l, err = p.loanGrow(ctx, o, n, err, true)
	}
	if err != nil {
		return Chunk{}, p.loanError(n, err)
	}
	p.checkUndersized(o, n, cap(l.Bytes()))
	return Chunk{ol: l}, nil
}

// loanGrow follows a failed engine loan of n bytes: when the class is
// empty (exhausted) or n exceeds every class (too large), it asks the
// router for a segment and loans again; other errors return as they are.
// wait: waiting for returns was tried (LoanWait), and is tried again
// should another goroutine take the grown chunks first.
func (p *Publisher) loanGrow(ctx context.Context, o *owned, n int, err error, wait bool) (ownedpub.Loan, error) {
	if errors.Is(err, ownedpub.ErrClosed) {
		return ownedpub.Loan{}, err
	}
	// The segment the router adds is mapped into the engine's memory:
	// Close's unmapping waits for this growth (a loan it makes keeps the
	// memory in use on its own).
	if !o.eng.Hold() {
		return ownedpub.Loan{}, ownedpub.ErrClosed
	}
	defer o.eng.Unhold()
	for range 3 {
		var reason uint8
		switch {
		case errors.Is(err, ownedpub.ErrTooLarge):
			reason = wire.GrowOversized
		case errors.Is(err, parallax.ErrPoolExhausted) && n <= int(o.grow.primary):
			reason = wire.GrowExhausted
		case errors.Is(err, parallax.ErrPoolExhausted):
			reason = wire.GrowOversized // a dedicated class, all loaned or out
		default:
			return ownedpub.Loan{}, err
		}
		if n > wire.MaxGrowChunk {
			return ownedpub.Loan{}, fmt.Errorf("%w (%d bytes exceed %d)", err, n, wire.MaxGrowChunk)
		}
		l, gerr := p.growOwned(ctx, o, n, reason)
		if gerr != nil || l.Ref() != parallax.NilRef {
			return l, gerr
		}
		if wait {
			l, err = o.eng.LoanWait(ctx, n, ringbuf.WaitOptions{Spin: p.opts.Spin})
		} else {
			l, err = o.eng.Loan(n)
		}
		if err == nil {
			return l, nil
		}
	}
	return ownedpub.Loan{}, err
}

// growOwned asks the router for a data segment for a loan of n bytes and adds it
// to the engine. When another goroutine's growth already made room, it
// returns that loan instead (a zero Loan otherwise: the caller loans).
func (p *Publisher) growOwned(ctx context.Context, o *owned, n int, reason uint8) (ownedpub.Loan, error) {
	o.grow.mu.Lock()
	defer o.grow.mu.Unlock()
	switch l, err := o.eng.Loan(n); {
	case err == nil:
		return l, nil
	case errors.Is(err, ownedpub.ErrClosed):
		return l, err // closed meanwhile: no memory to ask for
	}
	ctx, cancel := context.WithTimeout(ctx, growTimeout)
	defer cancel()
	seg, err := p.rt.GrowData(ctx, p.id, uint32(n), reason)
	if err != nil {
		return ownedpub.Loan{}, fmt.Errorf("grow publisher %d for a %d-byte loan: %w", p.id, n, err)
	}
	o.grow.grown.Add(1)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.addSegment(seg); err != nil {
		return ownedpub.Loan{}, err
	}
	if reason == wire.GrowOversized && seg.Desc().ChunkSize > o.grow.primary {
		o.grow.dedicated[seg.Desc().Index] = idleMark{}
		p.armRetire(o)
	}
	return ownedpub.Loan{}, nil
}

// retireAfter is the configured retirement delay; 0 means never.
func (p *Publisher) retireAfter() time.Duration {
	switch d := p.opts.RetireAfter; {
	case d < 0:
		return 0
	case d == 0:
		return DefaultRetireAfter
	default:
		return d
	}
}

// armRetire starts the retirement check unless it runs or is disabled.
// o.mu held.
func (p *Publisher) armRetire(o *owned) {
	d := p.retireAfter()
	if d == 0 || o.grow.timer != nil || o.closed || len(o.grow.dedicated) == 0 {
		return
	}
	o.grow.timer = time.AfterFunc(d, func() { p.retireCheck(o) })
}

// retireCheck retires every dedicated segment that was free at the last
// check and at this one with no loan in between: free for at least
// RetireAfter (and less than twice that). It re-arms while dedicated
// segments remain.
func (p *Publisher) retireCheck(o *owned) {
	if !o.eng.Hold() {
		return
	}
	defer o.eng.Unhold()
	o.mu.Lock()
	o.grow.timer = nil
	var idle []uint16
	for i, mk := range o.grow.dedicated {
		free, gens, ok := o.eng.SegmentIdle(i)
		switch {
		case !ok:
			delete(o.grow.dedicated, i)
		case free && mk.free && mk.gens == gens:
			idle = append(idle, i)
		default:
			o.grow.dedicated[i] = idleMark{free, gens}
		}
	}
	closed := o.closed
	o.mu.Unlock()
	if closed {
		return
	}
	for _, i := range idle {
		p.retire(o, i)
	}
	o.mu.Lock()
	p.armRetire(o)
	o.mu.Unlock()
}

// retire takes dedicated segment i out of the engine (if it is still
// free), retires it at the router and unmaps it. A refusal puts it back.
func (p *Publisher) retire(o *owned, i uint16) {
	o.grow.mu.Lock()
	defer o.grow.mu.Unlock()
	if err := o.eng.RemoveSegment(i); err != nil {
		o.mu.Lock()
		o.grow.dedicated[i] = idleMark{}
		o.mu.Unlock()
		return // loaned again since the check
	}
	ctx, cancel := context.WithTimeout(context.Background(), growTimeout)
	defer cancel()
	err := p.rt.RetireData(ctx, p.id, i)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		slog.Warn("parallax: publisher cannot retire a dedicated segment", "topic", p.topic, "index", i, "err", err)
		if seg := o.segs.Segment(i); seg != nil && o.eng.AddSegment(seg) == nil {
			o.grow.dedicated[i] = idleMark{}
		}
		return
	}
	delete(o.grow.dedicated, i)
	delete(o.added, i)
	o.grow.retired.Add(1)
}
