package clientrt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/background"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/segment"
)

// Growth, dedicated segments and retirement in the owned model (design
// docs/design/memory-ownership.md §1.3, §8.2, step 9): a local publisher
// asks for a segment ([Runtime.GrowData]) or retires one
// ([Runtime.RetireData]); a local subscriber asks for a segment it has not
// mapped ([Runtime.GetDataSegment]); a retirement pushed by the router (or
// done by a local publisher whose local subscribers read twins) reaches the
// local subscribers as a [RetiredSegment], which stays mapped while they
// hold samples of it.

// RetiringEndpoint is implemented by subscriber endpoints that drop
// retired data segments. Handlers run one at a time.
type RetiringEndpoint interface {
	// DataSegmentRetired tells the endpoint that r's publisher retired
	// r's segment: it is out of the read-only table already. An endpoint
	// that still holds samples of it calls r.Hold before returning and
	// r.Done once they are released; the last Done unmaps it.
	DataSegmentRetired(r *RetiredSegment)
}

// A RetiredSegment is a read-only data segment its publisher retired,
// mapped while local samples of it are held.
type RetiredSegment struct {
	rt    *Runtime
	pub   uint32
	index uint16
	m     *segment.Mapped
	refs  int // guarded by rt.mu
}

// PubID returns the segment's publisher.
func (r *RetiredSegment) PubID() uint32 { return r.pub }

// Index returns the segment's index (a later segment may reuse it).
func (r *RetiredSegment) Index() uint16 { return r.index }

// Hold keeps r mapped until the matching Done.
func (r *RetiredSegment) Hold() {
	r.rt.mu.Lock()
	r.refs++
	r.rt.mu.Unlock()
}

// Done ends one Hold (or the runtime's own reference); the last one unmaps
// the segment.
func (r *RetiredSegment) Done() {
	r.rt.mu.Lock()
	defer r.rt.mu.Unlock()
	if r.refs--; r.refs > 0 {
		return
	}
	if _, ok := r.rt.owned.retired[r]; ok {
		delete(r.rt.owned.retired, r)
		r.m.Close()
	}
}

// remove takes index i out of p and returns its mapping; Runtime.mu held.
func (p *PubSegments) remove(i uint16) *segment.Mapped {
	old := *p.segs.Load()
	if int(i) >= len(old) || old[i] == nil {
		return nil
	}
	next := make([]*dataseg.Segment, len(old))
	copy(next, old)
	next[i] = nil
	p.segs.Store(&next)
	m := p.maps[i]
	p.maps[i] = nil
	return m
}

// GrowData asks the router for one more data segment of local publisher
// pub for a loan of size bytes (reason wire.GrowExhausted,
// wire.GrowOversized or wire.GrowUndersized), maps the read-write reply into the publisher's
// table (and, read-only, for local subscribers of it) and returns it; the
// caller hands it to its engine. A refusal is the router's error (wrapping
// parallax.ErrLimit and naming the limit when one is exceeded).
func (rt *Runtime) GrowData(ctx context.Context, pub uint32, size uint32, reason uint8) (*dataseg.Segment, error) {
	call, err := rt.client.Start(&wire.GrowData{PubID: pub, ChunkSize: size, Reason: reason})
	if err != nil {
		return nil, err
	}
	background.Start() // ended here, or by the undo when the wait gives up
	reply, files, err := call.WaitUndo(ctx, func(c *discovery.Client, m wire.Message, files []*os.File) {
		defer background.Done()
		undoGrow(c, m, files)
	})
	if !discovery.GaveUp(err) {
		background.Done()
	}
	if err != nil {
		closeAll(files)
		return nil, err
	}
	m, ok := reply.(*wire.DataSegmentAdded)
	if !ok || len(files) != 1 || m.Seg.PubID != pub || m.Seg.ReadOnly {
		closeAll(files)
		return nil, fmt.Errorf("grow data: unexpected reply %v with %d fds: %w", reply, len(files), parallax.ErrProtocol)
	}
	seg, err := rt.addDataSegment(m.Seg, files[0], false)
	if err == nil && seg == nil {
		err = fmt.Errorf("grow data: segment %d not mapped: %w", m.Seg.Index, parallax.ErrProtocol)
	}
	return seg, err
}

// undoGrow retires, at the router behind c, the data segment a GrowData
// request added after its caller gave up waiting (the undo of GrowData):
// the publisher never maps it, and the router would count it against the
// domain's limits, and grant it to the publisher's subscribers, until the
// publisher closes. A segment the router will not retire (one of a class
// the publisher's sizing needs) stays: it goes with the publisher.
func undoGrow(c *discovery.Client, m wire.Message, files []*os.File) {
	closeAll(files)
	d, ok := m.(*wire.DataSegmentAdded)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), undoTimeout)
	defer cancel()
	_, rfiles, err := c.Request(ctx, &wire.RetireData{PubID: d.Seg.PubID, Index: d.Seg.Index}, nil)
	closeAll(rfiles)
	if err != nil && !IsClosed(err) {
		slog.Debug("parallax: a data segment whose request was given up stays", "pub", d.Seg.PubID, "index", d.Seg.Index, "err", err)
	}
}

// RetireData retires data segment index of local publisher pub, which no
// longer uses it (its engine removed it): once the router acknowledged, the
// read-write mapping goes, and local subscribers reading a read-only twin
// drop it as if the router had pushed DataSegmentRetired (it pushes it only
// to other processes).
func (rt *Runtime) RetireData(ctx context.Context, pub uint32, index uint16) error {
	if _, _, err := rt.client.Request(ctx, &wire.RetireData{PubID: pub, Index: index}, nil); err != nil {
		return err
	}
	rt.mu.Lock()
	if p := rt.owned.own[pub]; p != nil {
		if m := p.remove(index); m != nil {
			m.Close()
		}
	}
	rt.mu.Unlock()
	rt.onDataRetired(pub, index)
	return nil
}

// GetDataSegment asks the router for data segment index of the publisher
// of connection conn (a local subscriber met a ref into it without having
// it) and maps the read-only reply for the local subscribers, which get it
// through [OwnedEndpoint.DataSegmentAdded] like a push. A segment that
// arrived meanwhile by push is kept; the reply's fd is closed.
func (rt *Runtime) GetDataSegment(ctx context.Context, conn uint32, index uint16) error {
	reply, files, err := rt.client.Request(ctx, &wire.GetDataSegment{ConnID: conn, Index: index}, nil)
	if err != nil {
		closeAll(files)
		return err
	}
	m, ok := reply.(*wire.DataSegmentAdded)
	if !ok || len(files) != 1 || !m.Seg.ReadOnly || m.Seg.Index != index {
		closeAll(files)
		return fmt.Errorf("get data segment %d: unexpected reply %v with %d fds: %w", index, reply, len(files), parallax.ErrProtocol)
	}
	rt.mu.Lock()
	p := rt.owned.ro[m.Seg.PubID]
	have := p != nil && p.Segment(index) != nil
	rt.mu.Unlock()
	if have {
		closeAll(files)
		return nil
	}
	if _, err = rt.addDataSegment(m.Seg, files[0], false); errors.Is(err, errAlreadyMapped) {
		return nil // the push of the same segment came first
	}
	return err
}

// onDataRetired takes data segment index of publisher pub out of the
// read-only table and tells the local subscribers.
func (rt *Runtime) onDataRetired(pub uint32, index uint16) {
	rt.mu.Lock()
	p := rt.owned.ro[pub]
	var mp *segment.Mapped
	if p != nil {
		mp = p.remove(index)
	}
	if mp == nil {
		rt.mu.Unlock()
		return
	}
	r := &RetiredSegment{rt: rt, pub: pub, index: index, m: mp, refs: 1}
	if rt.owned.retired == nil {
		rt.owned.retired = map[*RetiredSegment]struct{}{}
	}
	rt.owned.retired[r] = struct{}{}
	var eps []RetiringEndpoint
	for _, ep := range rt.subs {
		if re, ok := ep.(RetiringEndpoint); ok {
			eps = append(eps, re)
		}
	}
	rt.mu.Unlock()
	for _, re := range eps {
		re.DataSegmentRetired(r)
	}
	r.Done()
}

// ForgetDataSegment drops data segment index of publisher pub from the
// read-only table as if its grant had never arrived: for tests of the
// GetDataSegment recovery. Local subscribers are not told.
func (rt *Runtime) ForgetDataSegment(pub uint32, index uint16) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if p := rt.owned.ro[pub]; p != nil {
		if m := p.remove(index); m != nil {
			m.Close()
		}
	}
}
