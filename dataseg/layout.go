package dataseg

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/parallax-ipc/parallax"
)

// Layout constants of a data segment. They are part of the shared-memory
// ABI: changing any of them requires bumping [LayoutVersion]. TestLayout pins
// every one of them.
const (
	// Magic opens every data segment: the bytes "PLXDSEG1" read as a
	// little-endian uint64.
	Magic uint64 = 0x3147455344584c50
	// LayoutVersion is the version of the data segment layout.
	// Version 2: header bytes 64..95 hold the publisher's counters
	// (counters.go).
	LayoutVersion uint32 = 2

	// HeaderSize is the size of the segment header at offset 0.
	HeaderSize = 128
	// HeadersOffset is where the chunk-header table starts.
	HeadersOffset = HeaderSize
	// ChunkHeaderSize is the stride of the chunk-header table.
	ChunkHeaderSize = 64
	// ChunkAlign is the granularity of chunk sizes.
	ChunkAlign = 64

	// MaxCount is the largest number of chunks in one segment (the slot
	// field of a [parallax.ChunkRef]).
	MaxCount = parallax.MaxSlots
	// MaxChunkSize is the largest chunk size (1 GiB).
	MaxChunkSize = 1 << 30
	// MinPageSize and MaxPageSize bound [Desc.PageSize], which must be a
	// power of two.
	MinPageSize = 4096
	MaxPageSize = 1 << 30
)

// Flags of a data segment ([Desc.Flags], header offset 14).
const (
	// FlagHugetlb marks a segment backed by hugetlb pages.
	FlagHugetlb uint16 = 1 << 0

	knownFlags = FlagHugetlb
)

// Byte offsets of the segment header fields (all little-endian).
const (
	offMagic         = 0  // u64 Magic
	offVersion       = 8  // u32 LayoutVersion
	offIndex         = 12 // u16 segment index
	offFlags         = 14 // u16 flags
	offPubID         = 16 // u32 publisher id
	offChunkSize     = 20 // u32 chunk size
	offCount         = 24 // u32 chunk count
	offStride        = 28 // u32 chunk header stride (= ChunkHeaderSize)
	offHeadersOffset = 32 // u64 chunk-header table offset
	offPayloadOffset = 40 // u64 payload area offset
	offSegmentSize   = 48 // u64 segment size
	offPageSize      = 56 // u32 page size
	offReserved      = 60 // u32 reserved, 0; 64..95 the publisher's counters (counters.go); 96..127 reserved, 0
)

// Byte offsets of the chunk header fields (all little-endian), see [Meta].
const (
	metaLength   = 0  // u32
	metaFlags    = 4  // u32
	metaSeq      = 8  // u64
	metaStamp    = 16 // i64
	metaPTS      = 24 // i64
	metaDTS      = 32 // i64
	metaDuration = 40 // i64
	metaOffset   = 48 // u64
	metaUserSeq  = 56 // u64
)

// Desc describes one data segment of a publisher. The router fills it when
// it creates the segment and sends it to every process that maps the
// segment; [Attach] recomputes the whole layout from it and cross-checks the
// in-segment header against it. A Desc is a plain value.
type Desc struct {
	PubID     uint32 // publisher that owns the segment
	Index     uint16 // segment index within the publisher ([parallax.ChunkRef] segment field)
	Flags     uint16 // FlagHugetlb or 0
	ChunkSize uint32 // bytes per chunk, a multiple of ChunkAlign
	Count     uint32 // chunks in the segment, 1..MaxCount
	PageSize  uint32 // page size of the backing memory, a power of two
}

// layout is the geometry computed from a Desc.
type layout struct {
	payloadOff int
	size       int
}

// Validate reports whether d describes a segment this build can lay out.
// The error wraps [ErrDesc] and names the offending field.
func (d Desc) Validate() error {
	_, err := d.layout()
	return err
}

// Size returns the size in bytes of the segment d describes:
// roundup(payload offset + Count*ChunkSize, PageSize). It returns 0 if d is
// invalid; [Desc.Validate] says why.
func Size(d Desc) int {
	l, err := d.layout()
	if err != nil {
		return 0
	}
	return l.size
}

// PayloadOffset returns the offset of chunk 0's payload in the segment d
// describes: the end of the chunk-header table rounded up to
// min(ChunkSize rounded up to a power of two, PageSize). It returns 0 if d
// is invalid.
func PayloadOffset(d Desc) int {
	l, err := d.layout()
	if err != nil {
		return 0
	}
	return l.payloadOff
}

func (d Desc) layout() (layout, error) {
	switch {
	case d.ChunkSize == 0 || d.ChunkSize%ChunkAlign != 0 || d.ChunkSize > MaxChunkSize:
		return layout{}, fmt.Errorf("chunk size %d is not a multiple of %d in (0, %d]: %w", d.ChunkSize, ChunkAlign, MaxChunkSize, ErrDesc)
	case d.Count == 0 || d.Count > MaxCount:
		return layout{}, fmt.Errorf("count %d is not in [1, %d]: %w", d.Count, MaxCount, ErrDesc)
	case d.PageSize < MinPageSize || d.PageSize > MaxPageSize || d.PageSize&(d.PageSize-1) != 0:
		return layout{}, fmt.Errorf("page size %d is not a power of two in [%d, %d]: %w", d.PageSize, MinPageSize, MaxPageSize, ErrDesc)
	case d.Flags&^knownFlags != 0:
		return layout{}, fmt.Errorf("unknown flags %#x: %w", d.Flags&^knownFlags, ErrDesc)
	}
	// All terms are bounded (count ≤ 2^24, chunk size ≤ 2^30, page ≤ 2^30),
	// so the uint64 arithmetic cannot overflow.
	align := min(uint64(1)<<bits.Len32(d.ChunkSize-1), uint64(d.PageSize))
	tableEnd := uint64(HeadersOffset) + uint64(d.Count)*ChunkHeaderSize
	payloadOff := roundUp(tableEnd, align)
	size := roundUp(payloadOff+uint64(d.Count)*uint64(d.ChunkSize), uint64(d.PageSize))
	if size > math.MaxInt {
		return layout{}, fmt.Errorf("segment size %d does not fit this platform's int: %w", size, ErrDesc)
	}
	return layout{payloadOff: int(payloadOff), size: int(size)}, nil
}

// roundUp rounds n up to a multiple of the power of two a.
func roundUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }
