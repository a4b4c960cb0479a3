package roudi

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/hugepages"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/segment"
)

// Run-time pool growth and dedicated segments.
//
// A publisher whose loan finds its size class exhausted sends GrowPool. The
// router first grants the pools of that class the client has not mapped yet
// (grown earlier for another process); when the client knows them all it
// formats the next reserved management area of the class (layout.go), creates
// its payload segment and grants it. Beyond growth.max_segments_per_pool or
// growth.max_total_bytes the reply is ErrPoolExhausted. Grown pools live until
// the router stops.
//
// A loan larger than every class gets a dedicated pool: one chunk of the
// loan's size (rounded up to mempool.ChunkAlign) in its own segment, whose
// chunk the router loans to the requesting client before replying (so no
// other loan can take it first). growth.max_dedicated_bytes bounds the bytes
// of live dedicated segments. On each tick the router retires a dedicated pool
// whose chunk is free: it loans the chunk to itself (a tombstone no client
// can loan again, and that makes every old reference stale), closes its
// payload segment and read-only fd, and refuses GetSegments for it.
// It then pushes wire.PoolRetired to every client, which forgets the pool and
// unmaps its segment, so the memory goes back to the system. The pool id and
// management area are not reused within a router run.
//
// Clients that meet a reference into a pool they have not mapped ask for it
// with GetSegments: read-only for anyone, read-write only for a client that
// has a publisher.

// tombstoneOwner is the loaner id the router uses for retired dedicated pools.
const tombstoneOwner = 0

// growthState is the router's bookkeeping of grown and dedicated pools. It is
// owned by the Serve goroutine (and by New/Close).
type growthState struct {
	byID      map[uint16]*grownPool // every grown or dedicated pool, retired included
	perPool   []int                 // growths so far per configured pool
	dedicated []*grownPool          // live dedicated pools
	nextArea  int                   // next unused dedicated area
	liveBytes int64                 // payload bytes of live grown and dedicated segments
	dedBytes  int64                 // payload bytes of live dedicated segments

	retiredMu sync.Mutex          // guards retired, read by RetiredPool from any goroutine
	retired   map[uint16]struct{} // ids of retired dedicated pools
}

type grownPool struct {
	area      poolArea
	pool      *mempool.Pool
	seg       *segment.Mapped
	ro        *os.File
	dedicated bool
	retired   bool
}

// growthRequest answers GrowPool and GetSegments; it reports whether env
// was one of them.
func (s *Server) growthRequest(c *serverConn, env wire.Envelope) bool {
	var (
		gps []*grownPool
		ref parallax.ChunkRef
		ro  bool
		err error
	)
	switch m := env.Msg.(type) {
	case *wire.GrowPool:
		gps, ref, err = s.grow(c, m)
	case *wire.GetSegments:
		ro = m.ReadOnly
		gps, err = s.lookupGrown(c, m)
	default:
		return false
	}
	if err != nil {
		s.replyError(c, env.ReqID, err)
		return true
	}
	r := &wire.PoolGranted{Ref: uint64(ref)}
	files := make([]*os.File, 0, len(gps))
	for _, g := range gps {
		r.Pools = append(r.Pools, g.desc())
		r.Segments = append(r.Segments, g.segDesc(ro))
		if ro {
			files = append(files, g.ro)
		} else {
			files = append(files, g.seg.File())
		}
	}
	s.send(c, env.ReqID, r, files)
	return true
}

func (g *grownPool) desc() wire.PoolDesc {
	c := g.pool.Class()
	return wire.PoolDesc{ID: g.area.ID, ChunkSize: c.ChunkSize, Count: c.Count,
		MgmtOffset: uint64(g.area.Offset), MgmtSize: uint64(g.area.Size), SegmentID: uint32(g.area.ID) + 1}
}

func (g *grownPool) segDesc(readOnly bool) wire.SegmentDesc {
	kind := wire.KindMemfd
	if g.seg.PageSize() > os.Getpagesize() {
		kind = wire.KindHugetlb
	}
	return wire.SegmentDesc{ID: uint32(g.area.ID) + 1, Role: wire.RolePayload, Kind: kind, Size: uint64(g.seg.Len()),
		PageSize: uint32(g.seg.PageSize()), ReadOnly: readOnly, PoolID: g.area.ID}
}

// lookupGrown serves GetSegments.
func (s *Server) lookupGrown(c *serverConn, m *wire.GetSegments) ([]*grownPool, error) {
	if !m.ReadOnly && !c.sentRW {
		return nil, fmt.Errorf("get segments of pool %d read-write: only a client with a publisher may write payload: %w", m.PoolID, parallax.ErrPermissionDenied)
	}
	g := s.growth.byID[m.PoolID]
	if g == nil || g.retired {
		return nil, fmt.Errorf("get segments of pool %d: no such grown or dedicated pool (base pools come with the first endpoint; dedicated ones retire when freed): %w", m.PoolID, wire.ErrNotFound)
	}
	return []*grownPool{g}, nil
}

// grow serves GrowPool.
func (s *Server) grow(c *serverConn, m *wire.GrowPool) ([]*grownPool, parallax.ChunkRef, error) {
	if !c.sentRW {
		return nil, 0, fmt.Errorf("grow pool for %d bytes: only a client with a publisher may loan: %w", m.Size, parallax.ErrPermissionDenied)
	}
	if !s.cfg.Growth.Enabled {
		return nil, 0, fmt.Errorf("grow pool for %d bytes: growth is disabled (config [growth] enabled = false): %w", m.Size, parallax.ErrNotSupported)
	}
	class := -1 // smallest configured chunk size that fits
	for i, pa := range s.layout.Pools {
		if uint64(pa.Class.ChunkSize) >= m.Size && (class < 0 || pa.Class.ChunkSize < s.layout.Pools[class].Class.ChunkSize) {
			class = i
		}
	}
	if class < 0 {
		g, ref, err := s.newDedicated(c, m.Size)
		if err != nil {
			return nil, 0, err
		}
		return []*grownPool{g}, ref, nil
	}
	if s.growth.perPool == nil {
		s.growth.perPool = make([]int, len(s.layout.Pools))
	}
	size := s.layout.Pools[class].Class.ChunkSize
	known := make(map[uint16]bool, len(m.Known))
	for _, id := range m.Known {
		known[id] = true
	}
	var missing []*grownPool
	for _, g := range s.growth.byID {
		if !g.dedicated && g.area.Class.ChunkSize == size && !known[g.area.ID] {
			missing = append(missing, g)
		}
	}
	if len(missing) > 0 {
		return missing, 0, nil
	}
	for i, pa := range s.layout.Pools {
		if pa.Class.ChunkSize != size || s.growth.perPool[i] >= s.layout.GrowPer {
			continue
		}
		bytes := int64(pa.Class.PayloadSize())
		if s.growth.liveBytes+bytes > int64(s.cfg.Growth.MaxTotalBytes) {
			break
		}
		area := s.layout.Grown[i*s.layout.GrowPer+s.growth.perPool[i]]
		g, err := s.newGrown(area, s.cfg.Pools[i].Hugepages, false)
		if err != nil {
			return nil, 0, err
		}
		s.growth.perPool[i]++
		s.log.Info("pool grown", "pool", area.ID, "chunk_size", s.cfg.Pools[i].ChunkSize.String(), "count", pa.Class.Count,
			"growth", s.growth.perPool[i], "growth_bytes", s.growth.liveBytes)
		return []*grownPool{g}, 0, nil
	}
	return nil, 0, fmt.Errorf("grow the %d-byte class: limits reached (growth.max_segments_per_pool %d, growth.max_total_bytes %v, %d bytes grown): %w",
		size, s.layout.GrowPer, s.cfg.Growth.MaxTotalBytes, s.growth.liveBytes, parallax.ErrPoolExhausted)
}

// newDedicated creates a dedicated pool for one loan of n bytes and loans
// its chunk to c's client.
func (s *Server) newDedicated(c *serverConn, n uint64) (*grownPool, parallax.ChunkRef, error) {
	size := uint64(alignUp(int(min(n, 1<<33)), mempool.ChunkAlign))
	g := &s.growth
	switch {
	case size > 1<<32-mempool.ChunkAlign:
		return nil, 0, fmt.Errorf("dedicated segment for %d bytes: a chunk holds at most 4 GiB: %w", n, parallax.ErrPoolExhausted)
	case g.dedBytes+int64(size) > int64(s.cfg.Growth.MaxDedicatedBytes) || g.liveBytes+int64(size) > int64(s.cfg.Growth.MaxTotalBytes):
		return nil, 0, fmt.Errorf("dedicated segment for %d bytes: limits reached (growth.max_dedicated_bytes %v with %d in use, growth.max_total_bytes %v with %d in use): %w",
			n, s.cfg.Growth.MaxDedicatedBytes, g.dedBytes, s.cfg.Growth.MaxTotalBytes, g.liveBytes, parallax.ErrPoolExhausted)
	case g.nextArea >= len(s.layout.Dedicated):
		return nil, 0, fmt.Errorf("dedicated segment for %d bytes: all %d dedicated pool areas of this router run are used: %w", n, len(s.layout.Dedicated), parallax.ErrPoolExhausted)
	}
	id := uint16(len(s.layout.Pools) + len(s.layout.Grown) + g.nextArea)
	area := poolArea{ID: id, Class: mempool.Class{ChunkSize: uint32(size), Count: 1}, Offset: s.layout.Dedicated[g.nextArea], Size: s.layout.DedicatedSize}
	gp, err := s.newGrown(area, HugepagesAuto, true)
	if err != nil {
		return nil, 0, err
	}
	g.nextArea++
	ref, err := gp.pool.Loan(uint16(c.client))
	if err != nil { // cannot happen: nobody else knows the pool yet
		return nil, 0, fmt.Errorf("loan dedicated pool %d: %w", id, err)
	}
	s.log.Debug("dedicated segment", "pool", id, "bytes", size, "client", c.client)
	return gp, ref, nil
}

// newGrown formats area, creates its payload segment and adds the pool to
// the router's set.
func (s *Server) newGrown(area poolArea, hp HugepageMode, dedicated bool) (_ *grownPool, err error) {
	size := area.Class.PayloadSize()
	name := fmt.Sprintf("%s-pool%d-grown", s.cfg.Domain, area.ID)
	if dedicated {
		name = fmt.Sprintf("%s-pool%d-dedicated", s.cfg.Domain, area.ID)
	}
	var seg *segment.Mapped
	switch {
	case hp == HugepagesNever || (dedicated && size < 2<<20):
		seg, err = segment.NewMemfd(name, size, segment.MemfdOptions{})
	case hp == Hugepages1G:
		seg, err = segment.NewHugepage(name, size, segment.HugepageOptions{Mode: hugepages.Huge1G, Require: true})
	case hp == Hugepages2M:
		seg, err = segment.NewHugepage(name, size, segment.HugepageOptions{Mode: hugepages.Huge2M, Require: true})
	default:
		seg, err = segment.NewHugepage(name, size, segment.HugepageOptions{Mode: hugepages.Auto})
	}
	if err != nil {
		return nil, fmt.Errorf("create payload segment of pool %d (%v): %w", area.ID, area.Class, err)
	}
	g := &grownPool{area: area, seg: seg, dedicated: dedicated}
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	if g.ro, err = seg.ReadOnlyFile(); err != nil {
		return nil, fmt.Errorf("reopen payload segment of pool %d read-only: %w", area.ID, err)
	}
	if g.pool, err = mempool.Format(s.mgmt.Bytes()[area.Offset:area.Offset+area.Size], area.ID, area.Class); err != nil {
		return nil, fmt.Errorf("format pool %d: %w", area.ID, err)
	}
	if err = g.pool.SetPayload(seg.Bytes()); err != nil {
		return nil, fmt.Errorf("attach payload of pool %d: %w", area.ID, err)
	}
	if err = s.pools.Add(g.pool); err != nil {
		return nil, err
	}
	if s.growth.byID == nil {
		s.growth.byID = make(map[uint16]*grownPool)
	}
	s.growth.byID[area.ID] = g
	s.growth.liveBytes += int64(size)
	if dedicated {
		s.growth.dedBytes += int64(size)
		s.growth.dedicated = append(s.growth.dedicated, g)
	}
	return g, nil
}

func (g *grownPool) close() error {
	var errs []error
	if g.ro != nil {
		errs = append(errs, g.ro.Close())
		g.ro = nil
	}
	if g.seg != nil {
		errs = append(errs, g.seg.Close())
		g.seg = nil
	}
	return errors.Join(errs...)
}

// growthTick retires the dedicated pools whose chunk is free, and keeps the
// tombstones of retired ones in place (the idle sweep frees every held
// chunk, tombstones included).
func (s *Server) growthTick() {
	g := &s.growth
	var retired []uint16
	live := g.dedicated[:0]
	for _, d := range g.dedicated {
		if st, err := d.pool.Slot(0); err != nil || st.RefCount != 0 {
			live = append(live, d) // held: checked without counting a failed loan
			continue
		}
		if _, err := d.pool.Loan(tombstoneOwner); err != nil {
			live = append(live, d) // still held (or loaned again)
			continue
		}
		d.retired = true
		g.retiredMu.Lock()
		if g.retired == nil {
			g.retired = make(map[uint16]struct{})
		}
		g.retired[d.area.ID] = struct{}{}
		g.retiredMu.Unlock()
		size := int64(d.area.Class.ChunkSize)
		g.liveBytes -= size
		g.dedBytes -= size
		// The router never reads payload bytes (reclaim and sweep touch
		// only management words), so its mapping can go now.
		if err := d.close(); err != nil {
			s.log.Warn("close retired dedicated segment", "pool", d.area.ID, "err", err)
		}
		s.log.Debug("dedicated segment retired", "pool", d.area.ID, "bytes", size)
		retired = append(retired, d.area.ID)
	}
	clear(g.dedicated[len(live):])
	g.dedicated = live
	// Tell the clients, so that they unmap the segment too: its memory
	// returns to the system only when the last mapping goes.
	for _, id := range retired {
		for _, c := range s.conns {
			if c.hello {
				s.push(c, &wire.PoolRetired{PoolID: id})
			}
		}
	}
	if s.needSweep || len(g.byID) == 0 {
		return
	}
	for _, d := range g.byID {
		if st, err := d.pool.Slot(0); d.retired && err == nil && st.RefCount == 0 {
			_, _ = d.pool.Loan(tombstoneOwner)
		}
	}
}

// RetiredPool reports whether pool id is a retired dedicated pool: its
// segment is gone and its one chunk is the router's tombstone (in use for
// ever, so that no client loans it again), not a leak. Audits of
// [Server.Pools] skip such pools. It is safe to call from any goroutine.
func (s *Server) RetiredPool(id uint16) bool {
	g := &s.growth
	g.retiredMu.Lock()
	defer g.retiredMu.Unlock()
	_, ok := g.retired[id]
	return ok
}

// closeGrowth releases the grown and dedicated segments (Close).
func (s *Server) closeGrowth() error {
	var errs []error
	for _, g := range s.growth.byID {
		errs = append(errs, g.close())
	}
	return errors.Join(errs...)
}
