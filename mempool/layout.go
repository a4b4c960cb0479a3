package mempool

import (
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// Layout constants of a pool's management area. They are part of the
// shared-memory ABI: changing any of them requires bumping [LayoutVersion].
// TestLayout pins every one of them.
const (
	// Magic opens every management area: the bytes "PLXPOOL\x00" read as a
	// little-endian uint64.
	Magic uint64 = 0x004c4f4f50584c50
	// LayoutVersion is the version of the management-area layout.
	LayoutVersion uint32 = 3

	// LineSize is the padding unit that keeps hot words apart (two 64-byte
	// cache lines, so the adjacent-line prefetcher does not couple them).
	LineSize = 128

	// HeaderOffset and HeaderSize locate the read-mostly header line.
	HeaderOffset = 0
	HeaderSize   = LineSize
	// StatsOffset locates the loaners' statistics line (loans total, high
	// water, failed loans).
	StatsOffset = HeaderOffset + HeaderSize
	StatsSize   = LineSize
	// HintOffset locates the releasers' line: the frees counter (and the
	// allocation hint of layout 1, now unused). Loaners and releasers are
	// usually different processes on different cores: each side writes
	// only its own line.
	HintOffset = StatsOffset + StatsSize
	HintSize   = LineSize
	// BitmapOffset is where the free bitmap starts (1 bit per slot, 1 = free).
	BitmapOffset = HintOffset + HintSize

	// ChunkHeaderSize is the size of one per-slot chunk header record.
	ChunkHeaderSize = 64
	// ChunkAlign is the granularity of chunk sizes: every chunk size is a
	// multiple of it, so each chunk starts 64-byte aligned relative to the
	// payload base (segments are mapped page-aligned).
	ChunkAlign = 64
	// RegionAlign is the alignment [HeapRegion] guarantees and the
	// alignment Format/Attach recommend; they require only 8.
	RegionAlign = LineSize

	// MaxCount is the largest number of slots in one pool (the slot field of
	// a [parallax.ChunkRef]).
	MaxCount = parallax.MaxSlots
	// MaxRefCount is the largest reference count a chunk can hold.
	MaxRefCount = 1<<ctlRefBits - 1
	// MaxOwner is the largest loaner id.
	MaxOwner = 1<<ctlOwnerBits - 1
)

// Bit layout of a chunk header's ctl word (most significant first):
//
//	63            40 39         24 23             0
//	+---------------+-------------+----------------+
//	|  generation   |   loaner    |    refcount    |
//	+---------------+-------------+----------------+
const (
	ctlRefBits   = 24
	ctlOwnerBits = 16
	ctlGenBits   = parallax.RefGenBits

	ctlOwnerShift = ctlRefBits
	ctlGenShift   = ctlRefBits + ctlOwnerBits
	ctlRefMask    = 1<<ctlRefBits - 1
	ctlOwnerMask  = 1<<ctlOwnerBits - 1
)

func makeCtl(gen uint32, owner uint16, rc uint32) uint64 {
	return uint64(gen)<<ctlGenShift | uint64(owner)<<ctlOwnerShift | uint64(rc)
}

func ctlGen(c uint64) uint32   { return uint32(c >> ctlGenShift) }
func ctlOwner(c uint64) uint16 { return uint16(c >> ctlOwnerShift) }
func ctlRef(c uint64) uint32   { return uint32(c & ctlRefMask) }

// A Class describes one pool: Count chunks of ChunkSize bytes each.
// ChunkSize must be a positive multiple of [ChunkAlign]; Count must be in
// [1, MaxCount].
type Class struct {
	ChunkSize uint32
	Count     uint32
}

// String formats c as "count×size".
func (c Class) String() string { return fmt.Sprintf("%d×%dB", c.Count, c.ChunkSize) }

// validate checks c's fields.
func (c Class) validate() error {
	if c.ChunkSize == 0 || c.ChunkSize%ChunkAlign != 0 {
		return fmt.Errorf("check class %v: chunk size must be a positive multiple of %d: %w", c, ChunkAlign, ErrBadClass)
	}
	if c.Count == 0 || c.Count > MaxCount {
		return fmt.Errorf("check class %v: count must be in [1, %d]: %w", c, MaxCount, ErrBadClass)
	}
	return nil
}

// bitmapWords returns the number of 64-bit words of the free bitmap.
func (c Class) bitmapWords() int { return (int(c.Count) + wordSlots - 1) / wordSlots }

// wordSlots is the number of slots one bitmap word covers (its low bits).
// Each word has a line of its own (bitmapStride), so a loaner and a
// releaser more than wordSlots slots apart, such as a publisher and a
// subscriber a few samples behind it, never write the same line.
const wordSlots = 8

// fullWord has the bits of all wordSlots slots of a word set.
const fullWord uint64 = 1<<wordSlots - 1

// bitmapStride is the distance in 64-bit words between two bitmap words:
// each word has a 128-byte line of its own, so a loaner claiming chunks in
// one word and a subscriber on another core freeing chunks of an earlier
// word do not pass one line back and forth on every message.
const bitmapStride = LineSize / 8

// headersOffset returns the offset of the chunk-header array, after the
// bitmap (one line per word).
func (c Class) headersOffset() int {
	return BitmapOffset + c.bitmapWords()*LineSize
}

// PayloadSize returns the bytes of payload region the class needs.
func (c Class) PayloadSize() int { return int(c.ChunkSize) * int(c.Count) }

// MgmtSize returns the bytes of management area a pool of class c needs. It
// returns 0 for an invalid class.
func MgmtSize(c Class) int {
	if c.validate() != nil {
		return 0
	}
	return c.headersOffset() + int(c.Count)*ChunkHeaderSize
}
