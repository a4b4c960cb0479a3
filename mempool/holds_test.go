package mempool

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

func TestHoldTable(t *testing.T) {
	t.Parallel()
	mem := HeapRegion(HoldTableSize(8))
	h, err := FormatHoldTable(mem, 8, 3)
	require.NoError(t, err)
	a, err := AttachHoldTable(mem)
	require.NoError(t, err)
	require.Equal(t, uint16(3), a.Client())
	require.Equal(t, 8, a.Cap())

	var idx []int
	for i := range 8 {
		k, err := h.Add(parallax.MakeRef(1, uint32(i), 1))
		require.NoError(t, err)
		idx = append(idx, k)
	}
	_, err = h.Add(parallax.MakeRef(1, 99, 1))
	require.ErrorIs(t, err, ErrHoldTableFull)
	require.Equal(t, 8, a.Len())
	require.True(t, a.Contains(parallax.MakeRef(1, 5, 1)))

	require.ErrorIs(t, h.Remove(idx[2], parallax.MakeRef(1, 3, 1)), parallax.ErrNotHeld, "wrong ref for the index")
	require.ErrorIs(t, h.Remove(-1, parallax.MakeRef(1, 3, 1)), parallax.ErrNotHeld)
	require.NoError(t, h.Remove(idx[2], parallax.MakeRef(1, 2, 1)))
	require.Len(t, a.Refs(), 7)
	require.False(t, a.Contains(parallax.MakeRef(1, 2, 1)))
	a.Clear()
	require.Zero(t, h.Len())

	mem[0] ^= 0xff
	_, err = AttachHoldTable(mem)
	require.ErrorIs(t, err, parallax.ErrCorrupt)
	_, err = AttachHoldTable(mem[:64])
	require.ErrorIs(t, err, parallax.ErrCorrupt)
}

func TestHoldTableConcurrentAdd(t *testing.T) {
	t.Parallel()
	const n = 256
	h, err := FormatHoldTable(HeapRegion(HoldTableSize(n)), n, 1)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				ref := parallax.MakeRef(uint32(g), uint32(i), 1)
				k, err := h.Add(ref)
				if err != nil {
					t.Error(err)
					return
				}
				if err := h.Remove(k, ref); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, h.Len())
}

func TestSweepFreesHeldSlots(t *testing.T) {
	t.Parallel()
	c := Class{ChunkSize: 64, Count: 100}
	p, err := Format(HeapRegion(MgmtSize(c)), 0, c)
	require.NoError(t, err)
	var refs []parallax.ChunkRef
	for range 30 {
		r, err := p.Loan(1)
		require.NoError(t, err)
		refs = append(refs, r)
	}
	require.NoError(t, p.AddRef(refs[0], 2))
	require.Equal(t, 30, p.Sweep())
	require.True(t, p.Audit().AllFree())
	require.Zero(t, p.Stats().InUse)
	_, err = p.Release(refs[0])
	require.ErrorIs(t, err, parallax.ErrStaleRef, "swept refs are stale")
}
