package segment

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/parallax-ipc/parallax/internal/sys"
)

// Heap is a segment of private anonymous memory for pipelines that stay in
// one process. Its base is page-aligned and it is not part of the Go heap,
// so the garbage collector never scans or moves it (store no Go pointers in
// it).
//
// Use [NewHeap]; the zero value is invalid. A Heap must not be copied. It is
// safe for concurrent use; Close unmaps the memory.
type Heap struct {
	mem     []byte // the first size bytes of the mapping
	mapping *mapping
	closed  atomic.Bool
	cleanup runtime.Cleanup
}

// NewHeap maps size bytes (rounded up to the page size for the mapping) of
// zeroed private memory.
func NewHeap(size int) (*Heap, error) {
	if size <= 0 {
		return nil, fmt.Errorf("create heap segment of %d bytes: %w", size, sys.EINVAL)
	}
	mem, err := sys.Mmap(-1, 0, size, sys.PageSize(), sys.PROT_READ|sys.PROT_WRITE, sys.MAP_PRIVATE|sys.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("create heap segment of %d bytes: %w", size, err)
	}
	h := &Heap{mem: mem[:size], mapping: &mapping{mem: mem}}
	h.cleanup = runtime.AddCleanup(h, releaseMapping, h.mapping)
	return h, nil
}

// Bytes returns the memory. It is only valid until Close.
func (h *Heap) Bytes() []byte { return h.mem }

// Len returns the size in bytes.
func (h *Heap) Len() int { return len(h.mem) }

// Kind returns KindHeap.
func (h *Heap) Kind() Kind { return KindHeap }

// PageSize returns the base page size.
func (h *Heap) PageSize() int { return sys.PageSize() }

// Handle describes the segment. A heap segment cannot be shared with
// another process; the handle serves introspection.
func (h *Heap) Handle() Handle {
	return Handle{Kind: KindHeap, Size: int64(len(h.mem)), PageSize: sys.PageSize()}
}

// Close unmaps the memory. It is idempotent.
func (h *Heap) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	h.cleanup.Stop()
	if err := h.mapping.release(); err != nil {
		return fmt.Errorf("close heap segment: %w", err)
	}
	return nil
}
