package buffer

import (
	"context"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// An Allocator hands out writable buffers. Alloc returns a buffer of length n
// (its capacity may be larger), holding the only reference to its memory,
// with zero metadata. It may wait for memory to be released until ctx is
// done. Implementations are safe for concurrent use.
type Allocator interface {
	Alloc(ctx context.Context, n int) (*Buffer, error)
}

// Heap is the allocator of plain Go memory: every Alloc allocates. It is the
// fallback when no pool fits. The zero value is ready to use.
type Heap struct{}

// Alloc allocates n bytes of Go memory.
func (Heap) Alloc(_ context.Context, n int) (*Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("allocate %d bytes: %w", n, ErrRange)
	}
	return NewMemory(make([]byte, n), nil, nil, 0, parallax.NilRef).NewBuffer(n), nil
}
