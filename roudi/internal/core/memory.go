package core

import (
	"fmt"
	"log/slog"
	"math/bits"
	"slices"

	"github.com/parallax-ipc/parallax"
)

// Owned memory (design §1.3, §3.2): every publisher gets its own data
// segments, every connection its own connection segment, all created by
// the server on the core's CreateDataSegment / CreateConnSegment and
// granted only as the core says (GrantSegments).
//
// A CreatePublisher is answered only after its first data segment exists:
// the core reserves the publisher id, counts the segment's bytes, emits
// CreateDataSegment and waits for DataSegmentCreated; then it registers the
// publisher as in the shared model (re-checking everything, since events
// may have come between), grants the segment read-write to the
// publisher's client and replies. Each new connection gets a connection
// segment; when it makes the publisher's chunks fall short of
//
//	chunks(P) ≥ MaxLoans + History + Σ bound(c)
//
// the core adds a growth segment of the same class holding max(deficit,
// chunks(P)) chunks (doubling). Bytes are counted from the create action
// on, and given back when the server reports a failure, so the accounting
// covers exactly what exists or is being created.

// Segment counts and sizes beyond the wire's ranges (design §5).
const (
	maxSegIndex = 4096 // data segment indices per publisher
	hugeBytes   = 2 << 20
)

type segState uint8

const (
	segCreating segState = iota + 1
	segLive
	segFailed // creation failed; the index may be used again
)

type dataSegRec struct {
	chunk uint32 // the publisher's class, or a dedicated one (memory_grow.go)
	count uint32
	bytes uint64
	huge  bool
	state segState
	inode uint64 // adopted after a router restart (resume_owned.go); 0 if created here
}

// pubMem is the owned memory of one publisher. It outlives the publisher
// as a tombstone while connection records still name it.
type pubMem struct {
	id        PubID
	topic     string
	chunkSize uint32
	maxLoans  int
	history   int
	segs      []dataSegRec // by index
	bytes     uint64       // of creating and live segments
	chunks    uint64       // likewise, of the class (dedicated segments not counted)
	dead      bool         // the publisher is gone; its fds are closed
	conns     int          // connection records naming it
	connBound uint64       // sum of those records' bounds (needed)
	// undeclared: untyped and no MaxPayload (the class is the default);
	// only such a publisher may ask for an undersized class.
	undeclared bool
}

// pendingPub is a CreatePublisher waiting for its first data segment.
type pendingPub struct {
	conn   ConnID
	reqID  uint32
	client *client
	req    CreatePublisher
	mem    *pubMem
}

// memState is the core's record of owned memory.
type memState struct {
	shared  uint64 // bytes of every counted segment, data and connection
	pubs    map[PubID]*pubMem
	pending map[PubID]*pendingPub
	conns   map[ConnectionID]*connSeg // conn_state.go
	grows   map[segKey]growReq        // GrowData waiting for its segment (memory_grow.go)
}

func newMemState() memState {
	return memState{pubs: map[PubID]*pubMem{}, pending: map[PubID]*pendingPub{}, conns: map[ConnectionID]*connSeg{}, grows: map[segKey]growReq{}}
}

// chunkClass is the chunk size of a publisher: its type's size, else its
// declared maximum payload, else the default, rounded up to 64 bytes.
func (r *Router) chunkClass(req CreatePublisher) uint64 {
	n := uint64(req.Type.Size)
	if n == 0 {
		n = uint64(req.MaxPayload)
	}
	if n == 0 {
		n = uint64(r.cfg.Memory.DefaultMaxPayload)
	}
	return (max(n, 1) + 63) &^ 63
}

// bound is bound(c) of design §1.3 for a connection with this queue
// capacity and max held, on chunks of chunkSize bytes.
func (r *Router) bound(capacity, maxHeld int, chunkSize uint32) int {
	budget := r.cfg.Memory.ConnectionBudget / uint64(chunkSize)
	return min(capacity+maxHeld, int(max(2, min(budget, 1<<30))))
}

func (r *Router) maxHeld(s *subscriber) int {
	if s.maxHeld > 0 {
		return s.maxHeld
	}
	return r.cfg.Memory.DefaultMaxHeld
}

// needed is MaxLoans + History + Σ bound(c) over m's connection records,
// plus extra.
func (r *Router) needed(m *pubMem, extra int) uint64 {
	// connBound is kept with conns where a record is added or dropped:
	// no walk over every connection of the domain per new connection.
	return uint64(m.maxLoans+m.history) + uint64(extra) + m.connBound
}

// segPlan sizes one data segment of m's class with count chunks.
func (r *Router) segPlan(m *pubMem, count uint64) (CreateDataSegment, error) {
	return r.segPlanChunk(m, m.chunkSize, count)
}

// segPlanChunk sizes one data segment of m with count chunks of chunk
// bytes, in the lowest free index.
func (r *Router) segPlanChunk(m *pubMem, chunk uint32, count uint64) (CreateDataSegment, error) {
	if count > parallax.MaxSlots {
		return CreateDataSegment{}, fmt.Errorf("%w: publisher %d: %d chunks of %d bytes exceed the %d chunks of one segment",
			parallax.ErrLimit, m.id, count, chunk, parallax.MaxSlots)
	}
	mc := r.cfg.Memory
	a := CreateDataSegment{Pub: m.id, ChunkSize: chunk, Count: uint32(count)}
	a.Bytes = r.dataSegSize(a.ChunkSize, a.Count, false)
	switch mc.Hugepages {
	case HugeAlways:
		a.Hugepages, a.Require = true, true
	case HugeAuto:
		a.Hugepages = a.Bytes >= mc.HugepageMinBytes
	}
	if a.Hugepages {
		a.Bytes = r.dataSegSize(a.ChunkSize, a.Count, true)
	}
	idx := slices.IndexFunc(m.segs, func(s dataSegRec) bool { return s.state == segFailed })
	if idx < 0 {
		idx = len(m.segs)
	}
	a.Index = uint16(min(idx, maxSegIndex))
	return a, r.memLimit(m, a.Bytes, idx >= len(m.segs), 0)
}

// memLimit checks the [limits] for m asking bytes more (and a new segment
// index when newSeg), with extraShared bytes already planned elsewhere.
func (r *Router) memLimit(m *pubMem, bytes uint64, newSeg bool, extraShared uint64) error {
	mc := r.cfg.Memory
	segs := len(m.segs)
	if newSeg {
		segs++
	}
	switch {
	case segs > min(mc.MaxSegmentsPerPublisher, maxSegIndex):
		return fmt.Errorf("%w: publisher %d: segment %d exceeds limits.max_segments_per_publisher %d (%d bytes asked, %d in use)",
			parallax.ErrLimit, m.id, segs, mc.MaxSegmentsPerPublisher, bytes, m.bytes)
	case m.bytes+bytes > mc.MaxPublisherBytes:
		return fmt.Errorf("%w: publisher %d: %d bytes asked with %d in use exceed limits.max_publisher_bytes %d",
			parallax.ErrLimit, m.id, bytes, m.bytes, mc.MaxPublisherBytes)
	case r.mem.shared+extraShared+bytes > mc.MaxSharedBytes:
		return fmt.Errorf("%w: publisher %d: %d bytes asked with %d in use in the domain exceed limits.max_shared_bytes %d",
			parallax.ErrLimit, m.id, bytes, r.mem.shared+extraShared, mc.MaxSharedBytes)
	}
	return nil
}

// addSeg counts a planned segment and asks the server to create it.
func (r *Router) addSeg(m *pubMem, a CreateDataSegment) {
	rec := dataSegRec{chunk: a.ChunkSize, count: a.Count, bytes: a.Bytes, huge: a.Hugepages, state: segCreating}
	if int(a.Index) < len(m.segs) {
		m.segs[a.Index] = rec
	} else {
		m.segs = append(m.segs, rec)
	}
	m.bytes += a.Bytes
	if a.ChunkSize == m.chunkSize {
		m.chunks += uint64(a.Count)
	}
	r.mem.shared += a.Bytes
	r.emit(a)
}

// dropSeg gives a segment's bytes back.
func (r *Router) dropSeg(m *pubMem, idx uint16) {
	s := &m.segs[idx]
	m.bytes -= s.bytes
	if s.chunk == m.chunkSize {
		m.chunks -= uint64(s.count)
	}
	r.mem.shared -= s.bytes
	*s = dataSegRec{state: segFailed}
	for len(m.segs) > 0 && m.segs[len(m.segs)-1].state == segFailed {
		m.segs = m.segs[:len(m.segs)-1]
	}
}

// createOwnedPublisher starts a CreatePublisher in the owned model: checks,
// sizes and asks for the first data segment. The reply waits for
// DataSegmentCreated.
func (r *Router) createOwnedPublisher(c *client, ev ClientRequest, req CreatePublisher, reply func(Result, error)) {
	fail := func(err error) { reply(nil, fmt.Errorf("create publisher on %q: %w", req.Topic, err)) }
	t, err := r.checkEndpoint(c, req.Kind, req.Topic, req.Type, req.History, true)
	if err == nil && len(r.pubs)+len(r.mem.pending) >= r.cfg.Limits.MaxPublishers {
		err = fmt.Errorf("%w: %d publishers (limits.max_publishers)", parallax.ErrLimit, len(r.pubs)+len(r.mem.pending))
	}
	if err == nil && (req.MaxLoans < 0 || req.ExpectedSubscribers < 0) {
		err = fmt.Errorf("%w: negative max loans %d or expected subscribers %d", parallax.ErrProtocol, req.MaxLoans, req.ExpectedSubscribers)
	}
	if err != nil {
		fail(err)
		return
	}
	chunk := r.chunkClass(req)
	if maxMsg := r.cfg.Limits.MaxMessageSize; chunk > 1<<32-64 || maxMsg != 0 && chunk > (maxMsg+63)&^63 {
		fail(fmt.Errorf("%w: chunks of %d bytes exceed limits.max_message_size %d", parallax.ErrLimit, chunk, maxMsg))
		return
	}
	m := &pubMem{id: r.nextPub + 1, topic: req.Topic, chunkSize: uint32(chunk), maxLoans: req.MaxLoans, history: req.History,
		undeclared: req.Type.Size == 0 && req.MaxPayload == 0}
	if m.maxLoans == 0 {
		m.maxLoans = r.cfg.Memory.DefaultMaxLoans
	}
	// Sized for the subscribers there now and the expected ones beyond.
	count := r.needed(m, 0)
	nsubs := 0
	if t != nil {
		for _, id := range t.subs {
			s := r.subs[id]
			count += uint64(r.bound(s.capacity, r.maxHeld(s), m.chunkSize))
			nsubs++
		}
	}
	expected := max(req.ExpectedSubscribers, 1)
	if expected > nsubs {
		count += uint64(expected-nsubs) * uint64(r.bound(r.cfg.Rings.DefaultCapacity, r.cfg.Memory.DefaultMaxHeld, m.chunkSize))
	}
	a, err := r.segPlan(m, count)
	if err != nil {
		fail(err)
		return
	}
	r.nextPub++
	r.mem.pending[m.id] = &pendingPub{conn: ev.Conn, reqID: ev.ReqID, client: c, req: req, mem: m}
	r.addSeg(m, a)
}

// dataSegmentCreated completes a first or growth data segment.
func (r *Router) dataSegmentCreated(ev DataSegmentCreated) {
	if pp := r.mem.pending[ev.Pub]; pp != nil {
		r.firstSegment(pp, ev)
		return
	}
	m := r.mem.pubs[ev.Pub]
	if m == nil || int(ev.Index) >= len(m.segs) || m.segs[ev.Index].state != segCreating {
		r.log(slog.LevelError, "data segment creation reported for no segment being created", slog.Int("pub", int(ev.Pub)), slog.Int("index", int(ev.Index)))
		return
	}
	if r.grown(m, ev) { // asked for by GrowData: memory_grow.go
		return
	}
	if ev.Err != nil {
		r.dropSeg(m, ev.Index)
		r.retireTombstone(m)
		r.log(slog.LevelWarn, "data segment growth failed", slog.Int("pub", int(m.id)), slog.Int("index", int(ev.Index)), slog.String("err", ev.Err.Error()))
		return
	}
	m.segs[ev.Index].state = segLive
	if m.dead {
		r.emit(CloseDataSegments{Pub: m.id, Indices: []uint16{ev.Index}})
		return
	}
	// Read-write to the owner, read-only to the clients with a live
	// connection to it (the subscriber's grant of a connection still being
	// created lists the segments live when it completes).
	p := r.pubs[m.id]
	r.emit(GrantSegments{Conn: p.client.conn, Pub: m.id, Data: []uint16{ev.Index}})
	for _, c := range r.readers(p) {
		r.emit(GrantSegments{Conn: c.conn, Pub: m.id, Data: []uint16{ev.Index}, ReadOnly: true})
	}
}

// readers are the clients other than p's own with a live connection to p,
// each once, in connection order.
func (r *Router) readers(p *publisher) []*client {
	var out []*client
	for _, lid := range p.links {
		cs := r.mem.conns[lid]
		l := r.links[lid]
		if cs == nil || cs.state != ConnLive || l.sub.client == p.client || slices.Contains(out, l.sub.client) {
			continue
		}
		out = append(out, l.sub.client)
	}
	return out
}

func (r *Router) firstSegment(pp *pendingPub, ev DataSegmentCreated) {
	m := pp.mem
	delete(r.mem.pending, m.id)
	reply := func(res Result, err error) { r.emit(Reply{Conn: pp.conn, ReqID: pp.reqID, Result: res, Err: err}) }
	if ev.Index != 0 || m.segs[0].state != segCreating {
		r.log(slog.LevelError, "first data segment reported with another index", slog.Int("pub", int(m.id)), slog.Int("index", int(ev.Index)))
	}
	if ev.Err != nil {
		r.dropSeg(m, 0)
		reply(nil, fmt.Errorf("create publisher on %q: create its data segment: %w", pp.req.Topic, ev.Err))
		r.log(slog.LevelWarn, "data segment creation failed", slog.Int("pub", int(m.id)), slog.String("err", ev.Err.Error()))
		return
	}
	m.segs[0].state = segLive
	var p *publisher
	if r.clients[pp.client.id] == pp.client {
		p = r.createPublisher(pp.client, pp.req, reply, m)
	} else {
		r.log(slog.LevelInfo, "publisher abandoned: its client left while its segment was created", slog.Int("pub", int(m.id)))
	}
	if p == nil {
		r.emit(CloseDataSegments{Pub: m.id, Indices: []uint16{0}})
		r.dropSeg(m, 0)
	}
}

// memPublisherAdded records m for the registered publisher p and grants
// its first segment; it runs before the reply and the announcements.
func (r *Router) memPublisherAdded(p *publisher, m *pubMem) {
	r.mem.pubs[p.id] = m
	r.emit(GrantSegments{Conn: p.client.conn, Pub: p.id, Data: []uint16{0}})
}

// memDropPublisher closes the fds of a departed publisher's segments. Its
// bytes stay counted while connection records name it (a tombstone:
// subscribers may still map the segments).
func (r *Router) memDropPublisher(p *publisher) {
	m := r.mem.pubs[p.id]
	if m == nil {
		return
	}
	m.dead = true
	var live []uint16
	for i, s := range m.segs {
		if s.state == segLive {
			live = append(live, uint16(i))
		}
	}
	if len(live) > 0 {
		r.emit(CloseDataSegments{Pub: m.id, Indices: live, Topic: m.topic})
	}
	r.retireTombstone(m)
}

// retireTombstone forgets a dead publisher's memory once no connection
// record names it and no segment is being created.
func (r *Router) retireTombstone(m *pubMem) {
	if !m.dead || m.conns > 0 || slices.ContainsFunc(m.segs, func(s dataSegRec) bool { return s.state == segCreating }) {
		return
	}
	r.mem.shared -= m.bytes
	m.bytes, m.chunks, m.segs = 0, 0, nil
	delete(r.mem.pubs, m.id)
}

// memCheckSubscriber refuses a subscriber whose connections would break
// a limit: for each publisher, the growth segment its connection needs and
// the connection segment.
func (r *Router) memCheckSubscriber(pubs []*publisher, capacity, maxHeld int) error {
	if maxHeld == 0 {
		maxHeld = r.cfg.Memory.DefaultMaxHeld
	}
	var extra uint64
	for _, p := range pubs {
		m := r.mem.pubs[p.id]
		if m == nil {
			continue
		}
		b := r.bound(capacity, maxHeld, m.chunkSize)
		if need := r.needed(m, b); need > m.chunks {
			a, err := r.segPlan(m, max(need-m.chunks, m.chunks))
			if err == nil {
				err = r.memLimit(m, a.Bytes, int(a.Index) >= len(m.segs), extra)
			}
			if err != nil {
				return err
			}
			extra += a.Bytes
		}
		cb := r.connSegSize(capacity, retCap(b))
		if r.mem.shared+extra+cb > r.cfg.Memory.MaxSharedBytes {
			return fmt.Errorf("%w: connection to publisher %d: %d bytes asked with %d in use in the domain exceed limits.max_shared_bytes %d",
				parallax.ErrLimit, p.id, cb, r.mem.shared+extra, r.cfg.Memory.MaxSharedBytes)
		}
		extra += cb
	}
	return nil
}

// retCap is the return ring's capacity for a bound: a power of two ≥ it.
func retCap(bound int) int { return 1 << bits.Len(uint(max(bound, 1)-1)) }

func (r *Router) dataSegSize(chunk, count uint32, huge bool) uint64 {
	return r.segSizes.Data(chunk, count, huge)
}

func (r *Router) connSegSize(capacity, ret int) uint64 { return r.segSizes.Conn(capacity, ret) }

// SegmentSizes computes owned segment sizes for the core (the server
// passes dataseg.Size and ringbuf.ConnSize): the bytes of a data segment of
// count chunks of chunk bytes on 2 MiB pages when huge, else normal pages,
// and of a connection segment with these ring capacities.
type SegmentSizes struct {
	Data func(chunk, count uint32, huge bool) uint64
	Conn func(capacity, returnCapacity int) uint64
}

// MemoryStats summarises owned memory, for tests and introspection.
type MemoryStats struct {
	SharedBytes uint64
	Publishers  []PubMemory
	Connections []ConnMemory
}

// PubMemory is one publisher's (or tombstone's) owned memory.
type PubMemory struct {
	Pub       PubID
	Topic     string
	ChunkSize uint32
	Chunks    uint64
	Bytes     uint64
	Segments  []SegMemory
	Dead      bool
}

// SegMemory is one data segment.
type SegMemory struct {
	Index     uint16
	ChunkSize uint32 // the publisher's class, or a dedicated one
	Count     uint32
	Bytes     uint64
	Huge      bool
	Live      bool
}

// Memory returns the owned memory accounting, by publisher and connection
// id.
func (r *Router) Memory() MemoryStats {
	s := MemoryStats{SharedBytes: r.mem.shared}
	for _, m := range r.mem.pubs {
		pm := PubMemory{Pub: m.id, Topic: m.topic, ChunkSize: m.chunkSize, Chunks: m.chunks, Bytes: m.bytes, Dead: m.dead}
		for i, sg := range m.segs {
			if sg.state != segFailed {
				pm.Segments = append(pm.Segments, SegMemory{Index: uint16(i), ChunkSize: sg.chunk, Count: sg.count, Bytes: sg.bytes, Huge: sg.huge, Live: sg.state == segLive})
			}
		}
		s.Publishers = append(s.Publishers, pm)
	}
	slices.SortFunc(s.Publishers, func(a, b PubMemory) int { return int(a.Pub) - int(b.Pub) })
	for _, cs := range r.mem.conns {
		s.Connections = append(s.Connections, cs.memory())
	}
	slices.SortFunc(s.Connections, func(a, b ConnMemory) int { return int(a.Connection) - int(b.Connection) })
	return s
}

// PublisherOwner returns the control connection of the client that owns
// live publisher id, and false if there is no such publisher.
func (r *Router) PublisherOwner(id PubID) (ConnID, bool) {
	p, ok := r.pubs[id]
	if !ok || p == nil {
		return 0, false
	}
	return p.client.conn, true
}

// PublisherSegments returns the live data segments of owned publisher id
// (its chunk counts and sizes, as the router created them), and false if
// the publisher has no owned memory.
func (r *Router) PublisherSegments(id PubID) ([]SegMemory, bool) {
	m := r.mem.pubs[id]
	if m == nil {
		return nil, false
	}
	var out []SegMemory
	for i, sg := range m.segs {
		if sg.state == segLive {
			out = append(out, SegMemory{Index: uint16(i), ChunkSize: sg.chunk, Count: sg.count, Bytes: sg.bytes, Huge: sg.huge, Live: true})
		}
	}
	return out, true
}
