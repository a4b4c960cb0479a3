package clientrt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/segment"
)

// Pools added at run time: grown size classes and dedicated segments for
// oversized loans (see roudi/server_growth.go). A publisher's runtime asks
// for them when a loan fails ([Runtime.Grow]); any runtime maps a pool it
// has not seen when it first meets a reference into it ([Runtime.MapPool]).
// The mappings live until the runtime closes, except those of a dedicated
// pool the router retires (wire.PoolRetired): nobody holds its chunk any
// more, so the runtime forgets the pool and unmaps its segment, and the
// memory returns to the system once every process has done so.

// growState is a runtime's bookkeeping of growth requests.
type growState struct {
	disabled   atomic.Bool  // the router said growth is disabled: never ask again
	retryAfter atomic.Int64 // unix ns before which a refused growth is not asked again
	refused    map[uint16]bool
	// Guarded by Runtime.mu: the payload mappings of added pools, by pool
	// id, and how many pools were retired.
	mapped  map[uint16][]*segment.Mapped
	retired int
}

// growBackoff is how long a runtime waits after a refused growth before it
// asks again, so a publisher spinning on an exhausted pool does not flood
// the router.
const growBackoff = 20 * time.Millisecond

// growTimeout bounds one growth or lookup request.
const growTimeout = 2 * time.Second

// Grow is the slow path of a loan of n bytes that set (this runtime's
// read-write set) refused with cause: it asks the router for more room, maps
// what it grants and loans again. A dedicated segment comes with its chunk
// already loaned to this process; the caller records the returned ref as
// held either way. When the router has nothing to give (growth disabled,
// limits reached) the error wraps cause's sentinel (parallax.ErrPoolExhausted
// or mempool.ErrTooLarge) or the router's.
func (rt *Runtime) Grow(set *mempool.Set, n int, owner uint16, cause error) (parallax.ChunkRef, error) {
	if n <= 0 || rt.grow.disabled.Load() || time.Now().UnixNano() < rt.grow.retryAfter.Load() {
		return parallax.NilRef, cause
	}
	if !errors.Is(cause, parallax.ErrPoolExhausted) && !errors.Is(cause, mempool.ErrTooLarge) {
		return parallax.NilRef, cause
	}
	req := &wire.GrowPool{Size: uint64(n)}
	var class uint32                // the smallest fitting class (dedicated pools have one chunk)
	for _, p := range set.Pools() { // ascending chunk size
		if c := p.Class(); c.Count > 1 && int64(c.ChunkSize) >= int64(n) && (class == 0 || c.ChunkSize == class) {
			class = c.ChunkSize
			req.Known = append(req.Known, p.ID())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), growTimeout)
	defer cancel()
	reply, files, err := rt.client.Request(ctx, req, nil)
	if err != nil {
		if errors.Is(err, parallax.ErrNotSupported) {
			rt.grow.disabled.Store(true)
			return parallax.NilRef, cause
		}
		rt.grow.retryAfter.Store(time.Now().Add(growBackoff).UnixNano())
		return parallax.NilRef, fmt.Errorf("grow pool for a %d-byte loan: %w", n, err)
	}
	pg, ok := reply.(*wire.PoolGranted)
	if !ok {
		closeAll(files)
		return parallax.NilRef, fmt.Errorf("grow pool: unexpected reply %T: %w", reply, parallax.ErrProtocol)
	}
	if err := rt.addPools(set, pg, files, false); err != nil {
		return parallax.NilRef, fmt.Errorf("grow pool for a %d-byte loan: %w", n, err)
	}
	if pg.Ref != 0 {
		ref := parallax.ChunkRef(pg.Ref)
		if len(pg.Pools) != 1 || ref.Pool() != uint32(pg.Pools[0].ID) || set.Validate(ref) != nil {
			return parallax.NilRef, fmt.Errorf("grow pool: dedicated chunk %v is not in the granted pool: %w", ref, parallax.ErrProtocol)
		}
		return ref, nil
	}
	return set.Loan(n, owner)
}

// MapPool makes sure set (this runtime's read-only set when readOnly, else
// its read-write one) holds the pool ref names, asking the router for it
// when it is a pool added at run time. It does nothing for a known pool and
// returns an error for a pool the router does not have (any later ref into
// it is refused without asking again).
func (rt *Runtime) MapPool(set *mempool.Set, ref parallax.ChunkRef, readOnly bool) error {
	id := uint16(ref.Pool())
	if set.Pool(id) != nil || int(id) < len(rt.welcome.Pools) {
		return nil // known, or a base pool (a bad ref the caller's validation reports)
	}
	rt.mu.Lock()
	refused := rt.grow.refused[id]
	rt.mu.Unlock()
	if refused {
		return fmt.Errorf("map pool %d: refused by the router before: %w", id, parallax.ErrInvalidRef)
	}
	ctx, cancel := context.WithTimeout(context.Background(), growTimeout)
	defer cancel()
	reply, files, err := rt.client.Request(ctx, &wire.GetSegments{PoolID: id, ReadOnly: readOnly}, nil)
	if err != nil {
		if errors.Is(err, wire.ErrNotFound) {
			rt.mu.Lock()
			if rt.grow.refused == nil {
				rt.grow.refused = make(map[uint16]bool)
			}
			rt.grow.refused[id] = true
			rt.mu.Unlock()
		}
		return fmt.Errorf("map pool %d: %w", id, err)
	}
	pg, ok := reply.(*wire.PoolGranted)
	if !ok {
		closeAll(files)
		return fmt.Errorf("map pool %d: unexpected reply %T: %w", id, reply, parallax.ErrProtocol)
	}
	return rt.addPools(set, pg, files, readOnly)
}

// addPools maps the payload segments of a PoolGranted, attaches the pools
// to their management areas and adds the ones set lacks. It takes ownership
// of files.
func (rt *Runtime) addPools(set *mempool.Set, pg *wire.PoolGranted, files []*os.File, readOnly bool) error {
	if len(files) != len(pg.Segments) || len(pg.Pools) != len(pg.Segments) {
		closeAll(files)
		return fmt.Errorf("router granted %d segments with %d fds for %d pools: %w", len(pg.Segments), len(files), len(pg.Pools), parallax.ErrProtocol)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for i, d := range pg.Segments {
		pd := pg.Pools[i]
		if set.Pool(pd.ID) != nil { // granted concurrently to another endpoint of this process
			files[i].Close()
			continue
		}
		if d.PoolID != pd.ID || d.Role != wire.RolePayload || int(pd.ID) < len(rt.welcome.Pools) {
			closeAll(files[i:])
			return fmt.Errorf("segment %d is not the payload of added pool %d: %w", d.ID, pd.ID, parallax.ErrProtocol)
		}
		seg, err := segment.Open(files[i], segment.OpenOptions{ExpectedSize: int64(d.Size), ReadOnly: readOnly, RequireSeals: true})
		if err != nil {
			closeAll(files[i:])
			return fmt.Errorf("map payload segment of pool %d: %w", pd.ID, err)
		}
		p, err := rt.attachPool(pd, seg)
		if err == nil {
			err = set.Add(p)
		}
		if err != nil {
			seg.Close()
			closeAll(files[i+1:])
			return err
		}
		rt.segs = append(rt.segs, seg)
		if rt.grow.mapped == nil {
			rt.grow.mapped = make(map[uint16][]*segment.Mapped)
		}
		rt.grow.mapped[pd.ID] = append(rt.grow.mapped[pd.ID], seg)
	}
	return nil
}

// retireGrace is how long a retired pool's payload stays mapped after the
// pool left the sets: a goroutine that looked the pool up just before may
// still be reading (only a stale or forged reference can lead there, since
// nobody holds the chunk; it must not fault).
const retireGrace = time.Second

// retirePool forgets dedicated pool id, which the router retired, and
// unmaps its payload segment after retireGrace.
func (rt *Runtime) retirePool(id uint16) {
	if int(id) < len(rt.welcome.Pools) {
		return // base pools are never retired; a confused router is ignored
	}
	rt.mu.Lock()
	for _, set := range []*mempool.Set{rt.rw, rt.ro} {
		if set != nil {
			set.Remove(id)
		}
	}
	segs := rt.grow.mapped[id]
	delete(rt.grow.mapped, id)
	rt.segs = slices.DeleteFunc(rt.segs, func(s *segment.Mapped) bool { return slices.Contains(segs, s) })
	rt.grow.retired++
	rt.mu.Unlock()
	if len(segs) > 0 {
		time.AfterFunc(retireGrace, func() {
			for _, s := range segs {
				s.Close()
			}
		})
	}
}

// RetiredPools returns how many dedicated pools this runtime forgot because
// the router retired them.
func (rt *Runtime) RetiredPools() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.grow.retired
}

func (rt *Runtime) attachPool(pd wire.PoolDesc, seg *segment.Mapped) (*mempool.Pool, error) {
	mg, err := rt.Region(pd.MgmtOffset, pd.MgmtSize)
	if err != nil {
		return nil, err
	}
	p, err := mempool.Attach(mg, seg.Bytes())
	if err != nil {
		return nil, fmt.Errorf("attach pool %d: %w", pd.ID, err)
	}
	if p.ID() != pd.ID || p.Class() != (mempool.Class{ChunkSize: pd.ChunkSize, Count: pd.Count}) {
		return nil, fmt.Errorf("pool at %d is %d (%v), the router described %d: %w", pd.MgmtOffset, p.ID(), p.Class(), pd.ID, parallax.ErrProtocol)
	}
	return p, nil
}
