// This file checks, with unsafe pointer arithmetic, that every backend hands
// out memory whose base is aligned to its page size. The layout packages
// (mempool, ringbuf) rely on it: they align shared fields by offset, which
// only aligns them in memory when the base is aligned. The test converts a
// slice's data pointer to a uintptr for the modulo only; no pointer is made
// from an integer.

package segment_test

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/segment"
)

func TestBaseAlignment(t *testing.T) {
	t.Parallel()
	h, err := segment.NewHeap(100)
	require.NoError(t, err)
	defer h.Close()
	m, err := segment.NewMemfd(t.Name(), 100, segment.MemfdOptions{})
	require.NoError(t, err)
	defer m.Close()
	hp, err := segment.NewHugepage(t.Name(), 100, segment.HugepageOptions{NoPrefault: true})
	require.NoError(t, err)
	defer hp.Close()
	for _, s := range []segment.Segment{h, m, hp} {
		base := uintptr(unsafe.Pointer(unsafe.SliceData(s.Bytes())))
		require.Zero(t, base%uintptr(s.PageSize()), "%v base %#x, page size %d", s.Kind(), base, s.PageSize())
	}
}
