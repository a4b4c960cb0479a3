package subscriber

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/ownedsub"
)

// Retired and missing data segments in the owned model (design §1.3, §8.2,
// step 9). A DataSegmentRetired takes the segment out of every connection
// of its publisher (ownedsub RemoveSegment); while samples of it are held
// the mapping stays (a clientrt.RetiredSegment held until Release brings
// their count to 0 or the connection goes). A ref into a segment index not
// mapped (a *PendingError: its grant was missed) makes the subscriber ask
// the router once (GetDataSegment); the reply reaches the connections like
// a push, and the engine then delivers the kept ref. A refusal fails that
// connection.

// getSegTimeout bounds one GetDataSegment round trip.
const getSegTimeout = 5 * time.Second

// retiring is a retired segment some connection still holds samples of.
type retiring struct {
	oc    *ownedConn
	index uint16
	r     *clientrt.RetiredSegment
}

// segAsk names one GetDataSegment: connection and index.
type segAsk struct {
	conn  uint32
	index uint16
}

// dataSegmentRetired handles clientrt.RetiringEndpoint.DataSegmentRetired.
func (s *Subscriber) dataSegmentRetired(r *clientrt.RetiredSegment) {
	o := s.own.Load()
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, oc := range o.conns {
		if oc.c == nil || oc.done || oc.c.PubID() != r.PubID() || !oc.segs[r.Index()] {
			continue
		}
		delete(oc.segs, r.Index())
		held, err := o.eng.RemoveSegment(oc.c, r.Index())
		if err != nil {
			slog.Warn("parallax: subscriber cannot drop a retired data segment", "topic", s.topic, "pub", r.PubID(), "index", r.Index(), "err", err)
			continue
		}
		if held > 0 {
			r.Hold()
			o.retiring = append(o.retiring, retiring{oc: oc, index: r.Index(), r: r})
			o.nRetiring.Store(int32(len(o.retiring)))
		}
	}
}

// checkRetiring lets go of retired segments whose held samples are all
// released (or whose connection went). Conservative: a sample of a new
// segment that reused the index also counts, which only defers the unmap.
func (s *Subscriber) checkRetiring(o *ownedState) {
	o.mu.Lock()
	var done []*clientrt.RetiredSegment
	kept := o.retiring[:0]
	for _, rt := range o.retiring {
		if rt.oc.done || o.eng.HeldIn(rt.oc.c, rt.index) == 0 {
			done = append(done, rt.r)
			continue
		}
		kept = append(kept, rt)
	}
	o.retiring = kept
	o.nRetiring.Store(int32(len(kept)))
	o.mu.Unlock()
	for _, r := range done {
		r.Done()
	}
}

// segArrived reports, after a refused GetDataSegment, whether segment
// index reached connection c meanwhile (or c needs nothing more). The
// router pushes every segment to a subscriber's process before a ref can
// name it, but a ref in shared memory can be seen before that push is
// read, and the reply can overtake a push still queued for dispatch. The
// reply comes after every push sent before it, so once the pushes received
// so far are dispatched (Barrier) a granted segment is there. This is
// what lets an orphaned connection drain: its dead publisher's fds are
// closed at the router, which can only refuse (design §4.1).
func (s *Subscriber) segArrived(ctx context.Context, o *ownedState, c *ownedsub.Conn, index uint16) bool {
	if err := s.rt.Barrier(ctx); err != nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	oc := o.conns[c.ID()]
	return oc == nil || oc.c != c || oc.done || oc.segs[index]
}

// askSegment sends GetDataSegment for the segment pe names, once per
// connection and index; the reply is added like a push. A refusal fails
// the connection unless the segment's push arrived meanwhile (segArrived).
func (s *Subscriber) askSegment(o *ownedState, pe *ownedsub.PendingError) {
	k := segAsk{pe.Conn, pe.Segment}
	o.mu.Lock()
	oc := o.conns[pe.Conn]
	if oc == nil || oc.c == nil || o.asked[k] {
		o.mu.Unlock()
		return
	}
	if o.asked == nil {
		o.asked = map[segAsk]bool{}
	}
	o.asked[k] = true
	c := oc.c
	o.mu.Unlock()
	o.asks.Add(1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), getSegTimeout)
		defer cancel()
		err := s.rt.GetDataSegment(ctx, k.conn, k.index)
		o.answered.Add(1)
		if err != nil && s.segArrived(ctx, o, c, k.index) {
			err = nil // the grant was pushed: the engine delivers the kept ref
		}
		o.mu.Lock()
		delete(o.asked, k)
		o.mu.Unlock()
		if err != nil {
			err = fmt.Errorf("get data segment %d of publisher %d for connection %d: %w", k.index, pe.PubID, k.conn, err)
			slog.Warn("parallax: subscriber stops using a connection", "topic", s.topic, "conn", k.conn, "err", err)
			_ = o.eng.FailConn(c, err)
			s.changed.Broadcast()
		}
	}()
}
