package core

import (
	"errors"
	"fmt"
	"log/slog"
	"math/bits"

	"github.com/parallax-ipc/parallax"
)

// ErrNotFound reports a request naming a data segment the router does not
// have (or no longer has); the server sends it as the protocol's not-found
// code.
var ErrNotFound = errors.New("not found")

// Growth, dedicated segments and retirement asked for by the publisher
// (design §1.3, §3.2, step 9), in the owned model:
//
//   - GrowData adds a data segment to the requester's own publisher: of its
//     class (count 0: max(deficit, chunks(P)), doubling) or, for a loan
//     larger than the class (untyped publishers only), a dedicated class of
//     roundup_pow2(size) with count 0 meaning MaxLoans + Σ bound(c) at that
//     size (bound is capped by connection_budget). Refused beyond [limits]
//     (memLimit names the limit, the publisher, the bytes asked and in
//     use). An untyped publisher that declared no MaxPayload (its class
//     is [publishers] default_max_payload) may also ask for an undersized
//     class below it (Undersized): roundup_pow2(max(size, 64)), sized like
//     a dedicated class at that size, so a stream of small samples does
//     not spend a default-class chunk (a page) on each. Once the server
//     created it, the segment goes read-only to every client with a live
//     connection to the publisher, then read-write to the publisher's
//     client as the reply.
//   - RetireData frees an index of the requester's own publisher: the
//     server closes its fds, its bytes leave the accounting, the clients
//     with a live connection are told (TellDataRetired), and the index is
//     the first one a later segment reuses, so a grow/retire loop never
//     runs out of indices. The first segment is never retired, nor a class
//     segment whose chunks the sizing invariant still needs.
//   - GetDataSegment grants one live data segment read-only to the client
//     on the subscriber side of a live connection to its publisher, and to
//     nobody else.

// GrowData asks for a data segment of publisher Pub (wire.GrowData): for
// loans of ChunkSize bytes, Count chunks (0: the router sizes it).
// Oversized says the client meant a dedicated class (ChunkSize above the
// publisher's class); it must agree with ChunkSize. Undersized asks for a
// class of small chunks below the class of a publisher that declared no
// payload size (ChunkSize below its class). Answered by
// [DataSegmentGranted].
type GrowData struct {
	Pub        PubID
	ChunkSize  uint32
	Count      uint32
	Oversized  bool
	Undersized bool
}

// RetireData retires data segment Index of publisher Pub
// (wire.RetireData); answered by [Closed].
type RetireData struct {
	Pub   PubID
	Index uint16
}

// GetDataSegment asks for data segment Index of the publisher of
// connection Connection (wire.GetDataSegment); answered by
// [DataSegmentGranted] (read-only).
type GetDataSegment struct {
	Connection ConnectionID
	Index      uint16
}

func (GrowData) isRequest()       {}
func (RetireData) isRequest()     {}
func (GetDataSegment) isRequest() {}

// DataSegmentGranted answers [GrowData] (read-write) and [GetDataSegment]
// (read-only): the server replies with data segment Index of Pub and the
// matching fd.
type DataSegmentGranted struct {
	Pub      PubID
	Index    uint16
	ReadOnly bool
}

func (DataSegmentGranted) isResult() {}

func (g DataSegmentGranted) String() string {
	mode := "rw"
	if g.ReadOnly {
		mode = "ro"
	}
	return fmt.Sprintf("data-seg pub=%d index=%d %s", g.Pub, g.Index, mode)
}

// TellDataRetired pushes to the client on Conn that data segment Index of
// publisher Pub is retired (wire.DataSegmentRetired).
type TellDataRetired struct {
	Conn  ConnID
	Pub   PubID
	Index uint16
}

func (TellDataRetired) isAction() {}

func (a TellDataRetired) String() string {
	return fmt.Sprintf("tell-data-retired %v pub=%d index=%d", a.Conn, a.Pub, a.Index)
}

// segKey names one data segment.
type segKey struct {
	pub   PubID
	index uint16
}

// growReq is a GrowData waiting for its segment.
type growReq struct {
	conn  ConnID
	reqID uint32
}

// dataRequest handles GrowData, RetireData and GetDataSegment.
func (r *Router) dataRequest(c *client, ev ClientRequest, reply func(Result, error)) {
	switch req := ev.Req.(type) {
	case GrowData:
		if err := r.growData(c, ev, req); err != nil {
			reply(nil, fmt.Errorf("grow publisher %d for %d-byte chunks: %w", req.Pub, req.ChunkSize, err))
		}
	case RetireData:
		if err := r.retireData(c, req); err != nil {
			reply(nil, fmt.Errorf("retire data segment %d of publisher %d: %w", req.Index, req.Pub, err))
			return
		}
		reply(Closed{}, nil)
	case GetDataSegment:
		g, err := r.getDataSegment(c, req)
		if err != nil {
			reply(nil, fmt.Errorf("get data segment %d of connection %d: %w", req.Index, req.Connection, err))
			return
		}
		reply(g, nil)
	}
}

// ownPub returns publisher id and its memory if c owns it.
func (r *Router) ownPub(c *client, id PubID) (*publisher, *pubMem, error) {
	p, ok := r.pubs[id]
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("%w: no such publisher", parallax.ErrProtocol)
	case p.client != c:
		return nil, nil, fmt.Errorf("%w: the publisher is client %d's, not client %d's", parallax.ErrPermissionDenied, p.client.id, c.id)
	}
	m := r.mem.pubs[id]
	if m == nil {
		return nil, nil, fmt.Errorf("%w: the publisher has no owned memory (restored after a router restart)", parallax.ErrNotSupported)
	}
	return p, m, nil
}

func (r *Router) growData(c *client, ev ClientRequest, req GrowData) error {
	p, m, err := r.ownPub(c, req.Pub)
	if err != nil {
		return err
	}
	if req.ChunkSize == 0 {
		return fmt.Errorf("%w: chunk size 0", parallax.ErrInvalidArgument)
	}
	var chunk uint32
	count := uint64(req.Count)
	switch {
	case req.Undersized:
		if chunk, err = r.undersizedChunk(m, req); err != nil {
			return err
		}
	case req.ChunkSize > m.chunkSize && !req.Oversized:
		return fmt.Errorf("%w: a loan of %d bytes is oversized for the publisher's %d-byte class", parallax.ErrInvalidArgument, req.ChunkSize, m.chunkSize)
	case req.ChunkSize <= m.chunkSize && req.Oversized:
		return fmt.Errorf("%w: a loan of %d bytes is not oversized for the publisher's %d-byte class", parallax.ErrInvalidArgument, req.ChunkSize, m.chunkSize)
	case req.Oversized:
		if p.topic.typ.Size != 0 {
			return fmt.Errorf("%w: a typed publisher loans only its type's %d bytes", parallax.ErrInvalidArgument, p.topic.typ.Size)
		}
		if maxMsg := r.cfg.Limits.MaxMessageSize; maxMsg != 0 && uint64(req.ChunkSize) > maxMsg {
			return fmt.Errorf("%w: publisher %d: %d-byte chunks exceed limits.max_message_size %d", parallax.ErrLimit, m.id, req.ChunkSize, maxMsg)
		}
		if req.ChunkSize > 1<<31 {
			return fmt.Errorf("%w: chunks of %d bytes exceed %d", parallax.ErrLimit, req.ChunkSize, uint32(1<<31))
		}
		chunk = uint32(1) << bits.Len32(req.ChunkSize-1) // a power of two above the class: a multiple of 64
	default:
		chunk = m.chunkSize
		if count == 0 {
			count = max(r.needed(m, 0)-min(m.chunks, r.needed(m, 0)), m.chunks)
		}
	}
	if chunk != m.chunkSize && count == 0 {
		count = r.dedicatedCount(p, m, chunk)
	}
	a, err := r.segPlanChunk(m, chunk, max(count, 1))
	if err != nil {
		return err
	}
	r.addSeg(m, a)
	r.mem.grows[segKey{m.id, a.Index}] = growReq{conn: ev.Conn, reqID: ev.ReqID}
	return nil
}

// undersizedChunk checks an undersized GrowData and returns its chunk
// size: roundup_pow2(max(ChunkSize, 64)), below the publisher's class.
func (r *Router) undersizedChunk(m *pubMem, req GrowData) (uint32, error) {
	switch {
	case req.Oversized:
		return 0, fmt.Errorf("%w: a request cannot be both oversized and undersized", parallax.ErrInvalidArgument)
	case !m.undeclared:
		return 0, fmt.Errorf("%w: an undersized class is only for an untyped publisher that declared no max payload (publisher %d's %d-byte class is declared)",
			parallax.ErrInvalidArgument, m.id, m.chunkSize)
	case req.ChunkSize >= m.chunkSize:
		return 0, fmt.Errorf("%w: a loan of %d bytes is not undersized for the publisher's %d-byte class", parallax.ErrInvalidArgument, req.ChunkSize, m.chunkSize)
	}
	chunk := uint32(1) << bits.Len32(max(req.ChunkSize, 64)-1) // a power of two ≥ 64
	if chunk >= m.chunkSize {
		return 0, fmt.Errorf("%w: a loan of %d bytes rounds up to %d-byte chunks, not below the publisher's %d-byte class",
			parallax.ErrInvalidArgument, req.ChunkSize, chunk, m.chunkSize)
	}
	return chunk, nil
}

// dedicatedCount is the count 0 of a dedicated (oversized or undersized)
// class of chunk bytes: MaxLoans + Σ bound(c) at that size over the live
// and creating connections.
func (r *Router) dedicatedCount(p *publisher, m *pubMem, chunk uint32) uint64 {
	count := uint64(m.maxLoans)
	for _, lid := range p.links {
		if cs := r.mem.conns[lid]; cs != nil && (cs.state == ConnLive || cs.state == ConnCreating) {
			s := r.links[lid].sub
			count += uint64(r.bound(s.capacity, r.maxHeld(s), chunk))
		}
	}
	return count
}

// grown completes a data segment a GrowData asked for; false if none did.
func (r *Router) grown(m *pubMem, ev DataSegmentCreated) bool {
	k := segKey{m.id, ev.Index}
	g, ok := r.mem.grows[k]
	if !ok {
		return false
	}
	delete(r.mem.grows, k)
	reply := func(res Result, err error) { r.emit(Reply{Conn: g.conn, ReqID: g.reqID, Result: res, Err: err}) }
	fail := func(err error) {
		reply(nil, fmt.Errorf("grow publisher %d: data segment %d: %w", m.id, ev.Index, err))
	}
	if ev.Err != nil {
		r.dropSeg(m, ev.Index)
		r.retireTombstone(m)
		r.log(slog.LevelWarn, "data segment creation failed", slog.Int("pub", int(m.id)), slog.Int("index", int(ev.Index)), slog.String("err", ev.Err.Error()))
		fail(ev.Err)
		return true
	}
	m.segs[ev.Index].state = segLive
	p := r.pubs[m.id]
	if m.dead || p == nil {
		// Nobody got its fd: its memory goes at once (design §4.2,
		// window grow.reply).
		r.emit(CloseDataSegments{Pub: m.id, Indices: []uint16{ev.Index}})
		r.dropSeg(m, ev.Index)
		r.retireTombstone(m)
		fail(fmt.Errorf("%w: the publisher closed while its segment was created", parallax.ErrProtocol))
		return true
	}
	for _, c := range r.readers(p) {
		r.emit(GrantSegments{Conn: c.conn, Pub: m.id, Data: []uint16{ev.Index}, ReadOnly: true})
	}
	reply(DataSegmentGranted{Pub: m.id, Index: ev.Index}, nil)
	return true
}

func (r *Router) retireData(c *client, req RetireData) error {
	p, m, err := r.ownPub(c, req.Pub)
	if err != nil {
		return err
	}
	i := req.Index
	switch {
	case int(i) >= len(m.segs) || m.segs[i].state == segFailed:
		return fmt.Errorf("%w: no such data segment", ErrNotFound)
	case m.segs[i].state == segCreating:
		return fmt.Errorf("%w: the segment is being created", parallax.ErrProtocol)
	case i == 0:
		return fmt.Errorf("%w: the first segment lives as long as the publisher", parallax.ErrInvalidArgument)
	}
	if s := m.segs[i]; s.chunk == m.chunkSize {
		if need := r.needed(m, 0); m.chunks-uint64(s.count) < need {
			return fmt.Errorf("%w: its %d chunks are needed (%d would remain, %d needed)", parallax.ErrInvalidArgument, s.count, m.chunks-uint64(s.count), need)
		}
	}
	r.emit(CloseDataSegments{Pub: m.id, Indices: []uint16{i}})
	for _, rc := range r.readers(p) {
		r.emit(TellDataRetired{Conn: rc.conn, Pub: m.id, Index: i})
	}
	r.dropSeg(m, i)
	return nil
}

func (r *Router) getDataSegment(c *client, req GetDataSegment) (DataSegmentGranted, error) {
	l, linked := r.links[req.Connection]
	cs := r.mem.conns[req.Connection]
	switch {
	case !linked && cs != nil && cs.state == ConnOrphaned && cs.subWait && cs.subClient == c.id:
		// Its subscriber still drains it, but the router closed the dead
		// publisher's fds (design §4.1): every segment live while the
		// connection was (the only ones its refs can name) was pushed to
		// this client before the removal, so a subscriber asking now has
		// it already or failed to map it.
		return DataSegmentGranted{}, fmt.Errorf("%w: connection %d is orphaned: publisher %d is gone and the router closed its segments (every live one was granted to client %d before the removal)",
			ErrNotFound, req.Connection, cs.pub.id, c.id)
	case !linked || cs == nil || cs.state != ConnLive:
		return DataSegmentGranted{}, fmt.Errorf("%w: client %d has no live connection %d", parallax.ErrPermissionDenied, c.id, req.Connection)
	case l.sub.client != c:
		return DataSegmentGranted{}, fmt.Errorf("%w: client %d is not the subscriber side of connection %d (subscriber %d of client %d)",
			parallax.ErrPermissionDenied, c.id, req.Connection, l.sub.id, l.sub.client.id)
	}
	m := cs.pub
	if int(req.Index) >= len(m.segs) || m.segs[req.Index].state != segLive {
		return DataSegmentGranted{}, fmt.Errorf("%w: publisher %d has no live data segment %d", ErrNotFound, m.id, req.Index)
	}
	return DataSegmentGranted{Pub: m.id, Index: req.Index, ReadOnly: true}, nil
}
