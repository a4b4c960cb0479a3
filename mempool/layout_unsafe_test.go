package mempool

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestLayout pins the shared-memory ABI: changing any number here requires
// bumping LayoutVersion.
func TestLayout(t *testing.T) {
	t.Parallel()
	require.Equal(t, uint64(0x004c4f4f50584c50), Magic)
	require.Equal(t, "PLXPOOL\x00", string([]byte{0x50, 0x4c, 0x58, 0x50, 0x4f, 0x4f, 0x4c, 0x00}))
	require.Equal(t, uint32(3), LayoutVersion)

	require.Equal(t, 128, LineSize)
	require.Equal(t, 8, wordSlots)
	require.Equal(t, 16, bitmapStride)
	require.Equal(t, 0, HeaderOffset)
	require.Equal(t, 128, HeaderSize)
	require.Equal(t, 128, StatsOffset)
	require.Equal(t, 256, HintOffset)
	require.Equal(t, 384, BitmapOffset)
	require.Equal(t, 64, ChunkHeaderSize)
	require.Equal(t, 64, ChunkAlign)
	require.Equal(t, 1<<24, MaxCount)
	require.Equal(t, 1<<24-1, MaxRefCount)
	require.Equal(t, 1<<16-1, MaxOwner)

	var h header
	require.Equal(t, uintptr(HeaderSize), unsafe.Sizeof(h))
	require.Equal(t, uintptr(0), unsafe.Offsetof(h.magic))
	require.Equal(t, uintptr(8), unsafe.Offsetof(h.version))
	require.Equal(t, uintptr(12), unsafe.Offsetof(h.poolID))
	require.Equal(t, uintptr(16), unsafe.Offsetof(h.chunkSize))
	require.Equal(t, uintptr(20), unsafe.Offsetof(h.count))
	require.Equal(t, uintptr(24), unsafe.Offsetof(h.bitmapOff))
	require.Equal(t, uintptr(32), unsafe.Offsetof(h.headersOff))
	require.Equal(t, uintptr(40), unsafe.Offsetof(h.mgmtSize))
	require.Equal(t, uintptr(48), unsafe.Offsetof(h.payloadSize))

	var s statsLine
	require.Equal(t, uintptr(StatsSize), unsafe.Sizeof(s))
	require.Equal(t, uintptr(0), unsafe.Offsetof(s.loansTotal))
	require.Equal(t, uintptr(16), unsafe.Offsetof(s.highWater))
	require.Equal(t, uintptr(24), unsafe.Offsetof(s.failedLoans))

	var hl hintLine
	require.Equal(t, uintptr(HintSize), unsafe.Sizeof(hl))
	require.Equal(t, uintptr(0), unsafe.Offsetof(hl.hint))
	require.Equal(t, uintptr(8), unsafe.Offsetof(hl.freesTotal))

	var ch chunkHeader
	require.Equal(t, uintptr(ChunkHeaderSize), unsafe.Sizeof(ch))
	require.Equal(t, uintptr(0), unsafe.Offsetof(ch.ctl))
	require.Equal(t, uintptr(8), unsafe.Offsetof(ch.length))
	require.Equal(t, uintptr(16), unsafe.Offsetof(ch.seq))
	require.Equal(t, uintptr(24), unsafe.Offsetof(ch.timestamp))
	require.Equal(t, uintptr(32), unsafe.Offsetof(ch.origin))

	// ctl word bit layout.
	require.Equal(t, uint64(0xABCDEF_1234_000007), makeCtl(0xABCDEF, 0x1234, 7))
	require.Equal(t, uint32(0xABCDEF), ctlGen(makeCtl(0xABCDEF, 0x1234, 7)))
	require.Equal(t, uint16(0x1234), ctlOwner(makeCtl(0xABCDEF, 0x1234, 7)))
	require.Equal(t, uint32(7), ctlRef(makeCtl(0xABCDEF, 0x1234, 7)))

	// Derived sizes for a few classes.
	for _, tc := range []struct {
		c              Class
		headers, total int
	}{
		// One 128-byte line per bitmap word of 8 slots.
		{Class{64, 1}, 512, 576},
		{Class{128, 8}, 512, 512 + 8*64},
		{Class{128, 9}, 640, 640 + 9*64},
		{Class{128, 64}, 384 + 8*128, 384 + 8*128 + 64*64},
		{Class{4096, 1024}, 384 + 128*128, 384 + 128*128 + 1024*64},
		{Class{4096, 1025}, 384 + 129*128, 384 + 129*128 + 1025*64},
		{Class{64, MaxCount}, 384 + MaxCount*16, 384 + MaxCount*16 + MaxCount*64},
	} {
		require.Equal(t, tc.headers, tc.c.headersOffset(), "%v", tc.c)
		require.Equal(t, tc.total, MgmtSize(tc.c), "%v", tc.c)
		require.Zero(t, tc.c.headersOffset()%LineSize)
	}
	require.Zero(t, MgmtSize(Class{100, 1}))
	require.Zero(t, MgmtSize(Class{64, 0}))
	require.Zero(t, MgmtSize(Class{64, MaxCount + 1}))
}

func TestHeapRegionAligned(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 7, 64, 100, 4096, 1 << 20} {
		b := HeapRegion(n)
		require.Len(t, b, n)
		require.Equal(t, n, cap(b))
		require.Zero(t, uintptr(unsafe.Pointer(&b[0]))%RegionAlign)
	}
	require.Nil(t, HeapRegion(0))
}
