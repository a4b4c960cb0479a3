package core

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"github.com/parallax-ipc/parallax"
)

// Run-time pool growth and dedicated pools: the decisions (growth_types.go
// has the events, requests and actions).
//
// A publisher whose loan finds its size class exhausted sends [GrowPool].
// The core first grants the pools of that class the client has not mapped
// yet (grown earlier for another process); when the client knows them all
// it picks the next reserved management area of the class and asks the
// server to create the pool ([CreatePool]); the server reports the outcome
// ([PoolCreated]) and the core replies. Beyond Growth.MaxSegmentsPerPool or
// Growth.MaxTotalBytes the reply is parallax.ErrPoolExhausted. Grown pools
// live until the router stops.
//
// A loan larger than every class gets a dedicated pool: one chunk of the
// loan's size (rounded up to PoolLayout.ChunkAlign) in its own segment,
// loaned to the requesting client before the reply. Growth.MaxDedicatedBytes
// bounds the bytes of live dedicated pools. When the server reports a
// dedicated pool's chunk free ([DedicatedFree]) the core retires it
// ([RetirePool]; the server tombstones the chunk and closes the segment and
// reports [PoolRetired]), refuses [GetSegments] for it and tells every
// client ([TellPoolRetired]). Pool ids and management areas are not reused
// within a router run.
//
// The bytes and the area of a pool are counted from the [CreatePool] on,
// and given back when [PoolCreated] reports a failure (the server then
// leaves nothing of the pool behind) or the pool retires, so the
// accounting always covers exactly what exists or is being created.

type poolState uint8

const (
	poolCreating poolState = iota + 1 // CreatePool sent, PoolCreated not yet seen
	poolLive
	poolRetiring // RetirePool sent, PoolRetired not yet seen
	poolRetired
)

type grownPool struct {
	id        uint16
	base      int // index in PoolLayout.Base; -1 for a dedicated pool
	area      int // index in PoolLayout.Grown or PoolLayout.Dedicated
	chunkSize uint32
	bytes     uint64
	state     poolState
	// The GrowPool being answered while creating.
	conn  ConnID
	reqID uint32
}

func (g *grownPool) dedicated() bool { return g.base < 0 }

// growth is the core's bookkeeping of grown and dedicated pools.
type growth struct {
	layout    PoolLayout
	pools     map[uint16]*grownPool // every grown or dedicated pool, retired included
	grownUsed []bool                // by PoolLayout.Grown index
	dedUsed   []bool                // by PoolLayout.Dedicated index; never reset within a run
	liveBytes uint64                // payload bytes of grown and dedicated pools not retired
	dedBytes  uint64                // of dedicated pools not retired
}

func newGrowth(l PoolLayout) growth {
	return growth{
		layout:    l,
		pools:     make(map[uint16]*grownPool),
		grownUsed: make([]bool, len(l.Grown)),
		dedUsed:   make([]bool, len(l.Dedicated)),
	}
}

// growRequest answers GrowPool and GetSegments.
func (r *Router) growRequest(c *client, ev ClientRequest, reply func(Result, error)) {
	switch req := ev.Req.(type) {
	case GrowPool:
		r.grow(c, ev, req, reply)
	case GetSegments:
		if !req.ReadOnly && !c.wrote {
			reply(nil, fmt.Errorf("get segments of pool %d read-write: only a client with a publisher may write payload: %w", req.Pool, parallax.ErrPermissionDenied))
			return
		}
		if g := r.growth.pools[req.Pool]; g == nil || (g.state != poolLive && g.state != poolRetiring) {
			reply(nil, fmt.Errorf("get segments of pool %d: no such grown or dedicated pool (base pools come with the first endpoint; dedicated ones retire when freed): %w", req.Pool, ErrNotFound))
			return
		}
		reply(PoolsGranted{Pools: []uint16{req.Pool}, ReadOnly: req.ReadOnly}, nil)
	}
}

func (r *Router) grow(c *client, ev ClientRequest, req GrowPool, reply func(Result, error)) {
	g, rules, l := &r.growth, r.cfg.Growth, &r.growth.layout
	if !c.wrote {
		reply(nil, fmt.Errorf("grow pool for %d bytes: only a client with a publisher may loan: %w", req.Size, parallax.ErrPermissionDenied))
		return
	}
	if !rules.Enabled {
		reply(nil, fmt.Errorf("grow pool for %d bytes: growth is disabled (config [growth] enabled = false): %w", req.Size, parallax.ErrNotSupported))
		return
	}
	class := -1 // smallest configured chunk size that fits
	for i, b := range l.Base {
		if uint64(b.ChunkSize) >= req.Size && (class < 0 || b.ChunkSize < l.Base[class].ChunkSize) {
			class = i
		}
	}
	if class < 0 {
		r.growDedicated(c, ev, req.Size, reply)
		return
	}
	size := l.Base[class].ChunkSize
	var missing []uint16
	for id, p := range g.pools {
		if !p.dedicated() && p.state == poolLive && p.chunkSize == size && !slices.Contains(req.Known, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		reply(PoolsGranted{Pools: missing}, nil)
		return
	}
	per := rules.MaxSegmentsPerPool
	for i, b := range l.Base {
		if b.ChunkSize != size {
			continue
		}
		j := slices.Index(g.grownUsed[i*per:(i+1)*per], false)
		if j < 0 {
			continue
		}
		bytes := uint64(b.ChunkSize) * uint64(b.Count)
		if g.liveBytes+bytes > rules.MaxTotalBytes {
			break
		}
		area := i*per + j
		a := l.Grown[area]
		r.startCreate(&grownPool{id: a.ID, base: i, area: area, chunkSize: size, bytes: bytes, conn: ev.Conn, reqID: ev.ReqID},
			CreatePool{Pool: a.ID, Mgmt: a.Mgmt, ChunkSize: size, Count: b.Count, Bytes: bytes, Pages: b.Pages})
		return
	}
	reply(nil, fmt.Errorf("grow the %d-byte class: limits reached (growth.max_segments_per_pool %d, growth.max_total_bytes %v, %d bytes grown): %w",
		size, per, byteSize(rules.MaxTotalBytes), g.liveBytes, parallax.ErrPoolExhausted))
}

// maxDedicatedChunk is the largest chunk a dedicated pool holds (chunk
// sizes are 32-bit).
const maxDedicatedChunk = 1 << 32

func (r *Router) growDedicated(c *client, ev ClientRequest, n uint64, reply func(Result, error)) {
	g, rules, l := &r.growth, r.cfg.Growth, &r.growth.layout
	align := max(l.ChunkAlign, 1)
	size := (min(n, 1<<33) + align - 1) / align * align
	area := slices.Index(g.dedUsed, false)
	switch {
	case size > maxDedicatedChunk-align:
		reply(nil, fmt.Errorf("dedicated segment for %d bytes: a chunk holds at most 4 GiB: %w", n, parallax.ErrPoolExhausted))
		return
	case g.dedBytes+size > rules.MaxDedicatedBytes || g.liveBytes+size > rules.MaxTotalBytes:
		reply(nil, fmt.Errorf("dedicated segment for %d bytes: limits reached (growth.max_dedicated_bytes %v with %d in use, growth.max_total_bytes %v with %d in use): %w",
			n, byteSize(rules.MaxDedicatedBytes), g.dedBytes, byteSize(rules.MaxTotalBytes), g.liveBytes, parallax.ErrPoolExhausted))
		return
	case area < 0:
		reply(nil, fmt.Errorf("dedicated segment for %d bytes: all %d dedicated pool areas of this router run are used: %w", n, len(l.Dedicated), parallax.ErrPoolExhausted))
		return
	}
	id := uint16(len(l.Base) + len(l.Grown) + area)
	pages := PagesAuto
	if size < 2<<20 {
		pages = PagesNever // a hugepage would waste most of itself
	}
	r.startCreate(&grownPool{id: id, base: -1, area: area, chunkSize: uint32(size), bytes: size, conn: ev.Conn, reqID: ev.ReqID},
		CreatePool{Pool: id, Mgmt: l.Dedicated[area], ChunkSize: uint32(size), Count: 1, Bytes: size, Pages: pages, Dedicated: true, LoanTo: c.id})
}

// startCreate counts p's area and bytes and asks the server to create it.
func (r *Router) startCreate(p *grownPool, a CreatePool) {
	g := &r.growth
	p.state = poolCreating
	g.pools[p.id] = p
	g.liveBytes += p.bytes
	if p.dedicated() {
		g.dedUsed[p.area] = true
		g.dedBytes += p.bytes
	} else {
		g.grownUsed[p.area] = true
	}
	r.emit(a)
}

// poolCreated completes a GrowPool.
func (r *Router) poolCreated(ev PoolCreated) {
	g := &r.growth
	p := g.pools[ev.Pool]
	if p == nil || p.state != poolCreating {
		r.log(slog.LevelError, "pool creation reported for no pool being created", slog.Int("pool", int(ev.Pool)))
		return
	}
	if ev.Err != nil {
		// Nothing of the pool exists: its area and bytes go back.
		delete(g.pools, p.id)
		g.liveBytes -= p.bytes
		if p.dedicated() {
			g.dedUsed[p.area] = false
			g.dedBytes -= p.bytes
		} else {
			g.grownUsed[p.area] = false
		}
		r.emit(Reply{Conn: p.conn, ReqID: p.reqID, Err: ev.Err})
		r.log(slog.LevelWarn, "pool creation failed", slog.Int("pool", int(p.id)), slog.String("err", ev.Err.Error()))
		return
	}
	p.state = poolLive
	granted := PoolsGranted{Pools: []uint16{p.id}}
	if p.dedicated() {
		granted.Ref = ev.Ref
		r.log(slog.LevelDebug, "dedicated segment", slog.Int("pool", int(p.id)), slog.Uint64("bytes", p.bytes))
	} else {
		per := r.cfg.Growth.MaxSegmentsPerPool
		n := 0
		for _, used := range g.grownUsed[p.base*per : (p.base+1)*per] {
			if used {
				n++
			}
		}
		r.log(slog.LevelInfo, "pool grown", slog.Int("pool", int(p.id)), slog.Uint64("chunk_size", uint64(p.chunkSize)),
			slog.Int("count", int(g.layout.Base[p.base].Count)), slog.Int("growth", n), slog.Uint64("growth_bytes", g.liveBytes))
	}
	r.emit(Reply{Conn: p.conn, ReqID: p.reqID, Result: granted})
}

// dedicatedFree retires the live dedicated pools the server found free.
func (r *Router) dedicatedFree(ev DedicatedFree) {
	for _, id := range ev.Pools {
		if p := r.growth.pools[id]; p != nil && p.dedicated() && p.state == poolLive {
			p.state = poolRetiring
			r.emit(RetirePool{Pool: id})
		}
	}
}

// poolRetired completes a retirement: the pool's bytes go back and every
// client is told, so that it unmaps the segment too (its memory returns to
// the system only when the last mapping goes).
func (r *Router) poolRetired(ev PoolRetired) {
	g := &r.growth
	p := g.pools[ev.Pool]
	if p == nil || p.state != poolRetiring {
		r.log(slog.LevelError, "pool retirement reported for no pool being retired", slog.Int("pool", int(ev.Pool)))
		return
	}
	if ev.Held {
		p.state = poolLive // loaned again before the tombstone
		return
	}
	p.state = poolRetired
	g.liveBytes -= p.bytes
	g.dedBytes -= p.bytes
	ids := make([]ClientID, 0, len(r.clients))
	for id := range r.clients {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r.emit(TellPoolRetired{Conn: r.clients[id].conn, Pool: p.id})
	}
	r.log(slog.LevelDebug, "dedicated segment retired", slog.Int("pool", int(p.id)), slog.Uint64("bytes", p.bytes))
}

// GrowthStats summarises the grown and dedicated pools.
type GrowthStats struct {
	Grown          int    // grown pools (they live until the router stops)
	Dedicated      int    // live dedicated pools
	Retired        int    // retired dedicated pools
	LiveBytes      uint64 // payload bytes of grown and live dedicated pools
	DedicatedBytes uint64 // of live dedicated pools
}

// Growth returns the state of run-time growth. Pools being created or
// retired count as live.
func (r *Router) Growth() GrowthStats {
	s := GrowthStats{LiveBytes: r.growth.liveBytes, DedicatedBytes: r.growth.dedBytes}
	for _, p := range r.growth.pools {
		switch {
		case !p.dedicated():
			s.Grown++
		case p.state == poolRetired:
			s.Retired++
		default:
			s.Dedicated++
		}
	}
	return s
}

// ErrNotFound reports a request naming a pool the router does not have
// (or no longer has); the server sends it as the protocol's not-found code.
var ErrNotFound = errors.New("not found")

// byteSize formats n as the configuration writes sizes ("1 GiB").
func byteSize(n uint64) string {
	for _, u := range []struct {
		n    uint64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatUint(n/u.n, 10) + " " + u.name
		}
	}
	return strconv.FormatUint(n, 10) + " B"
}
