package core

import (
	"errors"
	"fmt"
)

// PoolLayout describes the configured pools and the growth reserve of the
// management segment (roudi's layout.go), for run-time growth (growth.go).
// The zero value means no growth reserve.
type PoolLayout struct {
	// Base are the configured pools, by pool id (0, 1, ...).
	Base []PoolClass
	// Grown are the reserved management areas of grown pools:
	// Grown[i*Growth.MaxSegmentsPerPool+j] is Base[i]'s j-th growth.
	Grown []PoolArea
	// Dedicated are the single-chunk management areas of dedicated pools.
	// The k-th has pool id len(Base)+len(Grown)+k.
	Dedicated []Region
	// ChunkAlign is what dedicated chunk sizes are rounded up to
	// (mempool.ChunkAlign).
	ChunkAlign uint64
}

// A PoolClass is a configured pool's chunk size, chunk count and page mode.
type PoolClass struct {
	ChunkSize uint32
	Count     uint32
	Pages     PageMode
}

// A PoolArea is a reserved management area and the pool id it is for.
type PoolArea struct {
	ID   uint16
	Mgmt Region
}

func (l PoolLayout) validate(g Growth) error {
	if !g.Enabled {
		return nil
	}
	if len(l.Grown) != len(l.Base)*g.MaxSegmentsPerPool {
		return fmt.Errorf("pool layout: %d grown areas for %d pools x %d growths", len(l.Grown), len(l.Base), g.MaxSegmentsPerPool)
	}
	if l.ChunkAlign == 0 || l.ChunkAlign&(l.ChunkAlign-1) != 0 {
		return errors.New("pool layout: chunk alignment must be a power of two")
	}
	return nil
}

// PageMode is the page size the server backs a pool's payload segment with.
type PageMode uint8

// Page modes (roudi's hugepages setting).
const (
	PagesAuto  PageMode = iota // hugepages when available, else normal pages
	PagesNever                 // normal pages
	Pages2M                    // 2 MiB pages, required
	Pages1G                    // 1 GiB pages, required
)

func (m PageMode) String() string {
	switch m {
	case PagesAuto:
		return "auto"
	case PagesNever:
		return "never"
	case Pages2M:
		return "2M"
	case Pages1G:
		return "1G"
	}
	return fmt.Sprintf("pages(%d)", uint8(m))
}

// GrowPool asks for room for a loan of Size bytes whose size class is
// exhausted (wire.GrowPool). Known lists the grown pools the client has
// mapped. Answered by [PoolsGranted], possibly after a [CreatePool].
type GrowPool struct {
	Size  uint64
	Known []uint16
}

// GetSegments asks for the payload segment of a grown or dedicated pool
// (wire.GetSegments): read-only for anyone, read-write only for a client
// that has had a publisher. Answered by [PoolsGranted].
type GetSegments struct {
	Pool     uint16
	ReadOnly bool
}

func (GrowPool) isRequest()    {}
func (GetSegments) isRequest() {}

// PoolsGranted answers [GrowPool] and [GetSegments]: the server sends the
// pools' descriptions with their payload segments' fds (the read-only ones
// when ReadOnly). Ref is the chunk of a new dedicated pool, already loaned
// to the client; 0 otherwise.
type PoolsGranted struct {
	Pools    []uint16
	ReadOnly bool
	Ref      uint64
}

func (PoolsGranted) isResult() {}

// PoolCreated reports the outcome of a [CreatePool]. The server steps it
// right after performing the action. With Err set the server left nothing
// of the pool behind (segment closed, pool not added); the core gives the
// area and bytes back and replies Err. Ref is the chunk loaned to LoanTo.
type PoolCreated struct {
	Pool uint16
	Ref  uint64
	Err  error
}

// DedicatedFree reports the live dedicated pools whose one chunk the
// server found free (reference count 0) when it looked, on a tick.
type DedicatedFree struct{ Pools []uint16 }

// PoolRetired reports the outcome of a [RetirePool]: Held when the chunk
// was loaned again before the server could tombstone it (the pool stays
// live).
type PoolRetired struct {
	Pool uint16
	Held bool
}

func (PoolCreated) isEvent()   {}
func (DedicatedFree) isEvent() {}
func (PoolRetired) isEvent()   {}

// CreatePool asks the server to format the management area Mgmt for pool
// Pool (Count chunks of ChunkSize bytes), create its payload segment of
// Bytes bytes backed as Pages says, add it to its pool set and, when
// LoanTo is not 0, loan its chunk to that client. The server then steps
// [PoolCreated]; on failure it first undoes what it did.
type CreatePool struct {
	Pool      uint16
	Mgmt      Region
	ChunkSize uint32
	Count     uint32
	Bytes     uint64
	Pages     PageMode
	Dedicated bool
	LoanTo    ClientID
}

// RetirePool asks the server to retire dedicated pool Pool: loan its chunk
// to the router (a tombstone no client can loan again, that makes every old
// reference stale), then close its payload segment and read-only fd. If the
// chunk was loaned since it was reported free, the server keeps the pool.
// Either way it then steps [PoolRetired].
type RetirePool struct{ Pool uint16 }

// TellPoolRetired tells the client on Conn that pool Pool is retired
// (wire.PoolRetired), so it forgets the pool and unmaps its segment.
type TellPoolRetired struct {
	Conn ConnID
	Pool uint16
}

func (CreatePool) isAction()      {}
func (RetirePool) isAction()      {}
func (TellPoolRetired) isAction() {}

func (a CreatePool) String() string {
	s := fmt.Sprintf("create-pool %d mgmt=%v chunk=%d count=%d bytes=%d pages=%v", a.Pool, a.Mgmt, a.ChunkSize, a.Count, a.Bytes, a.Pages)
	if a.Dedicated {
		s += fmt.Sprintf(" dedicated loan-to=%d", a.LoanTo)
	}
	return s
}

func (a RetirePool) String() string { return fmt.Sprintf("retire-pool %d", a.Pool) }

func (a TellPoolRetired) String() string {
	return fmt.Sprintf("pool-retired %v pool=%d", a.Conn, a.Pool)
}

func (p PoolsGranted) String() string {
	s := fmt.Sprintf("pools-granted %v", p.Pools)
	if p.ReadOnly {
		s += " read-only"
	}
	if p.Ref != 0 {
		s += fmt.Sprintf(" ref=%#x", p.Ref)
	}
	return s
}
