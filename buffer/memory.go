package buffer

import (
	"sync/atomic"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/segment"
)

// An Owner takes back a [Memory] when its last reference is released.
// Allocators implement it. Free is called exactly once per allocation, from
// whichever goroutine released the last reference; it must not block.
type Owner interface {
	Free(m *Memory)
}

// Memory is a reference-counted block of bytes: a pool chunk in a segment, or
// plain Go memory. Buffers are windows onto it. A Memory may be read-only
// (see [Memory.SetReadOnly]): its bytes are mapped without write permission,
// and no buffer over it is [Buffer.Writable].
//
// Allocators create Memory values with [NewMemory] (or keep one per pool slot
// and re-arm it with [Memory.Init]); the zero value holds no bytes. A Memory
// must not be copied. Its reference count is safe for concurrent use; the
// other fields are written only by the owner while nobody holds the memory.
type Memory struct {
	refs   atomic.Int32
	data   []byte
	owner  Owner
	seg    segment.Segment
	segOff int
	ref    parallax.ChunkRef
	ro     bool                    // bytes must not be written (see SetReadOnly)
	cache  atomic.Pointer[decoded] // see codec.go
}

// NewMemory returns a Memory over data, owned by owner (nil: data is Go
// memory left to the garbage collector). seg and segOff locate data in a
// segment when it lives in one (seg may be nil); ref names the pool chunk
// (or [parallax.NilRef]).
func NewMemory(data []byte, owner Owner, seg segment.Segment, segOff int, ref parallax.ChunkRef) *Memory {
	m := &Memory{}
	m.Init(data, owner, seg, segOff, ref)
	return m
}

// Init re-arms a free Memory (reference count zero) for a new allocation.
// Allocators that keep one Memory per slot call it on every allocation; it
// must not be called while any buffer refers to m. The memory is writable
// afterwards; call [Memory.SetReadOnly] for bytes that are not.
func (m *Memory) Init(data []byte, owner Owner, seg segment.Segment, segOff int, ref parallax.ChunkRef) {
	m.data, m.owner, m.seg, m.segOff, m.ref, m.ro = data, owner, seg, segOff, ref, false
	// A freed memory already has a nil cache and zero references (unref
	// left them so); skip the locked stores then.
	if m.cache.Load() != nil {
		m.cache.Store(nil)
	}
	if m.refs.Load() != 0 {
		m.refs.Store(0)
	}
}

// NewBuffer returns a buffer holding a new reference to m, viewing its first n
// bytes (n is clamped to the memory's size). Metadata is zero.
func (m *Memory) NewBuffer(n int) *Buffer {
	if n > len(m.data) {
		n = len(m.data)
	}
	m.refs.Add(1)
	return get(m, 0, n)
}

// SetReadOnly marks the memory's bytes as read-only (for example a sample
// received from another process, mapped without write permission): no
// buffer over it is then [Buffer.Writable], and [Buffer.MakeWritable]
// copies. Like [Memory.Init], it must be called before any buffer refers to
// m; Init clears it.
func (m *Memory) SetReadOnly() { m.ro = true }

// ReadOnly reports whether the memory's bytes must not be written (see
// [Memory.SetReadOnly]).
func (m *Memory) ReadOnly() bool { return m.ro }

// Bytes returns the whole block. It aliases the memory and is valid only
// while a reference is held.
func (m *Memory) Bytes() []byte { return m.data }

// Size returns the size of the block.
func (m *Memory) Size() int { return len(m.data) }

// Refs returns the current number of references (a snapshot).
func (m *Memory) Refs() int32 { return m.refs.Load() }

// Owner returns the allocator the memory returns to, or nil.
func (m *Memory) Owner() Owner { return m.owner }

// Segment returns the segment holding the block and the block's offset in
// it, or nil when the block is Go memory.
func (m *Memory) Segment() (segment.Segment, int) { return m.seg, m.segOff }

// Ref returns the pool chunk the block is, or [parallax.NilRef].
func (m *Memory) Ref() parallax.ChunkRef { return m.ref }

// unref drops one reference and frees the memory at zero.
func (m *Memory) unref() {
	// Release ordering: every holder's writes happen before the last
	// decrement (atomic Add is sequentially consistent), so the owner sees
	// them when it reuses the block.
	switch n := m.refs.Add(-1); {
	case n == 0:
		if m.cache.Load() != nil {
			m.cache.Store(nil)
		}
		if m.owner != nil {
			m.owner.Free(m)
		}
	case n < 0:
		panic("buffer: memory released more often than referenced")
	}
}
