package publisher

import (
	"context"
	"errors"
	"log/slog"
	"math/bits"
	"sync/atomic"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Undersized classes (docs/design/memory-ownership.md §8.23): a publisher
// that declared no payload size (untyped, MaxPayload 0) gets the router's
// default class, 4 KiB, which spends a page on each 64-byte sample. When
// a loan of n bytes comes from a class at least 8× roundup_pow2(max(n,
// 64)), the publisher asks the router, in the background and once per
// size, for a segment of that small size (GrowData, GrowUndersized); the
// loan itself is served at once from the big class. Later loans of up to
// that size take the small class (the engine loans from the smallest
// class that holds n, and falls back to a larger one when it is empty).
// A refusal leaves the publisher on its class; a request that found no
// router (it raced a router restart) is asked again once the runtime has
// resumed with the restarted router. An undersized segment is retired like
// a dedicated one, after RetireAfter free.

// undersizedRatio: a loan asks for a small class when its class is at
// least this many times the small chunk size.
const undersizedRatio = 8

// minChunk is the smallest chunk size the router creates.
const minChunk = 64

// States of one small size (smallState, by power of two).
const (
	smallNone        uint32 = iota // never asked
	smallAsking                    // a request is running
	smallGranted                   // the router added a segment of it
	smallRefused                   // the router refused: never asked again
	smallUnavailable               // no router answered: asked again after a resume
)

// smallSizes is the undersized state of a publisher: one word per
// power-of-two chunk size.
type smallSizes [32]atomic.Uint32

// checkUndersized is the loan paths' check after a loan of n bytes from a
// chunk of class bytes: a compare or two unless the class is 8× larger.
func (p *Publisher) checkUndersized(o *owned, n, class int) {
	if o.grow.undeclared && n <= class/undersizedRatio {
		p.askUndersized(o, n, class)
	}
}

// askUndersized starts the background request for the small class of a
// loan of n bytes served from a class of class bytes, unless one runs, the
// router refused it, or the small class exists and served loans (a
// granted size is asked again only when a loan of it still came from the
// big class: the small class was empty or retired).
func (p *Publisher) askUndersized(o *owned, n, class int) {
	size := uint32(1) << bits.Len32(uint32(max(n, minChunk))-1)
	if uint64(size)*undersizedRatio > uint64(class) {
		return
	}
	st := &o.grow.small[bits.Len32(size-1)]
	s := st.Load()
	switch s {
	case smallNone, smallGranted:
	case smallUnavailable:
		if p.rt.ResumeCount() == o.grow.smallDownAt.Load() {
			return // no router since the request failed
		}
	default:
		return
	}
	if s == smallGranted {
		// A loan that raced the grant (served from the big class just
		// before the small one was added) checks after it: ask again
		// only if no smaller class can serve n now.
		if sz, free := o.eng.SmallestClass(n); sz != 0 && sz < uint32(class) && free > 0 {
			return
		}
	}
	if !st.CompareAndSwap(s, smallAsking) {
		return
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		st.Store(smallRefused)
		return
	}
	o.grow.bg.Add(1)
	o.mu.Unlock()
	go func() {
		defer o.grow.bg.Done()
		p.growUndersized(o, size, st)
	}()
}

// growUndersized asks the router for a segment of size-byte chunks and
// adds it to the engine as a dedicated (retirable) segment.
func (p *Publisher) growUndersized(o *owned, size uint32, st *atomic.Uint32) {
	if !o.eng.Hold() {
		st.Store(smallRefused)
		return
	}
	defer o.eng.Unhold()
	o.grow.mu.Lock()
	defer o.grow.mu.Unlock()
	ctx, cancel := context.WithTimeout(o.grow.ctx, growTimeout)
	defer cancel()
	resumes := p.rt.ResumeCount()
	seg, err := p.rt.GrowData(ctx, p.id, size, wire.GrowUndersized)
	if err != nil {
		if errors.Is(err, parallax.ErrDaemonUnavailable) && o.grow.ctx.Err() == nil {
			// Not a refusal: the request went to a router that is gone
			// (its successor may already have taken this client back
			// while this process had not switched over yet). A loan
			// after the next resume asks again.
			o.grow.smallDownAt.Store(resumes)
			st.Store(smallUnavailable)
			slog.Info("parallax: small-class request found no router; asking again if this process resumes with a restarted one",
				"topic", p.topic, "chunk", size, "err", err)
			return
		}
		st.Store(smallRefused)
		if o.grow.ctx.Err() == nil {
			slog.Info("parallax: publisher keeps its default class for small loans (declare Options.MaxPayload to size it)",
				"topic", p.topic, "chunk", size, "err", err)
		}
		return
	}
	o.grow.grown.Add(1)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		st.Store(smallRefused)
		return
	}
	if err := o.addSegment(seg); err != nil {
		slog.Warn("parallax: publisher cannot use its undersized segment", "topic", p.topic, "chunk", size, "err", err)
		st.Store(smallRefused)
		return
	}
	o.grow.dedicated[seg.Desc().Index] = idleMark{}
	p.armRetire(o)
	st.Store(smallGranted)
}

// stopUndersized cancels a running request and waits for it; after
// closeOwned (o.closed set: no new request starts).
func (o *owned) stopUndersized() {
	o.grow.cancel()
	o.grow.bg.Wait()
}
