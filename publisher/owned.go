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
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/rpclink"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// The owned memory model (docs/design/memory-ownership.md), the only one:
// a Publisher loans, publishes and takes back chunks of its own data
// segments through an internal/ownedpub Engine. A connection becomes live when both its
// ConnectionAdded (history asked) and its ConnSegmentAdded (the segment,
// bound and policy) have arrived; its removal reclaims every chunk
// delivered on it before the runtime tells the router it let go.

// owned is a Publisher's engine and connections.
type owned struct {
	eng  *ownedpub.Engine
	segs *clientrt.PubSegments

	// mu guards the control-path state below (pushes, Close). Lock order:
	// mu → the engine's own lock.
	mu     sync.Mutex
	added  map[uint16]bool // segment indices given to the engine
	conns  map[uint32]*ownedConn
	closed bool

	grow growState // owned_grow.go

	live atomic.Int32 // connections attached to the engine and not closing (Subscribers)
	// Counters of removed connections, so Stats does not go backwards.
	goneDelivered, goneDropped atomic.Uint64
	badConns                   atomic.Uint64
	removed                    atomic.Uint64 // connections removed from the engine
}

// ownedConn is one connection as its pushes arrive.
type ownedConn struct {
	added *wire.ConnectionAdded // nil until it arrives
	seg   *clientrt.OwnedConn   // nil until the segment arrives
	c     *ownedpub.Conn        // attached to the engine
	bad   atomic.Bool           // reported to the router
	// counted: in live (attached, neither closing nor removed); cleared
	// once, by whichever of closing and removal comes first.
	counted atomic.Bool
	// closing: a ConnectionClosing came before the connection attached
	// (its grant replayed late, clientrt): attach closes it at once.
	// Guarded by owned.mu.
	closing bool
}

// uncount takes oc out of live (Subscribers) if it still counts there.
func (o *owned) uncount(oc *ownedConn) {
	if oc.counted.CompareAndSwap(true, false) {
		o.live.Add(-1)
	}
}

// initOwned sets up the owned engine after the create reply: the data
// segments the router granted before the reply are in the runtime's table.
func (p *Publisher) initOwned() error {
	segs := p.rt.OwnedPublisher(p.id)
	if segs == nil {
		return fmt.Errorf("router runs the owned model but granted publisher %d no data segment: %w", p.id, parallax.ErrProtocol)
	}
	o := &owned{
		eng: ownedpub.New(ownedpub.Options{MaxLoans: p.opts.MaxLoans, History: p.opts.History,
			BlockTimeout: p.opts.BlockTimeout, Wait: ringbuf.WaitOptions{Spin: p.opts.Spin}, OnIdle: p.idle}),
		segs: segs, added: map[uint16]bool{}, conns: map[uint32]*ownedConn{},
	}
	o.grow.dedicated = map[uint16]idleMark{}
	o.grow.undeclared = p.opts.TypeSize == 0 && p.opts.MaxPayload == 0
	o.grow.ctx, o.grow.cancel = context.WithCancel(context.Background())
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range segs.Segments() {
		if s != nil {
			if err := o.addSegment(s); err != nil {
				return err
			}
			if s.Desc().Index == 0 {
				o.grow.primary = s.Desc().ChunkSize
			}
		}
	}
	if p.link != nil {
		p.link.Engine = o.eng
	}
	p.own.Store(o)
	return nil
}

// addSegment gives s to the engine once; o.mu held.
func (o *owned) addSegment(s *dataseg.Segment) error {
	i := s.Desc().Index
	if o.added[i] {
		return nil
	}
	if err := o.eng.AddSegment(s); err != nil {
		return fmt.Errorf("add data segment %d: %w", i, err)
	}
	o.added[i] = true
	return nil
}

// dataSegmentAdded handles clientrt.OwnedEndpoint.DataSegmentAdded.
func (p *Publisher) dataSegmentAdded(s *dataseg.Segment) {
	o := p.own.Load()
	if o == nil {
		return // initOwned adds it from the table
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	if err := o.addSegment(s); err != nil {
		slog.Warn("parallax: publisher cannot use a data segment", "topic", p.topic, "err", err)
	}
}

// ownedConnAdded records a ConnectionAdded in the owned model.
func (p *Publisher) ownedConnAdded(o *owned, m *wire.ConnectionAdded) {
	o.mu.Lock()
	defer o.mu.Unlock()
	oc := o.conn(m.ConnID)
	if oc == nil {
		return
	}
	oc.added = m
	p.attach(o, m.ConnID, oc)
}

// connSegmentAdded handles clientrt.OwnedEndpoint.ConnSegmentAdded.
func (p *Publisher) connSegmentAdded(c *clientrt.OwnedConn) {
	o := p.own.Load()
	if o == nil {
		c.Close()
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	id := c.Desc().ConnID
	oc := o.conn(id)
	if oc == nil || oc.seg != nil {
		c.Close()
		return
	}
	oc.seg = c
	p.attach(o, id, oc)
}

// conn returns the record of connection id, creating it; nil after Close.
// o.mu held.
func (o *owned) conn(id uint32) *ownedConn {
	if o.closed {
		return nil
	}
	oc := o.conns[id]
	if oc == nil {
		oc = &ownedConn{}
		o.conns[id] = oc
	}
	return oc
}

// attach adds the connection to the engine once both its pushes arrived.
// o.mu held.
func (p *Publisher) attach(o *owned, id uint32, oc *ownedConn) {
	if oc.added == nil || oc.seg == nil || oc.c != nil {
		return
	}
	d := oc.seg.Desc()
	rc := oc.seg.Conn()
	c, err := o.eng.AddConn(rc, int(d.Bound), rc.Desc().Policy, int(oc.added.History))
	if err != nil {
		slog.Warn("parallax: publisher cannot attach connection", "topic", p.topic, "conn", id, "err", err)
		return
	}
	oc.c = c
	if oc.closing {
		// Its subscriber closed already: nothing is delivered on it; it
		// stays until its ConnectionRemoved, as connectionClosing leaves
		// it.
		o.eng.CloseConn(c)
		return
	}
	oc.counted.Store(true)
	o.live.Add(1)
	if p.link != nil && p.link.Added != nil {
		p.link.Added(rpclink.ConnInfo{ID: id, SubID: oc.added.SubID, Pair: oc.added.Pair, Conn: c, Ring: rc})
	}
	p.changed.Broadcast()
}

// ownedConnRemoved handles a ConnectionRemoved in the owned model: the
// engine takes back every chunk delivered on the connection (whatever the
// subscriber did with them) and the segment is unmapped, before the
// runtime tells the router this side let go.
func (p *Publisher) ownedConnRemoved(o *owned, m *wire.ConnectionRemoved) {
	o.mu.Lock()
	oc := o.conns[m.ConnID]
	delete(o.conns, m.ConnID)
	o.mu.Unlock()
	if oc == nil {
		return
	}
	if p.link != nil && p.link.Gone != nil && oc.c != nil {
		p.link.Gone(m.ConnID, m.Code)
	}
	o.drop(oc)
	p.changed.Broadcast()
}

// connectionClosing handles clientrt.ClosingEndpoint.ConnectionClosing:
// the subscriber closed (or its client left while its process may live),
// so the engine stops delivering on the connection and keeps draining its
// returns until its ConnectionRemoved. The subscriber no longer counts in
// Subscribers: a closing connection gets nothing, and it may stay closing
// until the subscriber's process exits (design §4.1).
func (p *Publisher) connectionClosing(m *wire.ConnectionClosing) {
	o := p.own.Load()
	if o == nil {
		return
	}
	o.mu.Lock()
	oc := o.conns[m.ConnID]
	var c *ownedpub.Conn
	if oc != nil {
		c = oc.c
		oc.closing = c == nil // attach closes it
	}
	o.mu.Unlock()
	if c != nil {
		if p.link != nil && p.link.Gone != nil {
			p.link.Gone(m.ConnID, 0)
		}
		o.eng.CloseConn(c)
		o.uncount(oc)
		p.changed.Broadcast()
	}
}

// drop removes oc from the engine and unmaps its segment.
func (o *owned) drop(oc *ownedConn) {
	if oc.c != nil {
		st := oc.c.Stats()
		if _, err := o.eng.RemoveConn(oc.c); err == nil {
			o.uncount(oc)
			o.removed.Add(1)
			o.goneDelivered.Add(st.Delivered)
			o.goneDropped.Add(st.Discarded + st.Timeouts)
		}
	}
	oc.seg.Close() // nil-safe
}

// loanOwned is Loan in the owned model, into *c (the zero Chunk on
// error): the loan is written once, into the caller's result.
func (p *Publisher) loanOwned(c *Chunk, o *owned, n int) error {
	err := o.eng.LoanInto(&c.ol, n)
	if err != nil {
		c.ol, err = p.loanGrow(context.Background(), o, n, err, false) // owned_grow.go
	}
	if err != nil {
		*c = Chunk{}
		return p.loanError(n, err)
	}
	p.checkUndersized(o, n, cap(c.ol.Bytes())) // owned_undersized.go
	return nil
}

// loanError wraps a failed loan of n bytes: after Close, the runtime's
// ErrClosed (as every endpoint reports it).
func (p *Publisher) loanError(n int, err error) error {
	if errors.Is(err, ownedpub.ErrClosed) {
		return fmt.Errorf("loan %d bytes on %q: %w", n, p.topic, clientrt.ErrClosed)
	}
	return fmt.Errorf("loan %d bytes on %q: %w", n, p.topic, err)
}

// releaseOwned is Release in the owned model.
func (p *Publisher) releaseOwned(o *owned, c Chunk) error {
	err := o.eng.Release(&c.ol)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ownedpub.ErrClosed):
		return fmt.Errorf("release chunk on %q: %w", p.topic, clientrt.ErrClosed)
	}
	return fmt.Errorf("release chunk on %q: %w", p.topic, err)
}

// publishOwned is Publish in the owned model. Its one guard is the
// engine's lock, taken once: the engine refuses a loan after Close, and
// counts the published (and unconnected) samples and the loans itself.
func (p *Publisher) publishOwned(o *owned, c *Chunk) error {
	c.ol.SetStamp(sys.UnixNano()) // keeps what Chunk.SetMeta set
	ref := c.Ref()                // for the error: Publish spends the loan
	err := o.eng.Publish(&c.ol)
	if err != nil {
		return p.publishError(o, ref, err)
	}
	return nil
}

// publishError wraps what the engine's Publish of the chunk ref returned,
// reporting a failed connection to the router unless o is nil
// (PublishBatch reports them after the batch).
func (p *Publisher) publishError(o *owned, ref parallax.ChunkRef, err error) error {
	switch {
	case errors.Is(err, ownedpub.ErrNotLoaned):
		return fmt.Errorf("publish on %q: chunk %v is not a current loan (published or released already): %w", p.topic, ref, parallax.ErrNotHeld)
	case errors.Is(err, ownedpub.ErrClosed):
		return fmt.Errorf("publish on %q: %w", p.topic, clientrt.ErrClosed)
	}
	var ce *ownedpub.ConnError
	if o != nil && errors.As(err, &ce) {
		p.badConn(o, ce)
	}
	return fmt.Errorf("publish on %q: %w", p.topic, err)
}

// badConn reports a connection the engine failed (its subscriber returned
// a ref it was never given, or corrupted the ring indices) to the router,
// which cuts it; its ConnectionRemoved then reclaims its chunks.
func (p *Publisher) badConn(o *owned, ce *ownedpub.ConnError) {
	o.mu.Lock()
	oc := o.conns[ce.Conn]
	o.mu.Unlock()
	if oc == nil || !oc.bad.CompareAndSwap(false, true) {
		return
	}
	o.badConns.Add(1)
	p.corruptConns.Add(1)
	slog.Warn("parallax: publisher stops using a connection", "topic", p.topic, "conn", ce.Conn, "err", ce.Err)
	reason := wire.ReportCorruptRing
	if errors.Is(ce, parallax.ErrInvalidRef) {
		reason = wire.ReportBadRef
	}
	m := &wire.ReportPeer{ConnID: ce.Conn, Reason: reason, Detail: ce.Error()}
	if len(m.Detail) > wire.MaxTextLen {
		m.Detail = m.Detail[:wire.MaxTextLen]
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _, _ = p.rt.Request(ctx, m)
	}()
}

// closeOwned ends every connection; the data segments stay mapped until
// the last loan ends (loanDone).
func (p *Publisher) closeOwned(o *owned) {
	o.mu.Lock()
	o.closed = true
	if o.grow.timer != nil {
		o.grow.timer.Stop()
		o.grow.timer = nil
	}
	conns := o.conns
	o.conns = map[uint32]*ownedConn{}
	o.mu.Unlock()
	o.stopUndersized()
	for _, oc := range conns {
		o.drop(oc)
	}
}

// ownedStats fills the owned-model counters of s.
func (o *owned) stats(s *Stats) {
	var delivered, dropped uint64
	o.mu.Lock()
	for _, oc := range o.conns {
		if oc.c != nil {
			st := oc.c.Stats()
			delivered += st.Delivered
			dropped += st.Discarded + st.Timeouts
		}
	}
	o.mu.Unlock()
	o.eng.Drain() // take back what subscribers returned, so Memory is current
	es := o.eng.Stats()
	s.Published, s.Loans, s.Unconnected = es.Published, int64(es.Loans), es.Unconnected
	s.Delivered = delivered + o.goneDelivered.Load()
	s.Dropped = dropped + o.goneDropped.Load()
	s.Subscribers = int(o.live.Load())
	s.Removed = o.removed.Load()
	s.Memory = MemoryStats{Segments: es.Segments, Chunks: es.Chunks, Free: es.Free, InUse: es.InUse, Loans: es.Loans,
		History: es.History, Outstanding: es.Outstanding, HighWater: es.HighWater, Reclaimed: es.Reclaimed, BadReturns: es.BadReturns,
		Grown: o.grow.grown.Load(), Retired: o.grow.retired.Load()}
}

// connTraffic appends the counters of every attached connection to dst:
// the engine's own per-connection counts, read here (control path), so
// publishing does no extra work for them.
func (o *owned) connTraffic(dst []wire.ConnTraffic) []wire.ConnTraffic {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, oc := range o.conns {
		if oc.c == nil {
			continue
		}
		st := oc.c.Stats()
		dst = append(dst, wire.ConnTraffic{ConnID: id, Delivered: st.Delivered, Dropped: st.Discarded + st.Timeouts, Returned: st.Returned})
	}
	return dst
}

// ownedWireTimeout bounds how long New waits for the segments of the
// connections announced to it.
const ownedWireTimeout = 2 * time.Second

// waitOwnedWired waits until every connection announced before New
// returned has its segment too (the router grants it after the reply), so
// a first sample reaches the subscribers that existed when the publisher
// was created. A grant that does not come (the
// router failed to create the segment and cuts the connection) ends the
// wait at ownedWireTimeout.
func (p *Publisher) waitOwnedWired(ctx context.Context, o *owned) {
	ctx, cancel := context.WithTimeout(ctx, ownedWireTimeout)
	defer cancel()
	_ = p.changed.Wait(ctx, func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, oc := range o.conns {
			if oc.c == nil {
				return false
			}
		}
		return true
	})
}
