package roudi

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/hugepages"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
	"github.com/parallax-ipc/parallax/segment"
)

// Run-time pool growth and dedicated segments: the memory work. The
// decisions (may this client grow, which class and area, the limits
// growth.max_segments_per_pool, max_total_bytes and max_dedicated_bytes,
// who may map which pool, when a dedicated pool retires) are the router
// core's (roudi/internal/core/growth.go); the server performs its actions:
//
//   - core.CreatePool: format the management area, create the payload
//     segment (and its read-only fd), loan a dedicated pool's chunk to the
//     requesting client, add the pool to the set; then step
//     core.PoolCreated with the outcome (on failure nothing is left, so the
//     core's byte accounting stays what exists).
//   - core.PoolsGranted: send the pools' descriptions and segment fds.
//   - On each tick, step core.DedicatedFree with the live dedicated pools
//     whose chunk is free (a memory read).
//   - core.RetirePool: loan the chunk to the router (a tombstone no client
//     can loan again, and that makes every old reference stale; it fails
//     when a loan took the chunk since), close the payload segment and
//     read-only fd, and refuse nothing (the core does); then step
//     core.PoolRetired.
//   - core.TellPoolRetired: push wire.PoolRetired, so the client forgets
//     the pool and unmaps its segment and the memory goes back to the
//     system.
//
// Reports (PoolCreated, DedicatedFree, PoolRetired) are stepped after the
// actions of the step that led to them (growthReports).

// tombstoneOwner is the loaner id the router uses for retired dedicated pools.
const tombstoneOwner = 0

// growthState is the server's record of grown and dedicated pools: memory
// objects only. It is owned by the Serve goroutine (and by New/Close).
type growthState struct {
	byID    map[uint16]*grownPool // every created grown or dedicated pool, retired included
	live    []*grownPool          // live dedicated pools, checked on each tick
	reports []core.Event          // outcomes to step after the current step's actions

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

// corePools describes the pools and the growth reserve to the core.
func (l *mgmtLayout) corePools(cfg *Config) core.PoolLayout {
	p := core.PoolLayout{ChunkAlign: mempool.ChunkAlign}
	for i, pa := range l.Pools {
		p.Base = append(p.Base, core.PoolClass{ChunkSize: pa.Class.ChunkSize, Count: pa.Class.Count, Pages: pageMode(cfg.Pools[i].Hugepages)})
	}
	for _, ga := range l.Grown {
		p.Grown = append(p.Grown, core.PoolArea{ID: ga.ID, Mgmt: core.Region{Offset: uint64(ga.Offset), Size: uint64(ga.Size)}})
	}
	for _, off := range l.Dedicated {
		p.Dedicated = append(p.Dedicated, core.Region{Offset: uint64(off), Size: uint64(l.DedicatedSize)})
	}
	return p
}

func pageMode(h HugepageMode) core.PageMode {
	switch h {
	case HugepagesNever:
		return core.PagesNever
	case Hugepages2M:
		return core.Pages2M
	case Hugepages1G:
		return core.Pages1G
	}
	return core.PagesAuto
}

// grantPools answers GrowPool and GetSegments as the core decided.
func (s *Server) grantPools(c *serverConn, reqID uint32, pg core.PoolsGranted) {
	r := &wire.PoolGranted{Ref: pg.Ref}
	files := make([]*os.File, 0, len(pg.Pools))
	for _, id := range pg.Pools {
		g := s.growth.byID[id]
		if g == nil || g.seg == nil {
			s.log.Error("core granted a pool the server does not have", "pool", id)
			s.replyError(c, reqID, fmt.Errorf("grant pool %d: the router has no segment for it: %w", id, wire.ErrNotFound))
			return
		}
		r.Pools = append(r.Pools, g.desc())
		r.Segments = append(r.Segments, g.segDesc(pg.ReadOnly))
		if pg.ReadOnly {
			files = append(files, g.ro)
		} else {
			files = append(files, g.seg.File())
		}
	}
	s.send(c, reqID, r, files)
}

// notFoundErr carries the core's ErrNotFound as the protocol's.
type notFoundErr struct{ error }

func (e notFoundErr) Is(target error) bool { return target == wire.ErrNotFound }

// wireError maps the core's own sentinels onto the protocol's.
func wireError(err error) error {
	if errors.Is(err, core.ErrNotFound) {
		return notFoundErr{err}
	}
	return err
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

// createPool performs a core.CreatePool and queues its report.
func (s *Server) createPool(a core.CreatePool) {
	area := poolArea{ID: a.Pool, Class: mempool.Class{ChunkSize: a.ChunkSize, Count: a.Count}, Offset: int(a.Mgmt.Offset), Size: int(a.Mgmt.Size)}
	ev := core.PoolCreated{Pool: a.Pool}
	if uint64(area.Class.PayloadSize()) != a.Bytes {
		ev.Err = fmt.Errorf("create pool %d: %d bytes asked for a %v payload: %w", a.Pool, a.Bytes, area.Class, parallax.ErrProtocol)
	} else {
		var ref parallax.ChunkRef
		ref, ev.Err = s.newGrown(area, a.Pages, a.Dedicated, a.LoanTo)
		ev.Ref = uint64(ref)
	}
	s.growth.reports = append(s.growth.reports, ev)
}

// newGrown formats area, creates its payload segment, loans its chunk to
// loanTo when that is not 0, and adds the pool to the router's set. On
// failure nothing of the pool is left.
func (s *Server) newGrown(area poolArea, pages core.PageMode, dedicated bool, loanTo core.ClientID) (ref parallax.ChunkRef, err error) {
	size := area.Class.PayloadSize()
	name := fmt.Sprintf("%s-pool%d-grown", s.cfg.Domain, area.ID)
	if dedicated {
		name = fmt.Sprintf("%s-pool%d-dedicated", s.cfg.Domain, area.ID)
	}
	if area.Offset < 0 || area.Size <= 0 || area.Offset+area.Size > s.mgmt.Len() {
		return 0, fmt.Errorf("create pool %d: management area @%d+%d outside the segment: %w", area.ID, area.Offset, area.Size, parallax.ErrProtocol)
	}
	var seg *segment.Mapped
	switch pages {
	case core.PagesNever:
		seg, err = segment.NewMemfd(name, size, segment.MemfdOptions{})
	case core.Pages1G:
		seg, err = segment.NewHugepage(name, size, segment.HugepageOptions{Mode: hugepages.Huge1G, Require: true})
	case core.Pages2M:
		seg, err = segment.NewHugepage(name, size, segment.HugepageOptions{Mode: hugepages.Huge2M, Require: true})
	default:
		seg, err = segment.NewHugepage(name, size, segment.HugepageOptions{Mode: hugepages.Auto})
	}
	if err != nil {
		return 0, fmt.Errorf("create payload segment of pool %d (%v): %w", area.ID, area.Class, err)
	}
	g := &grownPool{area: area, seg: seg, dedicated: dedicated}
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	if g.ro, err = seg.ReadOnlyFile(); err != nil {
		return 0, fmt.Errorf("reopen payload segment of pool %d read-only: %w", area.ID, err)
	}
	if g.pool, err = mempool.Format(s.mgmt.Bytes()[area.Offset:area.Offset+area.Size], area.ID, area.Class); err != nil {
		return 0, fmt.Errorf("format pool %d: %w", area.ID, err)
	}
	if err = g.pool.SetPayload(seg.Bytes()); err != nil {
		return 0, fmt.Errorf("attach payload of pool %d: %w", area.ID, err)
	}
	if loanTo != 0 {
		// Before anyone else knows the pool, so no other loan takes it.
		if ref, err = g.pool.Loan(uint16(loanTo)); err != nil {
			return 0, fmt.Errorf("loan dedicated pool %d: %w", area.ID, err)
		}
	}
	if err = s.pools.Add(g.pool); err != nil {
		return 0, err
	}
	if s.growth.byID == nil {
		s.growth.byID = make(map[uint16]*grownPool)
	}
	s.growth.byID[area.ID] = g
	if dedicated {
		s.growth.live = append(s.growth.live, g)
	}
	return ref, nil
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

// reportFreeDedicated queues core.DedicatedFree with the live dedicated
// pools whose chunk is free now (on each tick). It allocates only when
// there are some.
func (s *Server) reportFreeDedicated() {
	var free []uint16
	for _, d := range s.growth.live {
		if st, err := d.pool.Slot(0); err == nil && st.RefCount == 0 {
			free = append(free, d.area.ID)
		}
	}
	if len(free) > 0 {
		s.growth.reports = append(s.growth.reports, core.DedicatedFree{Pools: free})
	}
}

// retirePool performs a core.RetirePool and queues its report.
func (s *Server) retirePool(a core.RetirePool) {
	g := &s.growth
	i := slices.IndexFunc(g.live, func(d *grownPool) bool { return d.area.ID == a.Pool })
	if i < 0 {
		s.log.Error("core retires a pool that is not a live dedicated one", "pool", a.Pool)
		g.reports = append(g.reports, core.PoolRetired{Pool: a.Pool, Held: true})
		return
	}
	d := g.live[i]
	if st, err := d.pool.Slot(0); err != nil || st.RefCount != 0 {
		g.reports = append(g.reports, core.PoolRetired{Pool: a.Pool, Held: true}) // checked without counting a failed loan
		return
	}
	if _, err := d.pool.Loan(tombstoneOwner); err != nil {
		g.reports = append(g.reports, core.PoolRetired{Pool: a.Pool, Held: true}) // loaned again
		return
	}
	g.live = slices.Delete(g.live, i, i+1)
	d.retired = true
	g.retiredMu.Lock()
	if g.retired == nil {
		g.retired = make(map[uint16]struct{})
	}
	g.retired[d.area.ID] = struct{}{}
	g.retiredMu.Unlock()
	// The router never reads payload bytes (reclaim and sweep touch only
	// management words), so its mapping can go now.
	if err := d.close(); err != nil {
		s.log.Warn("close retired dedicated segment", "pool", d.area.ID, "err", err)
	}
	g.reports = append(g.reports, core.PoolRetired{Pool: a.Pool})
}

// growthReports steps the reports queued by the actions just performed.
func (s *Server) growthReports() {
	for len(s.growth.reports) > 0 {
		ev := s.growth.reports[0]
		n := copy(s.growth.reports, s.growth.reports[1:])
		s.growth.reports[n] = nil
		s.growth.reports = s.growth.reports[:n]
		s.step(ev)
	}
}

// keepTombstones puts back the tombstones of retired dedicated pools that
// the idle sweep freed (it frees every held chunk, tombstones included).
func (s *Server) keepTombstones() {
	for _, d := range s.growth.byID {
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
