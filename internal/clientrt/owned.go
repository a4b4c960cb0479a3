package clientrt

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/segment"
)

// Owned memory model (docs/design/memory-ownership.md §3.2–3.3, §8.1): the
// router grants a publisher's data segments read-write to its own process
// (wire.DataSegmentAdded, before the PublisherCreated reply), and each
// connection's segment to both ends (wire.ConnSegmentAdded, after the
// ConnectionAdded push and possibly after the reply of the request that
// made the connection), followed, for the subscriber's process, by the
// publisher's data segments read-only. The runtime checks every fd against
// its descriptor before mapping it, maps it, and hands it to the local
// endpoints:
//
//   - own data segments: a [PubSegments] table per local publisher
//     ([Runtime.OwnedPublisher]); later ones (growth) also reach the
//     endpoint through [OwnedEndpoint.DataSegmentAdded];
//   - connection segments: routed like ConnectionAdded (by PubID and SubID,
//     held while a Create is in flight), one [OwnedConn] per local side;
//   - subscribers' read-only data segments: one [PubSegments] table per
//     remote publisher, shared by every local subscriber connected to it and
//     refcounted by their OwnedConns: the last Close unmaps it.
//
// Every fd the runtime does not keep is closed.

// OwnedEndpoint is implemented by endpoints that run on the owned model.
// Handlers run on the push dispatch goroutine, one at a time, like
// [Endpoint]'s.
type OwnedEndpoint interface {
	// ConnSegmentAdded hands the endpoint its side of a connection; it
	// owns c and must Close it once it no longer touches the segment
	// (after the connection's ConnectionRemoved at the latest). Handlers
	// that do not want it close it at once.
	ConnSegmentAdded(c *OwnedConn)
	// DataSegmentAdded tells a publisher endpoint of one more of its own
	// data segments (read-write; growth). Its [PubSegments] has it already.
	DataSegmentAdded(s *dataseg.Segment)
}

// PubSegments is the table of one publisher's data segments mapped in this
// process, by segment index: the read-write ones of a local publisher, or
// the read-only ones its local subscribers share. Segment is safe for
// concurrent use and allocates nothing.
type PubSegments struct {
	pub      uint32
	readOnly bool
	segs     atomic.Pointer[[]*dataseg.Segment] // by index; nil where not mapped (copy on write)
	// Guarded by Runtime.mu: the mappings, by segment index.
	maps []*segment.Mapped
	refs int
	// claimed: a local publisher took the table (OwnedPublisher). A
	// read-write table nobody claimed when no Create is in flight any more
	// is a publisher whose Create failed after the router had pushed its
	// first segment (the connection died before the reply): EndCreate
	// unmaps it.
	claimed bool
}

// PubID returns the publisher whose segments these are.
func (p *PubSegments) PubID() uint32 { return p.pub }

// Segment returns segment index i, or nil when it is not mapped (yet).
func (p *PubSegments) Segment(i uint16) *dataseg.Segment {
	s := *p.segs.Load()
	if int(i) >= len(s) {
		return nil
	}
	return s[i]
}

// Segments returns the mapped segments (nil entries where absent). The
// slice must not be modified.
func (p *PubSegments) Segments() []*dataseg.Segment { return *p.segs.Load() }

func newPubSegments(pub uint32, readOnly bool) *PubSegments {
	p := &PubSegments{pub: pub, readOnly: readOnly}
	p.segs.Store(&[]*dataseg.Segment{})
	return p
}

// add publishes s at its index; Runtime.mu held.
func (p *PubSegments) add(m *segment.Mapped, s *dataseg.Segment) {
	old := *p.segs.Load()
	i := int(s.Desc().Index)
	next := make([]*dataseg.Segment, max(len(old), i+1))
	copy(next, old)
	next[i] = s
	p.segs.Store(&next)
	for len(p.maps) <= i {
		p.maps = append(p.maps, nil)
	}
	p.maps[i] = m
}

// unmap closes every mapping; Runtime.mu held, nobody uses p any more.
func (p *PubSegments) unmap() {
	p.segs.Store(&[]*dataseg.Segment{})
	for _, m := range p.maps {
		if m != nil {
			m.Close()
		}
	}
	p.maps = nil
}

// ownedState is a runtime's owned-model bookkeeping, guarded by Runtime.mu.
type ownedState struct {
	own   map[uint32]*PubSegments // local publishers' read-write segments
	ro    map[uint32]*PubSegments // remote publishers' read-only segments
	conns map[uint32]*connMap     // connection segments mapped, by ConnID
	// retired: read-only segments their publisher retired, mapped while
	// local samples of them are held (owned_grow.go).
	retired map[*RetiredSegment]struct{}
}

// connMap is one mapped connection segment, shared by the local sides of
// the connection; refs counts the OwnedConns and the grant being routed.
type connMap struct {
	desc wire.ConnSegDesc
	m    *segment.Mapped
	refs int
	gone bool // unmapped
}

// An OwnedConn is one local side of a connection: its segment attached as
// a [ringbuf.Conn] and, on the subscriber side, the publisher's read-only
// data segments. Close it once the side no longer touches the segment; the
// last Close of a mapping unmaps it. Close is idempotent; the other methods
// are safe for concurrent use.
type OwnedConn struct {
	rt     *Runtime
	cm     *connMap
	conn   *ringbuf.Conn
	pub    *PubSegments // subscriber side only
	closed atomic.Bool
}

// Desc returns the connection's descriptor as the router sent it.
func (c *OwnedConn) Desc() wire.ConnSegDesc { return c.cm.desc }

// Conn returns the attached connection segment.
func (c *OwnedConn) Conn() *ringbuf.Conn { return c.conn }

// Publisher returns the publisher's read-only data segments (subscriber
// side), or nil on the publisher side.
func (c *OwnedConn) Publisher() *PubSegments { return c.pub }

// Close drops this side's references to the connection segment and to the
// publisher's data segments.
func (c *OwnedConn) Close() {
	if c == nil || !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	c.rt.unrefConn(c.cm)
	if c.pub != nil {
		c.rt.unrefRO(c.pub)
	}
}

// connGrant is a ConnSegmentAdded being routed to the local endpoints
// (possibly held in pending): it keeps one reference to the mapping and to
// the publisher's read-only table until released.
type connGrant struct {
	*wire.ConnSegmentAdded
	cm  *connMap
	pub *PubSegments
}

// OwnedPublisher returns the read-write data segments the router granted
// local publisher pub (they arrive before its PublisherCreated reply: call
// it after [Runtime.Wired]), or nil when none arrived.
func (rt *Runtime) OwnedPublisher(pub uint32) *PubSegments {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	p := rt.owned.own[pub]
	if p != nil {
		p.claimed = true
	}
	return p
}

// unmapUnclaimed unmaps the read-write tables no local publisher claimed,
// once no Create is in flight (EndCreate): their publishers will never
// register. Runtime.mu held.
func (rt *Runtime) unmapUnclaimed() {
	for id, p := range rt.owned.own {
		if !p.claimed {
			slog.Debug("parallax: unmapping the data segments of a publisher whose creation failed", "pub", id)
			delete(rt.owned.own, id)
			p.unmap()
		}
	}
}

// CloseOwnedPublisher unmaps local publisher pub's data segments; the
// publisher must not touch them any more.
func (rt *Runtime) CloseOwnedPublisher(pub uint32) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if p := rt.owned.own[pub]; p != nil {
		delete(rt.owned.own, pub)
		p.unmap()
	}
}

// OwnedMappings counts the owned mappings of this runtime (own data
// segments, read-only data segments, connection segments), for tests.
func (rt *Runtime) OwnedMappings() (own, ro, conns int) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, p := range rt.owned.own {
		own += len(p.Segments())
	}
	for _, p := range rt.owned.ro {
		ro += len(p.Segments())
	}
	return own, ro, len(rt.owned.conns)
}

// onDataSegment handles a DataSegmentAdded push; it takes ownership of f.
func (rt *Runtime) onDataSegment(m *wire.DataSegmentAdded, f *os.File) {
	_, err := rt.addDataSegment(m.Seg, f, true)
	switch {
	case err == nil, errors.Is(err, errAlreadyMapped):
	case errors.Is(err, errNoPublisher):
		// Pushes run apart from replies: a closed publisher's growth, or
		// a failed Create's first segment, may come after it ended.
		slog.Debug("parallax: dropping a data segment of a publisher gone from this process", "pub", m.Seg.PubID, "index", m.Seg.Index)
	default:
		slog.Warn("parallax: refusing a data segment", "pub", m.Seg.PubID, "index", m.Seg.Index, "err", err)
	}
}

// addDataSegment maps data segment d (fd f, owned by the call) into its
// table and hands it to the local endpoints: the local subscribers when it
// is read-only (or has a read-only twin), the local publisher when it is
// read-write and notifyPub is set (a GrowData caller adds the segment
// itself). It returns the segment mapped as d says (nil when no local
// endpoint wants it).
func (rt *Runtime) addDataSegment(d wire.DataSegDesc, f *os.File, notifyPub bool) (*dataseg.Segment, error) {
	rt.mu.Lock()
	tables, pubTable := rt.owned.own, rt.pubs[d.PubID]
	if d.ReadOnly {
		tables = rt.owned.ro
	}
	p := tables[d.PubID]
	if d.ReadOnly && p == nil {
		rt.mu.Unlock()
		f.Close() // no local subscriber is connected to that publisher (any more)
		return nil, nil
	}
	if p != nil && p.Segment(d.Index) != nil {
		same := d.ReadOnly && sameFile(p.maps[d.Index].File(), f)
		rt.mu.Unlock()
		f.Close()
		if same {
			// A GetDataSegment reply and the push of the same segment
			// crossed: the second copy is redundant, not an error.
			return nil, errAlreadyMapped
		}
		return nil, fmt.Errorf("data segment %d of publisher %d granted twice: %w", d.Index, d.PubID, parallax.ErrProtocol)
	}
	if p == nil && rt.inflight == 0 {
		// A local publisher's first segment comes before its Create
		// reply; with no Create in flight its publisher failed to
		// register (the connection died before the reply) or closed.
		rt.mu.Unlock()
		f.Close()
		return nil, fmt.Errorf("read-write data segment %d of publisher %d: %w", d.Index, d.PubID, errNoPublisher)
	}
	mp, seg, err := mapDataSegment(d, f)
	if err != nil {
		rt.mu.Unlock()
		return nil, fmt.Errorf("refuse data segment %d of publisher %d: %w", d.Index, d.PubID, err)
	}
	if p == nil { // a local publisher's first segment
		p = newPubSegments(d.PubID, false)
		if rt.owned.own == nil {
			rt.owned.own = map[uint32]*PubSegments{}
		}
		rt.owned.own[d.PubID] = p
	}
	p.add(mp, seg)
	mine := seg
	ro := d.ReadOnly
	if !ro {
		// Local subscribers of this local publisher get no read-only
		// grant (the router sends one grant per process): they read a
		// read-only twin of this mapping.
		if rot := rt.owned.ro[d.PubID]; rot != nil {
			rt.addTwins(rot, p)
			ro = true
			seg = rot.Segment(d.Index)
		}
	}
	var eps []OwnedEndpoint
	if ro && seg != nil {
		// Every local subscriber: those connected to the publisher add it.
		for _, ep := range rt.subs {
			if oe, ok := ep.(OwnedEndpoint); ok {
				eps = append(eps, oe)
			}
		}
	} else if oe, ok := pubTable.(OwnedEndpoint); ok && notifyPub {
		eps = append(eps, oe)
	}
	rt.mu.Unlock()
	for _, oe := range eps {
		oe.DataSegmentAdded(seg)
	}
	return mine, nil
}

// mapDataSegment checks f against d (size, seals, memfd, hugetlb or file
// kind, access mode) and maps it read-only or read-write as d says. It
// takes ownership of f: on error f is closed. A file (router config
// memory.backing = "file") cannot be sealed: its owner can truncate it.
func mapDataSegment(d wire.DataSegDesc, f *os.File) (*segment.Mapped, *dataseg.Segment, error) {
	mp, err := segment.Open(f, segment.OpenOptions{ExpectedSize: int64(d.Size), ReadOnly: d.ReadOnly, RequireSeals: d.Kind != wire.KindFile})
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("map data segment %d of publisher %d: %w", d.Index, d.PubID, err)
	}
	want := segment.KindMemfd
	switch d.Kind {
	case wire.KindHugetlb:
		want = segment.KindHugepage
	case wire.KindFile:
		want = segment.KindFile
	}
	if mp.Kind() != want {
		mp.Close()
		return nil, nil, fmt.Errorf("data segment %d of publisher %d is a %v, the router said %v: %w", d.Index, d.PubID, mp.Kind(), want, parallax.ErrProtocol)
	}
	dd := dataseg.Desc{PubID: d.PubID, Index: d.Index, ChunkSize: d.ChunkSize, Count: d.Count, PageSize: d.PageSize}
	if d.Kind == wire.KindHugetlb {
		dd.Flags = dataseg.FlagHugetlb
	}
	seg, err := dataseg.Attach(mp.Bytes(), dd, d.ReadOnly)
	if err != nil {
		mp.Close()
		return nil, nil, err
	}
	return mp, seg, nil
}

// onConnSegment handles a ConnSegmentAdded push: it maps the segment and
// routes it (returned, for onPush) to the local endpoints. It takes
// ownership of f. A second grant of a connection whose both ends are in
// this process is dropped: the first one reached both ends.
func (rt *Runtime) onConnSegment(m *wire.ConnSegmentAdded, f *os.File) *connGrant {
	d := m.Seg
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.owned.conns[d.ConnID] != nil {
		f.Close()
		return nil
	}
	mp, err := segment.Open(f, segment.OpenOptions{ExpectedSize: int64(d.Size), RequireSeals: true})
	if err == nil && mp.Kind() != segment.KindMemfd {
		mp.Close()
		err = fmt.Errorf("is a %v, not a memfd: %w", mp.Kind(), parallax.ErrProtocol)
		f = nil
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		slog.Warn("parallax: refusing a connection segment", "conn", d.ConnID, "err", err)
		return nil
	}
	cm := &connMap{desc: d, m: mp, refs: 1}
	if rt.owned.conns == nil {
		rt.owned.conns = map[uint32]*connMap{}
	}
	rt.owned.conns[d.ConnID] = cm
	if rt.owned.ro == nil {
		rt.owned.ro = map[uint32]*PubSegments{}
	}
	p := rt.owned.ro[d.PubID]
	if p == nil {
		p = newPubSegments(d.PubID, true)
		rt.owned.ro[d.PubID] = p
	}
	p.refs++
	// Both ends here: no read-only grant follows, so the subscriber side
	// reads twins of the publisher's mappings. Only when the subscriber
	// is (or, with a Create in flight, may be about to be) registered
	// here: for a remote subscriber the twins would be mapped and, at the
	// grant's release, unmapped again for nothing (a munmap per
	// connection in the publisher's process).
	if own := rt.owned.own[d.PubID]; own != nil && (rt.subs[d.SubID] != nil || rt.inflight > 0) {
		rt.addTwins(p, own)
	}
	return &connGrant{ConnSegmentAdded: m, cm: cm, pub: p}
}

// addTwins maps, read-only, every segment of a local publisher's table own
// that ro lacks: the router grants a process one set of fds per
// connection, so a subscriber in the publisher's own process maps the
// publisher's read-write fds a second time with PROT_READ. Runtime.mu held.
func (rt *Runtime) addTwins(ro, own *PubSegments) {
	for i, seg := range own.Segments() {
		if seg == nil || ro.Segment(uint16(i)) != nil {
			continue
		}
		mp, twin, err := roTwin(own.maps[i], seg)
		if err != nil {
			slog.Warn("parallax: cannot map a local publisher's segment read-only", "pub", own.pub, "index", i, "err", err)
			continue
		}
		ro.add(mp, twin)
	}
}

// roTwin maps seg (mapped by src) again, read-only, through a dup of its
// fd.
func roTwin(src *segment.Mapped, seg *dataseg.Segment) (*segment.Mapped, *dataseg.Segment, error) {
	dup, err := sys.DupFile(src.File())
	if err != nil {
		return nil, nil, err
	}
	mp, err := segment.Open(dup, segment.OpenOptions{ReadOnly: true, RequireSeals: src.Kind() != segment.KindFile})
	if err != nil {
		dup.Close()
		return nil, nil, err
	}
	twin, err := dataseg.Attach(mp.Bytes(), seg.Desc(), true)
	if err != nil {
		mp.Close()
		return nil, nil, err
	}
	return mp, twin, nil
}

// side attaches g's segment for one local side: the publisher's (pub) or
// the subscriber's. It uses the side's reference holdSide took when the
// grant was handed out for delivery (and drops it on failure), so a
// release of the grant meanwhile (EndCreate dropping a held push) cannot
// unmap the segment under the attach. Runtime.mu not held.
func (rt *Runtime) side(g *connGrant, pub bool) (*OwnedConn, error) {
	d := g.Seg
	pol := ringbuf.DiscardOldest
	if d.Policy == wire.PolicyBlockProducer {
		pol = ringbuf.BlockProducer
	}
	rc, err := ringbuf.AttachConn(g.cm.m.Bytes(), ringbuf.ConnDesc{ConnID: d.ConnID, PubID: d.PubID, SubID: d.SubID, Policy: pol,
		DataCap: d.Capacity, ReturnCap: d.ReturnCapacity, MaxHeld: d.MaxHeld, Bound: d.Bound})
	if err != nil {
		rt.dropSide(g, pub)
		return nil, fmt.Errorf("attach connection segment %d: %w", d.ConnID, err)
	}
	rt.mu.Lock()
	gone := g.cm.gone // the runtime closed (closeOwned) meanwhile
	rt.mu.Unlock()
	if gone {
		return nil, fmt.Errorf("connection segment %d: %w", d.ConnID, os.ErrClosed)
	}
	c := &OwnedConn{rt: rt, cm: g.cm, conn: rc}
	if !pub {
		c.pub = g.pub
	}
	return c, nil
}

// holdSide takes the references of one local side (pub: the publisher's)
// that a delivery of g will use, before the delivery leaves Runtime.mu:
// one to the mapping, and on the subscriber side one to the publisher's
// read-only table. Runtime.mu held.
func (rt *Runtime) holdSide(g *connGrant, pub bool) {
	g.cm.refs++
	if !pub {
		g.pub.refs++
	}
}

// dropSide gives back what holdSide took, for a delivery that handed no
// OwnedConn out. Runtime.mu not held.
func (rt *Runtime) dropSide(g *connGrant, pub bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.unrefConn(g.cm)
	if !pub {
		rt.unrefRO(g.pub)
	}
}

// deliverConnSeg hands g to ep, one side, with the references holdSide
// took for it.
func (rt *Runtime) deliverConnSeg(ep Endpoint, g *connGrant, pub bool) {
	oe, ok := ep.(OwnedEndpoint)
	if !ok {
		rt.dropSide(g, pub)
		return
	}
	c, err := rt.side(g, pub)
	if err != nil {
		slog.Warn("parallax: cannot attach a connection segment", "conn", g.Seg.ConnID, "err", err)
		return
	}
	oe.ConnSegmentAdded(c)
}

// releaseGrant drops the routing reference of g.
func (rt *Runtime) releaseGrant(g *connGrant) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.unrefConn(g.cm)
	rt.unrefRO(g.pub)
}

// unrefConn drops one reference to cm; Runtime.mu held.
func (rt *Runtime) unrefConn(cm *connMap) {
	if cm.refs--; cm.refs > 0 || cm.gone {
		return
	}
	cm.gone = true
	if rt.owned.conns[cm.desc.ConnID] == cm {
		delete(rt.owned.conns, cm.desc.ConnID)
	}
	cm.m.Close()
}

// unrefRO drops one reference to a read-only table; Runtime.mu held.
func (rt *Runtime) unrefRO(p *PubSegments) {
	if p.refs--; p.refs > 0 {
		return
	}
	if rt.owned.ro[p.pub] == p {
		delete(rt.owned.ro, p.pub)
	}
	p.unmap()
}

// closeOwned unmaps everything at teardown; Runtime.mu held.
func (rt *Runtime) closeOwned() {
	for _, p := range rt.owned.own {
		p.unmap()
	}
	for _, p := range rt.owned.ro {
		p.unmap()
	}
	for _, cm := range rt.owned.conns {
		cm.gone = true
		cm.m.Close()
	}
	for r := range rt.owned.retired {
		r.m.Close()
	}
	rt.owned = ownedState{}
}
