// This file is the only place in package mempool that uses unsafe. It maps
// typed views (header, statistics, hint, bitmap words, chunk headers) over a
// management area that is a plain []byte: heap memory (package buffer) or
// a MAP_SHARED mapping.
//
// Invariants:
//
//   - Every view is created by [view] or [viewSlice], which check once, when
//     the pool is formatted or attached, that the byte range lies inside the
//     []byte and that its start is 8-byte aligned. The Pool keeps the []byte
//     itself alive (it holds the slice), so the views never outlive the
//     memory as far as Go is concerned; unmapping the segment while a Pool is
//     in use is the owner's (segment's) bug, as it is for any []byte.
//   - The mapped types contain only fixed-width integers and padding
//     (structs.HostLayout, no Go pointers), so the GC has nothing to scan in
//     them and a peer writing arbitrary bytes cannot forge a pointer.
//   - Every 64-bit word touched atomically sits at an 8-byte aligned offset
//     from an 8-byte aligned base, so sync/atomic never straddles a cache
//     line (which costs ~1.5 µs on this VM and faults on other
//     architectures). TestLayout pins the offsets.
//   - Ownership: the management area belongs to the router's segment; a Pool
//     only borrows it. The bytes are shared with other processes, which may
//     be faulty: everything read from them (ctl words, bitmap words) is
//     validated before being used as an index, and indices are always
//     bounds-checked against the locally cached count, never against a
//     value re-read from shared memory.
//
// Soundness: conversions go through unsafe.Pointer(&b[off]) (vet-clean,
// checkptr-clean) and unsafe.Slice with a length computed from the checked
// range. No uintptr arithmetic is stored.
package mempool

import (
	"fmt"
	"structs"
	"unsafe"
)

// header is the first line of the management area. It is written once by
// Format and only read afterwards (magic last, atomically).
type header struct {
	_           structs.HostLayout
	magic       uint64 // Magic; stored last by Format (release)
	version     uint32 // LayoutVersion
	poolID      uint32 // pool id (fits a uint16)
	chunkSize   uint32
	count       uint32
	bitmapOff   uint64 // == BitmapOffset
	headersOff  uint64 // == Class.headersOffset()
	mgmtSize    uint64 // == MgmtSize(class)
	payloadSize uint64 // == Count * ChunkSize
	_           [72]byte
}

// statsLine holds the loaners' statistics words. In-use is not stored: it
// is loansTotal - freesTotal (freesTotal lives on the releasers' line), so
// a loan and a release each pay one atomic add on a line of their own.
type statsLine struct {
	_           structs.HostLayout
	loansTotal  uint64 // successful loans (monotonic, wraps at 2^64)
	_           uint64 // layout 1: freesTotal
	highWater   uint64 // max in-use observed by a Loan
	failedLoans uint64 // loans that found the pool exhausted
	_           [96]byte
}

// hintLine is the releasers' line: a last Release counts its free here,
// apart from the loaners' words, so a publisher and its subscribers (on
// other cores) do not pass a line back and forth on every message.
type hintLine struct {
	_          structs.HostLayout
	hint       uint64 // layout 1: allocation hint; unused, kept zero
	freesTotal uint64 // slots returned by a last Release (monotonic)
	_          [112]byte
}

// chunkHeader is the per-slot record. ctl is the authority on the slot's
// state; the other words are metadata written by the chunk's loaner before
// publishing and read by holders after receiving the ref.
type chunkHeader struct {
	_         structs.HostLayout
	ctl       uint64 // gen:24 | owner:16 | refcount:24
	length    uint64 // payload bytes in use
	seq       uint64 // publisher sequence number
	timestamp int64  // unix nanoseconds
	origin    uint64 // publisher / origin id
	_         [3]uint64
}

// Sizes and offsets pinned by TestLayout.
var (
	_ [HeaderSize - unsafe.Sizeof(header{})]byte
	_ [unsafe.Sizeof(header{}) - HeaderSize]byte
	_ [StatsSize - unsafe.Sizeof(statsLine{})]byte
	_ [unsafe.Sizeof(statsLine{}) - StatsSize]byte
	_ [HintSize - unsafe.Sizeof(hintLine{})]byte
	_ [unsafe.Sizeof(hintLine{}) - HintSize]byte
	_ [ChunkHeaderSize - unsafe.Sizeof(chunkHeader{})]byte
	_ [unsafe.Sizeof(chunkHeader{}) - ChunkHeaderSize]byte
)

// checkRange verifies that b[off:off+size] exists and starts 8-byte aligned.
func checkRange(b []byte, off, size int) error {
	if off < 0 || size < 0 || off > len(b) || size > len(b)-off {
		return fmt.Errorf("map [%d, +%d) of a %d-byte region: %w", off, size, len(b), ErrRegion)
	}
	if size > 0 && uintptr(unsafe.Pointer(&b[off]))%8 != 0 {
		return fmt.Errorf("map offset %d: not 8-byte aligned: %w", off, ErrRegion)
	}
	return nil
}

// view maps a *T at b[off], after checking bounds and alignment.
func view[T any](b []byte, off int) (*T, error) {
	var zero T
	if err := checkRange(b, off, int(unsafe.Sizeof(zero))); err != nil {
		return nil, err
	}
	return (*T)(unsafe.Pointer(&b[off])), nil
}

// viewSlice maps a []T of n elements at b[off], after checking bounds and
// alignment.
func viewSlice[T any](b []byte, off, n int) ([]T, error) {
	var zero T
	sz := int(unsafe.Sizeof(zero))
	if n < 0 || (sz > 0 && n > len(b)/sz) {
		return nil, fmt.Errorf("map %d elements: %w", n, ErrRegion)
	}
	if err := checkRange(b, off, n*sz); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[off])), n), nil
}

// isAligned reports whether b's first byte is aligned to a.
func isAligned(b []byte, a uintptr) bool {
	return len(b) == 0 || uintptr(unsafe.Pointer(&b[0]))%a == 0
}

// HeapRegion returns a zeroed heap region of n bytes whose first byte is
// aligned to [RegionAlign] (128 bytes). It serves in-process pools (a heap
// segment) and tests; shared pools use a segment's mapping instead. The
// region is ordinary Go memory, kept alive by the returned slice.
func HeapRegion(n int) []byte {
	if n <= 0 {
		return nil
	}
	// Back the region with uint64s so the base is at least 8-byte aligned,
	// then skip to the next 128-byte boundary.
	words := make([]uint64, (n+RegionAlign)/8+1)
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	skip := int((RegionAlign - uintptr(unsafe.Pointer(&raw[0]))%RegionAlign) % RegionAlign)
	return raw[skip : skip+n : skip+n]
}
