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
//	               | hold tables, one per client id (mempool.   |
//	               | HoldTable: what each process holds)        |
//	4 KiB aligned  +--------------------------------------------+
//	               | arena: rings and notifiers, allocated by   |
//	               | the core (Router) in 128-byte units        |
//	               +--------------------------------------------+
//
// The header format lives in internal/wire (MgmtHeader): it is part of the
// protocol ABI that clients check.
const mgmtAlign = 4096

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
