// Package buffer holds the unit of data of Parallax pipelines: a [Buffer] is a
// window onto bytes of some [Memory] (a chunk of a pool in a shared or heap
// segment, or plain Go memory) plus per-buffer metadata ([Meta]: presentation
// and decode timestamps, duration, sequence, offset, flags).
//
// # Ownership and reference counting
//
//	Buffer (per holder: window + Meta) ──┐
//	Buffer (a Clone)                    ─┼──▶ Memory (refcount, bytes, segment, chunk ref) ──▶ Owner (allocator)
//	Buffer (a Slice)                    ──┘
//
// A Memory is reference counted. [Buffer.Clone] and [Buffer.Slice] are O(1):
// they take a Buffer struct from a free list and add a reference to the same
// Memory; no byte is copied. [Buffer.Release] drops the holder's reference and
// recycles the Buffer struct; when the last reference goes, the Memory returns
// to its [Owner] (for a [Pool], the chunk goes back to the pool and the same
// Memory struct is reused by the next allocation). In steady state nothing is
// allocated per buffer.
//
// Each Buffer is owned by one goroutine at a time (it travels through a
// pipeline link like a value sent on a channel); its methods are not safe for
// concurrent use. Clones of the same Memory may live in different goroutines:
// the reference count is atomic. Bytes aliases the memory and is valid only
// until Release; write only when [Buffer.Writable], which is never the case
// for read-only memory such as samples received from another process
// ([Memory.ReadOnly]). [Buffer.MakeWritable] is the copy-on-write step: it
// returns the buffer itself when it is writable, else a private copy.
//
// # Allocation
//
// An [Allocator] hands out writable buffers. [Pool] is the default: size-class
// chunk pools (package mempool) laid over one heap segment, reused without
// allocating; [Heap] allocates Go memory. Other allocators (for example one
// that loans chunks from a publisher's shared pool) implement [Owner] and build
// their buffers with [NewMemory] and [Memory.NewBuffer].
//
// # Typed buffers
//
// [View] and [AllocValue] give a *T aliasing a buffer's bytes for fixed-layout
// types (no copy); [Msgpack] encodes dynamic types, and decodes each memory at
// most once: the decoded value is cached on the Memory and shared by its
// clones.
package buffer
