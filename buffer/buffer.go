package buffer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/segment"
)

// Errors returned by this package.
var (
	// ErrRange reports a length or offset outside a buffer's memory.
	ErrRange = errors.New("out of buffer range")
	// ErrInUse reports an allocator closed while its buffers are still held.
	ErrInUse = errors.New("buffers still in use")
	// ErrClosed reports an allocation from a closed allocator.
	ErrClosed = errors.New("allocator closed")
)

// Flags qualify a buffer. The zero value has no flag set.
type Flags uint32

// Buffer flags, as in GStreamer.
const (
	// FlagDiscont marks the first buffer after a discontinuity (a gap, a
	// seek, dropped buffers).
	FlagDiscont Flags = 1 << iota
	// FlagDelta marks a buffer that cannot be decoded on its own.
	FlagDelta
	// FlagGap marks a buffer carrying no meaningful data (filler).
	FlagGap
	// FlagMarker is a media-specific marker (end of a frame, of a message).
	FlagMarker
	// FlagCorrupt marks data known to be damaged.
	FlagCorrupt
)

// NoTime is the value of a timestamp that is not set.
const NoTime time.Duration = -1

// Meta is the per-buffer metadata. Clones copy it; each holder may change its
// own. The zero value is valid (timestamps 0, no flags).
type Meta struct {
	PTS      time.Duration // presentation timestamp (running time), or NoTime
	DTS      time.Duration // decode timestamp, or NoTime
	Duration time.Duration // duration of the data, or 0
	Seq      uint64        // sequence number, set by the producer
	Offset   uint64        // media-specific offset (for example a byte offset in a file)
	Flags    Flags
}

// Buffer is a window onto a [Memory] plus metadata. See the package
// documentation for ownership.
//
// Get buffers from an [Allocator], [New], [Buffer.Clone] or [Buffer.Slice];
// the zero value is not usable. A Buffer must not be copied (use Clone) and
// is not safe for concurrent use: one goroutine owns it at a time. Release it
// exactly once; after Release the *Buffer must not be touched (the struct is
// recycled).
type Buffer struct {
	// Meta is this buffer's metadata.
	Meta Meta

	mem      *Memory
	off, n   int
	value    any // typed pipelines: a non-fixed-layout value
	released bool
}

var bufPool = sync.Pool{New: func() any { return new(Buffer) }}

func get(m *Memory, off, n int) *Buffer {
	b := bufPool.Get().(*Buffer)
	*b = Buffer{mem: m, off: off, n: n}
	return b
}

// New returns a buffer over p (Go memory, no copy, no owner). It is the
// convenience constructor for tests and cold paths; it allocates.
func New(p []byte) *Buffer {
	return NewMemory(p, nil, nil, 0, parallax.NilRef).NewBuffer(len(p))
}

// NewValue returns a buffer with no memory that carries v (see
// [Buffer.Value]). Typed pipelines use it for values that are not
// fixed-layout.
func NewValue(v any) *Buffer {
	b := get(nil, 0, 0)
	b.value = v
	return b
}

// Bytes returns the buffer's bytes. It aliases the memory (possibly shared
// memory) and is only valid until Release. Write into it only when
// [Buffer.Writable].
func (b *Buffer) Bytes() []byte {
	if b.mem == nil {
		return nil
	}
	return b.mem.data[b.off : b.off+b.n : b.off+b.n]
}

// Len returns the number of bytes in the window.
func (b *Buffer) Len() int { return b.n }

// Cap returns how far the window may grow with SetLen: the memory after its
// start.
func (b *Buffer) Cap() int {
	if b.mem == nil {
		return 0
	}
	return len(b.mem.data) - b.off
}

// SetLen changes the window's length (for example after filling a buffer
// allocated larger than needed). n must be within [0, Cap()].
func (b *Buffer) SetLen(n int) error {
	if n < 0 || n > b.Cap() {
		return fmt.Errorf("set buffer length %d (capacity %d): %w", n, b.Cap(), ErrRange)
	}
	b.n = n
	return nil
}

// Value returns the value a typed pipeline attached with [NewValue], or nil.
func (b *Buffer) Value() any { return b.value }

// Memory returns the memory the buffer views, or nil for a value buffer.
func (b *Buffer) Memory() *Memory { return b.mem }

// Offset returns the window's start within its memory.
func (b *Buffer) Offset() int { return b.off }

// Writable reports whether writing into Bytes is allowed and affects no
// other holder: the memory is not read-only ([Memory.ReadOnly], for example
// a sample received from another process) and this buffer holds the only
// reference to it. Use [Buffer.MakeWritable] to get a buffer that is.
func (b *Buffer) Writable() bool {
	return b.mem == nil || !b.mem.ro && b.mem.refs.Load() == 1
}

// MakeWritable returns a [Buffer.Writable] buffer with b's bytes, metadata
// and value (copy on write): b itself when it is writable, otherwise a copy
// allocated from a (nil: [Heap]), in which case b is released. It takes
// ownership of b unless it fails; on error b is left as it was and the
// caller still owns it.
func (b *Buffer) MakeWritable(ctx context.Context, a Allocator) (*Buffer, error) {
	b.check()
	if b.Writable() {
		return b, nil
	}
	if a == nil {
		a = Heap{}
	}
	c, err := a.Alloc(ctx, b.n)
	if err != nil {
		return nil, fmt.Errorf("copy %d-byte buffer to write it: %w", b.n, err)
	}
	if err := c.SetLen(b.n); err != nil {
		c.Release()
		return nil, err
	}
	copy(c.Bytes(), b.Bytes())
	c.Meta, c.value = b.Meta, b.value
	b.Release()
	return c, nil
}

// Clone returns another buffer over the same bytes with a copy of the
// metadata, in O(1): it adds a reference to the memory and copies no byte.
// Both buffers must be released.
func (b *Buffer) Clone() *Buffer {
	b.check()
	c := get(b.mem, b.off, b.n)
	if b.mem != nil {
		b.mem.refs.Add(1)
	}
	c.Meta, c.value = b.Meta, b.value
	return c
}

// Slice returns a buffer viewing n bytes at off within this buffer's window,
// in O(1) (a new reference to the same memory, metadata copied).
func (b *Buffer) Slice(off, n int) (*Buffer, error) {
	b.check()
	if off < 0 || n < 0 || off+n > b.n {
		return nil, fmt.Errorf("slice [%d:%d] of a %d-byte buffer: %w", off, off+n, b.n, ErrRange)
	}
	c := b.Clone()
	c.off, c.n = b.off+off, n
	return c, nil
}

// Release drops this buffer's reference to its memory (returning the memory
// to its allocator when it was the last) and recycles the Buffer struct.
// Releasing a buffer twice panics when detected; it is always a bug.
func (b *Buffer) Release() {
	b.check()
	m := b.mem
	b.released, b.mem, b.value = true, nil, nil
	if m != nil {
		m.unref()
	}
	bufPool.Put(b)
}

func (b *Buffer) check() {
	if b.released {
		panic("buffer: use of a released buffer")
	}
}

// A Handle locates a buffer's bytes for another party: the segment, the
// offset of the window in it, its length and the pool chunk.
type Handle struct {
	Segment segment.Segment // nil for Go memory
	Offset  int             // of the window within the segment
	Len     int
	Ref     parallax.ChunkRef
}

// Handle returns where the buffer's bytes live.
func (b *Buffer) Handle() Handle {
	if b.mem == nil {
		return Handle{}
	}
	return Handle{Segment: b.mem.seg, Offset: b.mem.segOff + b.off, Len: b.n, Ref: b.mem.ref}
}

// String describes the buffer briefly.
func (b *Buffer) String() string {
	return fmt.Sprintf("buffer(seq=%d len=%d pts=%v)", b.Meta.Seq, b.n, b.Meta.PTS)
}
