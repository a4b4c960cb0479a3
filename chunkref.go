package parallax

import "fmt"

// A ChunkRef names one chunk in a domain's pools: a pool index, a slot index
// within that pool and the slot's generation at the time the ref was made.
// It is the only thing that travels through the shared rings.
//
// Bit layout (most significant first):
//
//	63        48 47                    24 23                     0
//	+-----------+------------------------+------------------------+
//	|   pool    |          slot          |       generation       |
//	+-----------+------------------------+------------------------+
//
// The zero ChunkRef is never valid: generations start at 1 and skip 0 when
// they wrap, so a zeroed ring slot can never be mistaken for a chunk.
//
// A ChunkRef is a plain value; decoding it does not validate it against any
// pool. Packages that own pools (mempool) validate bounds and generation
// before using a ref that came from shared memory.
type ChunkRef uint64

// Field widths and limits of a [ChunkRef].
const (
	RefPoolBits = 16
	RefSlotBits = 24
	RefGenBits  = 24

	MaxPools = 1 << RefPoolBits // number of distinct pool indices
	MaxSlots = 1 << RefSlotBits // slots per pool
	GenMask  = 1<<RefGenBits - 1
)

// NilRef is the zero ChunkRef; it names no chunk.
const NilRef ChunkRef = 0

// MakeRef builds a ChunkRef. It panics if an argument does not fit its field;
// callers build refs only from indices they already bounds-checked.
func MakeRef(pool, slot, gen uint32) ChunkRef {
	if pool >= MaxPools || slot >= MaxSlots || gen > GenMask {
		panic(fmt.Sprintf("parallax: MakeRef(%d, %d, %d) out of range", pool, slot, gen))
	}
	return ChunkRef(uint64(pool)<<(RefSlotBits+RefGenBits) | uint64(slot)<<RefGenBits | uint64(gen))
}

// Pool returns the pool index of r.
func (r ChunkRef) Pool() uint32 { return uint32(r >> (RefSlotBits + RefGenBits)) }

// Slot returns the slot index of r.
func (r ChunkRef) Slot() uint32 { return uint32(r>>RefGenBits) & (MaxSlots - 1) }

// Gen returns the generation of r.
func (r ChunkRef) Gen() uint32 { return uint32(r) & GenMask }

// IsNil reports whether r is the zero ref.
func (r ChunkRef) IsNil() bool { return r == NilRef }

// String formats r as pool/slot@gen.
func (r ChunkRef) String() string {
	if r.IsNil() {
		return "ref(nil)"
	}
	return fmt.Sprintf("ref(%d/%d@%d)", r.Pool(), r.Slot(), r.Gen())
}

// NextGen returns the generation that follows g, skipping 0 on wrap-around.
func NextGen(g uint32) uint32 {
	g = (g + 1) & GenMask
	if g == 0 {
		g = 1
	}
	return g
}
