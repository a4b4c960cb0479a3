package subscriber

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
	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// The owned memory model (docs/design/memory-ownership.md), the only one:
// a Subscriber takes from its connections' own segments through an
// internal/ownedsub Engine. A connection becomes
// takeable when both its ConnectionAdded and its ConnSegmentAdded have
// arrived; the publisher's read-only data segments (DataSegmentAdded
// pushes right after the connection segment, and growth later) are added
// to it as they are mapped. A ref naming a segment not mapped yet stays
// pending in the engine until its segment arrives; the subscriber asks the
// router for it once (GetDataSegment, owned_grow.go). A pending ref is
// counted in the engine's Pendings, never dropped.

// ownedState is a Subscriber's engine and connections.
type ownedState struct {
	eng *ownedsub.Engine

	// mu guards the control-path state below. Lock order: mu → the
	// engine's lock. The engine's Finished callback must not take mu
	// while the engine holds its own lock (it does not: Finished runs
	// with the engine unlocked).
	mu     sync.Mutex
	conns  map[uint32]*ownedConn // by connection id
	closed bool
	// After Close: remoteClosed once the router knows (CloseSubscriber
	// answered); connections finished before that wait in release, as the
	// router refuses to release a connection that is not closing yet.
	remoteClosed bool
	release      []uint32
	// released holds every connection whose release this side took
	// over after Close (in release or sent): each is released once.
	released map[uint32]bool
	// Retired segments still held (owned_grow.go); nRetiring mirrors
	// len(retiring) so Release checks it with one load.
	retiring  []retiring
	nRetiring atomic.Int32
	asked     map[segAsk]bool // GetDataSegment requests in flight
	asks      atomic.Uint64   // GetDataSegment requests sent
	answered  atomic.Uint64   // GetDataSegment replies received (granted or refused)
	// segHold, a test seam (export_test.go), runs before each
	// DataSegmentAdded is handled: it holds the push dispatch there.
	segHold atomic.Pointer[func()]
	// selfRelease holds the orphaned connections whose release this side
	// took over from the runtime (ReleasesItself consumes an entry).
	selfRelease map[uint32]bool
	// waitTimeout is a take's own timeout (not ctx's end), made once:
	// callers that take in slices (package rpc) meet it often.
	waitTimeout error
}

// ownedConn is one connection as its pushes arrive.
type ownedConn struct {
	added *wire.ConnectionAdded
	seg   *clientrt.OwnedConn
	c     *ownedsub.Conn
	segs  map[uint16]bool // data segment indices added to c
	done  bool            // removed from the engine, segment closed
	// orphaned: the publisher is gone and this side sends the
	// ReleaseConnection once the connection is drained (ownedFinished).
	orphaned bool
	// linked: handed to the link's Added hook (event listeners), which
	// owns seg; never attached to the engine.
	linked bool
}

// maxPubSegments is the segment indices a publisher may use (the router's
// max_segments_per_publisher is at most this).
const maxPubSegments = wire.MaxDataSegIndex

func (s *Subscriber) initOwned() {
	o := &ownedState{conns: map[uint32]*ownedConn{}, selfRelease: map[uint32]bool{}}
	o.waitTimeout = fmt.Errorf("take from %q: %w", s.topic, parallax.ErrTimeout)
	// The engine counts the samples held: after Close, the last release
	// (or Close itself) lets this subscriber's share of the runtime go.
	o.eng = ownedsub.New(ownedsub.Options{Finished: func(c *ownedsub.Conn) { s.ownedFinished(o, c) }, OnIdle: s.rt.Release})
	s.own.Store(o)
}

// ownedConnAdded records a ConnectionAdded in the owned model.
func (s *Subscriber) ownedConnAdded(o *ownedState, m *wire.ConnectionAdded) {
	o.mu.Lock()
	oc := o.conn(m.ConnID)
	if oc == nil { // closed: the router waits for its release
		now := o.releaseClosed(m.ConnID)
		o.mu.Unlock()
		s.releaseNow(now)
		return
	}
	defer o.mu.Unlock()
	oc.added = m
	s.attach(o, oc)
}

// releaseClosed takes over the release of connection id of a closed
// subscriber, once: the router marked (or marks, at the CloseSubscriber)
// every connection it announced to the subscriber closing, and waits for
// this side to release it, mapped or not. Before the router knows of the
// close the release waits in o.release (remoteClosedOwned sends it after
// the CloseSubscriber); after, it returns id, for the caller to release
// at once (releaseNow, o.mu not held); 0 otherwise. o.mu held, o.closed.
func (o *ownedState) releaseClosed(id uint32) uint32 {
	if o.released[id] {
		return 0
	}
	if o.released == nil {
		o.released = map[uint32]bool{}
	}
	o.released[id] = true
	if o.remoteClosed {
		return id
	}
	o.release = append(o.release, id)
	return 0
}

// releaseNow releases connection id (releaseClosed's answer) unless it is
// 0.
func (s *Subscriber) releaseNow(id uint32) {
	if id != 0 {
		s.rt.ReleaseConnection(id)
	}
}

// connSegmentAdded handles clientrt.OwnedEndpoint.ConnSegmentAdded.
func (s *Subscriber) connSegmentAdded(c *clientrt.OwnedConn) {
	o := s.own.Load()
	if o == nil {
		c.Close()
		return
	}
	o.mu.Lock()
	oc := o.conn(c.Desc().ConnID)
	if oc == nil || oc.seg != nil {
		var now uint32
		if oc == nil { // closed: the router waits for its release
			now = o.releaseClosed(c.Desc().ConnID)
		}
		o.mu.Unlock()
		c.Close()
		s.releaseNow(now)
		return
	}
	defer o.mu.Unlock()
	oc.seg = c
	s.attach(o, oc)
}

// dataSegmentAdded handles clientrt.OwnedEndpoint.DataSegmentAdded: a
// read-only segment of a publisher; it goes to every connection of that
// publisher.
func (s *Subscriber) dataSegmentAdded(seg *dataseg.Segment) {
	o := s.own.Load()
	if o == nil || !seg.ReadOnly() {
		return
	}
	if h := o.segHold.Load(); h != nil {
		(*h)()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	added := false
	for _, oc := range o.conns {
		if oc.c != nil && !oc.done && oc.c.PubID() == seg.Desc().PubID {
			s.addSegment(o, oc, seg)
			added = true
		}
	}
	if added && seg.Desc().Index == 0 {
		s.changed.Broadcast() // the connections count as live now (publishers)
	}
}

// conn returns the record of connection id, creating it; nil after Close.
// o.mu held.
func (o *ownedState) conn(id uint32) *ownedConn {
	if o.closed {
		return nil
	}
	oc := o.conns[id]
	if oc == nil {
		oc = &ownedConn{segs: map[uint16]bool{}}
		o.conns[id] = oc
	}
	return oc
}

// attach adds the connection to the engine once both pushes arrived, with
// the publisher's segments mapped so far. o.mu held.
func (s *Subscriber) attach(o *ownedState, oc *ownedConn) {
	if oc.added == nil || oc.seg == nil || oc.c != nil || oc.done || oc.linked {
		return
	}
	if s.opts.DrainWakes {
		d := oc.seg.Conn().DataRing() // before the first pop: SetWakeLevel's rule
		d.SetWakeLevel(d.Cap() / 2)
	}
	if l := s.link; l != nil && l.Added != nil {
		oc.linked = true
		l.Added(oc.added.ConnID, oc.added.PubID, oc.seg)
		s.changed.Broadcast()
		return
	}
	c, err := o.eng.AddConn(oc.seg.Conn(), maxPubSegments)
	if err != nil {
		slog.Warn("parallax: subscriber cannot attach connection", "topic", s.topic, "conn", oc.added.ConnID, "err", err)
		return
	}
	oc.c = c
	for _, seg := range oc.seg.Publisher().Segments() {
		if seg != nil {
			s.addSegment(o, oc, seg)
		}
	}
	s.changed.Broadcast()
}

// addSegment adds seg to oc's connection once. o.mu held.
func (s *Subscriber) addSegment(o *ownedState, oc *ownedConn, seg *dataseg.Segment) {
	i := seg.Desc().Index
	if oc.segs[i] {
		return
	}
	if err := o.eng.AddSegment(oc.c, seg); err != nil {
		slog.Warn("parallax: subscriber cannot use a data segment", "topic", s.topic, "pub", seg.Desc().PubID, "index", i, "err", err)
		return
	}
	oc.segs[i] = true
}

// ownedConnRemoved handles a ConnectionRemoved in the owned model. When the
// publisher is gone (closed or dead) the connection is orphaned: what it
// queued is still taken, in order, and once the ring is empty and nothing
// taken from it is held the segment is unmapped and, only then, the
// connection released (ownedFinished; the runtime leaves that release to
// this side, see releasesItself). A connection the router cut (Corrupt)
// is not taken from any more: it is removed and unmapped at once (samples
// still held stay valid: the data segments stay mapped while they are
// held) and the runtime releases it.
func (s *Subscriber) ownedConnRemoved(o *ownedState, m *wire.ConnectionRemoved) {
	o.mu.Lock()
	oc := o.conns[m.ConnID]
	if oc == nil {
		o.mu.Unlock()
		return
	}
	if oc.linked { // the link owns the segment; the runtime releases it
		delete(o.conns, m.ConnID)
		o.mu.Unlock()
		s.link.Gone(m.ConnID, m.Code)
		s.changed.Broadcast()
		return
	}
	if oc.c == nil || oc.done || m.Code == wire.RemovedCorrupt {
		delete(o.conns, m.ConnID)
		oc.done = true
		o.mu.Unlock()
		if oc.c != nil {
			_ = o.eng.FailConn(oc.c, fmt.Errorf("connection %d cut by the router: %w", m.ConnID, parallax.ErrCorrupt))
			_, _ = o.eng.RemoveConn(oc.c)
		}
		oc.seg.Close() // nil-safe
		s.changed.Broadcast()
		return
	}
	oc.orphaned = true
	o.selfRelease[m.ConnID] = true
	o.mu.Unlock()
	o.eng.OrphanConn(oc.c) // may run ownedFinished
	s.changed.Broadcast()
}

// releasesItself is clientrt.SelfReleasingEndpoint.ReleasesItself: true
// for a connection ownedConnRemoved orphaned (ownedFinished releases it
// once drained).
func (s *Subscriber) releasesItself(m *wire.ConnectionRemoved) bool {
	o := s.own.Load()
	if o == nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.selfRelease[m.ConnID] {
		return false
	}
	delete(o.selfRelease, m.ConnID)
	return true
}

// ownedFinished is the engine's Finished callback: c needs nothing more
// (closing with nothing held, or orphaned, drained and nothing held). The
// engine forgets it and its segment is unmapped.
func (s *Subscriber) ownedFinished(o *ownedState, c *ownedsub.Conn) {
	o.mu.Lock()
	oc := o.conns[c.ID()]
	if oc == nil || oc.c != c || oc.done {
		o.mu.Unlock()
		return
	}
	oc.done = true
	delete(o.conns, c.ID())
	// A closed subscriber's connection is closing at the router until
	// this side says it holds nothing of it any more; an orphaned one is
	// released once drained and unmapped.
	tell := !o.closed && oc.orphaned
	if o.closed {
		tell = o.releaseClosed(c.ID()) != 0
	}
	o.mu.Unlock()
	_, _ = o.eng.RemoveConn(c)
	oc.seg.Close()
	if o.nRetiring.Load() != 0 {
		s.checkRetiring(o) // its retired segments go with it
	}
	if tell {
		s.rt.ReleaseConnection(c.ID())
	}
	s.changed.Broadcast()
}

// remoteClosedOwned runs once CloseSubscriber is sent (closeRemote): the
// connections that finished before, those announced to the closed
// subscriber that it never used (releaseClosed) and those the runtime
// received for it after its Unregister (Runtime.TakeClosedConns) are
// released now, their requests
// written after CloseSubscriber, so the router, which serves a client's
// requests in order, handles them once the subscriber is closed there.
// Close waits for the router's answers (all bounded together, by the
// returned wait), so that once Close returns their publishers are told
// the connections are gone even if this process then drops its last
// endpoint (the runtime disconnects) and lives on. Later ones are released
// as they finish (ownedFinished). A refusal changes nothing here: the
// connection is closing at the router until this process exits.
func (s *Subscriber) remoteClosedOwned(o *ownedState) (wait func()) {
	o.mu.Lock()
	o.remoteClosed = true
	ids := o.release
	o.release = nil
	known := make([]uint32, 0, len(o.released))
	for id := range o.released {
		known = append(known, id)
	}
	o.mu.Unlock()
	ids = append(ids, s.rt.TakeClosedConns(s.id, known)...)
	return s.rt.StartReleases(ids)
}

// publishers counts the live connections: attached, not orphaned, and
// with their publisher's first data segment mapped (usable: a sample the
// publisher publishes now is takeable as soon as it is pushed; segment 0
// is never retired).
func (o *ownedState) publishers() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, oc := range o.conns {
		if oc.usable() && oc.c.State() == ownedsub.Live {
			n++
		}
	}
	return n
}

// usable reports whether oc is attached with its publisher's first data
// segment. o.mu held.
func (oc *ownedConn) usable() bool { return oc.c != nil && !oc.done && oc.segs[0] }

// takeOwned takes one sample into *x: TryTake (wait false) or Take with
// *w (read only). The engine fills the Sample's own part in place
// (TryTakeInto). On error *x is the zero Sample.
func (s *Subscriber) takeOwned(x *Sample, o *ownedState, ctx context.Context, w *ringbuf.WaitOptions, wait bool) error {
	err := s.takeOwnedErr(x, o, ctx, w, wait)
	if err != nil {
		*x = Sample{}
	}
	return err
}

// takeOwnedErr is takeOwned, leaving *x as the engine left it on error.
func (s *Subscriber) takeOwnedErr(x *Sample, o *ownedState, ctx context.Context, w *ringbuf.WaitOptions, wait bool) error {
	if wait && w.Timeout > 0 {
		// The clock is read once, so wake-ups that find nothing do not
		// extend the wait (as the engine's Take does).
		wc := *w
		if d := time.Now().Add(wc.Timeout); wc.Deadline.IsZero() || d.Before(wc.Deadline) {
			wc.Deadline = d
		}
		wc.Timeout = 0
		w = &wc
	}
	for {
		err := o.eng.TryTakeInto(&x.own)
		switch {
		case err == nil:
			x.sub = s
			return nil
		case errors.Is(err, ownedsub.ErrEmpty):
			if !wait {
				return ErrNoData
			}
			if err := o.eng.Wait(ctx, *w); err != nil {
				if ctx.Err() == nil && errors.Is(err, parallax.ErrTimeout) {
					return o.waitTimeout
				}
				return s.ownedWaitErr(ctx, err)
			}
		case errors.Is(err, ownedsub.ErrPendingSegment):
			// The engine keeps the ref and skips the connection until
			// its segment is added: ask the router for it (once) and
			// take from the others.
			var pe *ownedsub.PendingError
			if errors.As(err, &pe) {
				s.askSegment(o, pe) // owned_grow.go
			}
		case errors.Is(err, ownedsub.ErrClosed):
			return clientrt.ErrClosed
		case errors.Is(err, ownedsub.ErrConnFailed):
			var ce *ownedsub.ConnError
			if errors.As(err, &ce) {
				s.reportOwned(ce)
			}
			return fmt.Errorf("subscriber %q: %w", s.topic, err)
		default:
			return fmt.Errorf("take from %q: %w", s.topic, err)
		}
	}
}

// ownedWaitErr wraps the error of a wait that ended without a sample: a
// context deadline is also a timeout, as ringbuf's waits report it.
func (s *Subscriber) ownedWaitErr(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, parallax.ErrTimeout) {
		return fmt.Errorf("take from %q: %w: %w", s.topic, parallax.ErrTimeout, err)
	}
	if s.closed.Load() {
		return clientrt.ErrClosed
	}
	return fmt.Errorf("take from %q: %w", s.topic, err)
}

// reportOwned tells the router about a connection whose publisher sent a
// ref naming nothing it may name, or corrupted the ring indices; the
// engine takes from it no more.
func (s *Subscriber) reportOwned(ce *ownedsub.ConnError) {
	s.corruptConns.Add(1)
	slog.Warn("parallax: subscriber stops using a connection", "topic", s.topic, "conn", ce.Conn, "pub", ce.PubID, "err", ce.Err)
	reason := wire.ReportBadRef
	if errors.Is(ce, ringbuf.ErrCorruptRing) {
		reason = wire.ReportCorruptRing
	}
	s.sendReport(ce.Conn, reason, ce.Error())
}

// reportLinked is the rpclink.Sub Report hook: an event listener's
// connection whose ring failed validation.
func (s *Subscriber) reportLinked(conn uint32, corruptRing bool, detail string) {
	s.corruptConns.Add(1)
	reason := wire.ReportBadRef
	if corruptRing {
		reason = wire.ReportCorruptRing
	}
	s.sendReport(conn, reason, detail)
}

// sendReport sends a wire.ReportPeer about connection conn aside (the
// router answers with an Ack whatever it decides) and returns at once.
func (s *Subscriber) sendReport(conn uint32, reason uint8, detail string) {
	m := &wire.ReportPeer{ConnID: conn, SubID: s.id, Reason: reason, Detail: detail}
	if len(m.Detail) > wire.MaxTextLen {
		m.Detail = m.Detail[:wire.MaxTextLen]
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _, _ = s.rt.Request(ctx, m)
	}()
}

// releaseOwned is Sample.Release in the owned model.
func (x Sample) releaseOwned() error {
	s := x.sub
	o := s.own.Load()
	// Segments wait to retire until their last sample is back: look once
	// this one is, holding the engine so the runtime stays meanwhile. A
	// retirement that starts during the release is looked at too
	// (RetiredSegment.Done is safe after the runtime went).
	held := o.nRetiring.Load() != 0 && o.eng.Hold()
	err := x.own.Release()
	if held || o.nRetiring.Load() != 0 {
		s.checkRetiring(o) // owned_grow.go
	}
	if held {
		o.eng.Unhold()
	}
	if errors.Is(err, ownedsub.ErrNotHeld) {
		if s.closed.Load() {
			return fmt.Errorf("release sample of %q: %w", s.topic, clientrt.ErrClosed)
		}
		return fmt.Errorf("release sample of %q: %w", s.topic, parallax.ErrNotHeld)
	}
	if err != nil {
		var ce *ownedsub.ConnError
		if errors.As(err, &ce) {
			s.reportOwned(ce)
		}
		return fmt.Errorf("release sample of %q: %w", s.topic, err)
	}
	return nil
}

// closeOwned turns every connection closing: each is removed and unmapped
// once nothing taken from it is held (ownedFinished).
func (s *Subscriber) closeOwned(o *ownedState) {
	if testhook.Enabled && o.eng.Stats().Held > 0 {
		testhook.Stop("close.held") // kill window: closing with samples held, nothing released
	}
	o.mu.Lock()
	o.closed = true
	var unattached []*ownedConn
	for id, oc := range o.conns {
		switch {
		case oc.linked:
			// The link owns the segment; the connection is released
			// once the router knows the subscriber closed.
			o.releaseClosed(id)
			delete(o.conns, id)
		case oc.c == nil:
			// Announced, not attached yet: the router waits for its
			// release all the same.
			unattached = append(unattached, oc)
			o.releaseClosed(id)
			delete(o.conns, id)
		}
	}
	o.mu.Unlock()
	for _, oc := range unattached {
		oc.seg.Close()
	}
	o.eng.Close()
}

// ownedDropped sums the discards publishers made on this subscriber's
// queues (current connections).
func (o *ownedState) dropped() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n uint64
	for _, oc := range o.conns {
		if oc.seg != nil && !oc.done {
			n += oc.seg.Conn().DataRing().Dropped()
		}
	}
	return n
}

// takeOwnedWait is take in the owned model: the engine spins and sleeps on
// the connections' wake words. Coalesce (or the default stream pause)
// applies. A Take without Coalesce
// comes here after a take that found nothing, and tries twice more before
// the engine's Wait. Skipping those tries (design §8.25) made the
// in-process BenchmarkTakeStream ~5 % faster but one way across processes
// slower in the VM's fast state (4.3–4.6 M against 5.5 M msgs/s): a
// subscriber that reaches its spin sooner catches up with its publisher
// and trades cache lines with it per sample instead of taking batches.
func (s *Subscriber) takeOwnedWait(x *Sample, o *ownedState, ctx context.Context, w *ringbuf.WaitOptions) error {
	if s.streaming && s.pause > 0 && !o.eng.Ready() {
		// Options.Coalesce (or DefaultStreamPause): let the stream's next
		// samples pile up.
		sys.SpinFor(s.pause)
	}
	err := s.takeOwned(x, o, context.Background(), w, false)
	if err != ErrNoData {
		s.streaming = err == nil
		return err
	}
	s.streaming = false
	s.busy.pause()
	defer s.busy.resume()
	return s.takeOwned(x, o, ctx, w, true)
}

// ownedWireTimeout bounds how long New waits for the segments of the
// connections announced to it.
const ownedWireTimeout = 2 * time.Second

// waitOwnedWired waits until every connection announced before New
// returned has its segment too (the router grants it after the reply), so
// Publishers counts them when New returns. A grant
// that does not come ends the wait at ownedWireTimeout.
func (s *Subscriber) waitOwnedWired(ctx context.Context, o *ownedState) {
	ctx, cancel := context.WithTimeout(ctx, ownedWireTimeout)
	defer cancel()
	_ = s.changed.Wait(ctx, func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, oc := range o.conns {
			if !oc.usable() && !oc.done && !oc.linked {
				return false
			}
		}
		return true
	})
}

// wakeStats sums the data wake counters of the current connections.
func (o *ownedState) wakeStats() ringbuf.NotifierStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	var st ringbuf.NotifierStats
	for _, oc := range o.conns {
		if oc.seg != nil && !oc.done {
			w := oc.seg.Conn().DataWake().Stats()
			st.Wakes += w.Wakes
			st.Sleeps += w.Sleeps
		}
	}
	return st
}
