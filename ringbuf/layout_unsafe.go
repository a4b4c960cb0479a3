// This file is the only place in package ringbuf that touches unsafe. It
// maps the fixed shared-memory layout of a ring and of a notifier onto the
// []byte regions callers hand in, and nothing else.
//
// Invariants:
//   - Layout. Shared memory holds only fixed-width integers, never Go
//     pointers: the garbage collector does not scan shared mappings, so a Go
//     pointer stored there would dangle. The structs below describe the
//     layout (their offsets become the off* constants that TestLayout pins);
//     they are never instantiated over shared memory as a whole. Fields are
//     reached one word at a time through word64 / word32 / slotWords.
//   - Alignment. Every atomic word sits at an offset that is a multiple of
//     its size, and every region starts 8-byte aligned (Format and Attach
//     check base alignment with aligned8 before mapping anything), so no
//     atomic ever straddles a cache line (a split lock traps or costs ~1.5 µs
//     in our VM, and faults on other architectures).
//   - Bounds. word64, word32 and slotWords index mem with ordinary Go slice
//     expressions before converting, so an out-of-range offset panics with a
//     bounds error instead of reading foreign memory. Callers only pass
//     offsets derived from validated headers.
//   - Lifetime and ownership. The caller owns the mapping and keeps it
//     mapped for as long as the Ring or Notifier is used (segment.Segment's
//     Close contract). The pointers produced here point into that mapping (or
//     into a Go heap []byte in tests, which they keep alive).
//   - Concurrency. Every word returned here is accessed only through
//     sync/atomic, because peers in other processes (or goroutines) read and
//     write the same bytes concurrently. sync/atomic operations are
//     sequentially consistent; ring.go and notifier.go name the ordering each
//     access relies on. The word types shmWord64 and shmWord32 are
//     sync/atomic's (aliases), or under the parallax_countatomics tag a
//     struct holding exactly one of them that counts each access.
//
// Soundness: converting &mem[off] to *atomic.Uint64 is the documented
// unsafe.Pointer conversion rule (1) between types of equal or smaller
// alignment requirement whose memory is valid; atomic.Uint64 and
// atomic.Uint32 are the size of their value (their other fields are zero-size
// markers), and the alignment checks above supply the 8-byte alignment the Go
// heap would otherwise guarantee.

package ringbuf

import (
	"structs"
	"unsafe"
)

// lineSize is the padding unit for hot words: two 64-byte lines, so that the
// adjacent-line prefetcher does not couple neighbours (as sync.Pool pads).
const lineSize = 128

// ringHeader documents the shared layout of a ring's header. Words written
// by different sides sit on different 128-byte lines.
type ringHeader struct {
	_ structs.HostLayout

	// line 0: written once by Format, read-only afterwards.
	Magic    uint64 // ringMagic, stored last by Format
	Version  uint32 // LayoutVersion
	Policy   uint32 // Policy
	Capacity uint32 // power of two, 1 ≤ Capacity ≤ MaxCapacity
	_        uint32
	_        [lineSize - 24]byte

	// line 1: consumer side. Head is CASed by the consumer (pop) and by the
	// producer (discard).
	Head uint64 // HeadWord: position | pops<<32
	_    [lineSize - 8]byte

	// line 2: producer-owned.
	Tail    uint64 // position (low 32 bits; high 32 bits always 0)
	Dropped uint64 // entries discarded by the producer (DiscardOldest)
	_       [lineSize - 16]byte

	// line 3: blocked-producer handshake and close.
	WaitFlag uint32 // 1 while the producer waits for space (BlockProducer)
	WaitSeq  uint32 // futex word the producer sleeps on
	Closed   uint32 // 1 after Close
	_        uint32
	_        [lineSize - 16]byte

	// Slots follow: Capacity × uint64.
}

// notifierBlock documents the shared layout of a notifier: one 128-byte
// block.
type notifierBlock struct {
	_ structs.HostLayout

	Magic    uint64 // notifierMagic, stored last by FormatNotifier
	Version  uint32 // LayoutVersion
	Closed   uint32 // 1 after Close
	Seq      uint32 // futex word: bumped by every wake-up
	Sleeping uint32 // 1 while the consumer announces it may sleep
	Wakes    uint64 // number of FutexWake syscalls made by producers
	Sleeps   uint64 // number of FutexWait syscalls made by the consumer
	_        [lineSize - 40]byte
}

// Layout offsets and sizes, derived from the structs above and pinned by
// TestLayout.
const (
	offMagic    = unsafe.Offsetof(ringHeader{}.Magic)
	offVersion  = unsafe.Offsetof(ringHeader{}.Version)
	offPolicy   = unsafe.Offsetof(ringHeader{}.Policy)
	offCapacity = unsafe.Offsetof(ringHeader{}.Capacity)
	offHead     = unsafe.Offsetof(ringHeader{}.Head)
	offTail     = unsafe.Offsetof(ringHeader{}.Tail)
	offDropped  = unsafe.Offsetof(ringHeader{}.Dropped)
	offWaitFlag = unsafe.Offsetof(ringHeader{}.WaitFlag)
	offWaitSeq  = unsafe.Offsetof(ringHeader{}.WaitSeq)
	offClosed   = unsafe.Offsetof(ringHeader{}.Closed)

	// HeaderSize is the size of a ring header; slots start at this offset.
	HeaderSize = int(unsafe.Sizeof(ringHeader{}))

	nOffMagic    = unsafe.Offsetof(notifierBlock{}.Magic)
	nOffVersion  = unsafe.Offsetof(notifierBlock{}.Version)
	nOffClosed   = unsafe.Offsetof(notifierBlock{}.Closed)
	nOffSeq      = unsafe.Offsetof(notifierBlock{}.Seq)
	nOffSleeping = unsafe.Offsetof(notifierBlock{}.Sleeping)
	nOffWakes    = unsafe.Offsetof(notifierBlock{}.Wakes)
	nOffSleeps   = unsafe.Offsetof(notifierBlock{}.Sleeps)

	// NotifierSize is the size of a notifier block.
	NotifierSize = int(unsafe.Sizeof(notifierBlock{}))
)

// aligned8 reports whether mem starts at an 8-byte aligned address. An
// empty slice counts as unaligned.
func aligned8(mem []byte) bool {
	return len(mem) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%8 == 0
}

// word64 maps the 8-byte aligned word at mem[off:off+8] as an atomic. It is
// the one helper that turns shared bytes into 64-bit atomics.
func word64(mem []byte, off uintptr) *shmWord64 {
	if off%8 != 0 {
		panic("ringbuf: misaligned 64-bit word")
	}
	return (*shmWord64)(unsafe.Pointer(&mem[off : off+8][0]))
}

// word32 maps the 4-byte aligned word at mem[off:off+4] as an atomic (the
// futex words must be 32 bits wide).
func word32(mem []byte, off uintptr) *shmWord32 {
	if off%4 != 0 {
		panic("ringbuf: misaligned 32-bit word")
	}
	return (*shmWord32)(unsafe.Pointer(&mem[off : off+4][0]))
}

// rawWord32 returns the address of a 32-bit atomic for the futex system
// calls, which take the plain word.
func rawWord32(w *shmWord32) *uint32 {
	return (*uint32)(unsafe.Pointer(w))
}

// slotWords maps n consecutive 64-bit slots starting at off.
func slotWords(mem []byte, off uintptr, n int) []shmWord64 {
	end := off + uintptr(n)*8
	_ = mem[off:end] // bounds check
	return unsafe.Slice(word64(mem, off), n)
}

// bytesOf views words as bytes. Tests use it to get 8-byte aligned buffers
// of any length.
func bytesOf(words []uint64) []byte {
	if len(words) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), 8*len(words))
}
