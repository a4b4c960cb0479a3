package roudi

import (
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// The management segment of a domain, created by the router and mapped
// read-write by every client:
//
//	offset 0       +--------------------------------------------+
//	               | header (4 KiB): magic, version, size,      |
//	               | pool count, arena offset/size, router pid  |
//	4 KiB aligned  +--------------------------------------------+
//	               | pool 0 management area (mempool.MgmtSize)  |
//	               | pool 1 management area                     |
//	               | ...                                        |
//	4 KiB aligned  +--------------------------------------------+
//	               | growth reserve (only with growth.enabled): |
//	               | max_segments_per_pool areas per configured |
//	               | pool, formatted when the class grows (pool |
//	               | ids P..P+P*G-1: pools[i]'s j-th growth is  |
//	               | P+i*G+j), then dedicatedAreas single-chunk |
//	               | areas for loans larger than every class    |
//	               | (fresh pool ids from P+P*G up, never       |
//	               | reused while the router runs)              |
//	4 KiB aligned  +--------------------------------------------+
//	               | hold tables, one per client id (mempool.   |
//	               | HoldTable: what each process holds)        |
//	4 KiB aligned  +--------------------------------------------+
//	               | arena: rings and notifiers, allocated by   |
//	               | the core (Router) in 128-byte units        |
//	               +--------------------------------------------+
//
// The header format lives in internal/wire (MgmtHeader): it is part of the
// protocol ABI that clients check.
//
// Grown and dedicated pools keep their bitmap and chunk headers in this
// segment too, so a client that already maps it read-write needs only the new
// payload segment's fd (server_growth.go); the reserve costs
// MgmtSize(class) per possible growth, and about 640 bytes per dedicated
// area.
const mgmtAlign = 4096

// dedicatedAreas is the number of single-chunk management areas reserved for
// dedicated pools (loans larger than every size class). An area is used once
// per router run: clients cannot forget a pool they attached, so its
// management bytes are never re-formatted for another pool.
const dedicatedAreas = 256

// mgmtLayout places the pools' management areas and the arena.
type mgmtLayout struct {
	Size        int
	Pools       []poolArea
	HoldsOff    int // hold tables, one per client id 1..HoldsCount
	HoldsStride int
	HoldsCount  int
	HoldsCap    int // entries per table
	ArenaOff    int
	ArenaSize   int
	// Growth reserve: Grown[i*GrowPer+j] is pools[i]'s j-th growth
	// (formatted on demand); Dedicated the single-chunk areas, each
	// DedicatedSize bytes.
	GrowPer       int
	Grown         []poolArea
	Dedicated     []int
	DedicatedSize int
}

type poolArea struct {
	ID     uint16
	Class  mempool.Class
	Offset int
	Size   int
}

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }

// arenaSize is the room for rings and notifiers the config's limits call
// for: every connection a ring of the default capacity, every subscriber a
// notifier, bounded to [1 MiB, 256 MiB].
func arenaSize(cfg *Config) int {
	n := cfg.Limits.MaxConnections*ringbuf.Size(cfg.Rings.DefaultCapacity) + cfg.Limits.MaxSubscribers*ringbuf.NotifierSize
	n = max(n, 1<<20)
	n = min(n, 256<<20)
	return alignUp(n, mgmtAlign)
}

func computeLayout(cfg *Config) (mgmtLayout, error) {
	var l mgmtLayout
	off := wire.MgmtHeaderSize
	for i, p := range cfg.Pools {
		if i >= parallax.MaxPools {
			return l, fmt.Errorf("pools: %d pools, at most %d: %w", len(cfg.Pools), parallax.MaxPools, parallax.ErrLimit)
		}
		c := mempool.Class{ChunkSize: uint32(p.ChunkSize), Count: uint32(p.Count)}
		sz := alignUp(mempool.MgmtSize(c), mgmtAlign)
		l.Pools = append(l.Pools, poolArea{ID: uint16(i), Class: c, Offset: off, Size: sz})
		off += sz
	}
	if err := l.reserveGrowth(cfg, &off); err != nil {
		return l, err
	}
	l.HoldsOff = off
	l.HoldsCap = cfg.Limits.MaxHolds
	l.HoldsStride = alignUp(mempool.HoldTableSize(l.HoldsCap), 128)
	l.HoldsCount = cfg.Limits.MaxClients
	off = alignUp(off+l.HoldsStride*l.HoldsCount, mgmtAlign)
	l.ArenaOff = off
	l.ArenaSize = arenaSize(cfg)
	l.Size = off + l.ArenaSize
	return l, nil
}

// reserveGrowth places the growth reserve at *off (nothing when growth is
// disabled) and advances *off past it.
func (l *mgmtLayout) reserveGrowth(cfg *Config, off *int) error {
	if !cfg.Growth.Enabled {
		return nil
	}
	l.GrowPer = cfg.Growth.MaxSegmentsPerPool
	if n := len(l.Pools) * (1 + l.GrowPer); n+dedicatedAreas > parallax.MaxPools {
		return fmt.Errorf("growth: %d pools x (1 + %d segments) leave too few of %d pool ids: %w", len(l.Pools), l.GrowPer, parallax.MaxPools, parallax.ErrLimit)
	}
	id := uint16(len(l.Pools))
	for _, pa := range l.Pools {
		for range l.GrowPer {
			l.Grown = append(l.Grown, poolArea{ID: id, Class: pa.Class, Offset: *off, Size: pa.Size})
			id++
			*off += pa.Size
		}
	}
	l.DedicatedSize = alignUp(mempool.MgmtSize(mempool.Class{ChunkSize: mempool.ChunkAlign, Count: 1}), mempool.RegionAlign)
	for range dedicatedAreas {
		l.Dedicated = append(l.Dedicated, *off)
		*off += l.DedicatedSize
	}
	*off = alignUp(*off, mgmtAlign)
	return nil
}
