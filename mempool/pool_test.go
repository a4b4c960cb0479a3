package mempool

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

func TestFormatAttach(t *testing.T) {
	t.Parallel()
	c := Class{ChunkSize: 256, Count: 100}
	mgmt := HeapRegion(MgmtSize(c))
	payload := HeapRegion(c.PayloadSize())
	p, err := Format(mgmt, 7, c)
	require.NoError(t, err)
	require.Equal(t, uint16(7), p.ID())
	require.Equal(t, c, p.Class())
	require.True(t, p.Audit().AllFree(), "%v", p.Audit())

	q, err := Attach(mgmt, payload)
	require.NoError(t, err)
	require.Equal(t, uint16(7), q.ID())
	require.Equal(t, c, q.Class())

	// A chunk loaned through one view is visible through the other.
	ref, err := q.Loan(3)
	require.NoError(t, err)
	st, err := p.Slot(ref.Slot())
	require.NoError(t, err)
	require.Equal(t, SlotState{Gen: 1, Owner: 3, RefCount: 1}, st)
	require.Equal(t, uint64(1), p.Stats().InUse)
	freed, err := p.Release(ref)
	require.NoError(t, err)
	require.True(t, freed)
	require.True(t, q.Audit().AllFree())

	// Payload set separately.
	r, err := Attach(mgmt, nil)
	require.NoError(t, err)
	ref, err = r.Loan(1)
	require.NoError(t, err)
	_, err = r.Payload(ref)
	require.ErrorIs(t, err, ErrNoPayload)
	require.ErrorIs(t, r.SetPayload(payload[:100]), ErrRegion)
	require.NoError(t, r.SetPayload(payload))
	b, err := r.Payload(ref)
	require.NoError(t, err)
	require.Len(t, b, 256)
	require.Equal(t, 256, cap(b))
	_, err = r.Release(ref)
	require.NoError(t, err)
}

func TestFormatRejects(t *testing.T) {
	t.Parallel()
	good := Class{ChunkSize: 64, Count: 10}
	for _, tc := range []struct {
		name string
		mgmt []byte
		c    Class
		want error
	}{
		{"zero chunk size", HeapRegion(4096), Class{0, 10}, ErrBadClass},
		{"unaligned chunk size", HeapRegion(4096), Class{100, 10}, ErrBadClass},
		{"zero count", HeapRegion(4096), Class{64, 0}, ErrBadClass},
		{"count too large", HeapRegion(4096), Class{64, MaxCount + 1}, ErrBadClass},
		{"area too small", HeapRegion(MgmtSize(good) - 1), good, ErrRegion},
		{"nil area", nil, good, ErrRegion},
		{"misaligned area", HeapRegion(MgmtSize(good) + 8)[4:], good, ErrRegion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Format(tc.mgmt, 1, tc.c)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestAttachRejectsCorrupt(t *testing.T) {
	t.Parallel()
	c := Class{ChunkSize: 128, Count: 70}
	for _, tc := range []struct {
		name   string
		mutate func(b []byte) []byte
		want   error
	}{
		{"bad magic", func(b []byte) []byte { b[0] ^= 1; return b }, parallax.ErrCorrupt},
		{"bad version", func(b []byte) []byte { b[8] = 9; return b }, parallax.ErrCorrupt},
		{"pool id too large", func(b []byte) []byte { put32(b, 12, 1<<16); return b }, parallax.ErrCorrupt},
		{"chunk size not multiple", func(b []byte) []byte { put32(b, 16, 100); return b }, parallax.ErrCorrupt},
		{"chunk size grown", func(b []byte) []byte { put32(b, 16, 256); return b }, parallax.ErrCorrupt},
		{"count zero", func(b []byte) []byte { put32(b, 20, 0); return b }, parallax.ErrCorrupt},
		{"count grown", func(b []byte) []byte { put32(b, 20, 1000); return b }, parallax.ErrCorrupt},
		{"count huge", func(b []byte) []byte { put32(b, 20, 1<<31); return b }, parallax.ErrCorrupt},
		{"bitmap offset", func(b []byte) []byte { put64(b, 24, 8); return b }, parallax.ErrCorrupt},
		{"headers offset", func(b []byte) []byte { put64(b, 32, 1<<40); return b }, parallax.ErrCorrupt},
		{"mgmt size", func(b []byte) []byte { put64(b, 40, 1); return b }, parallax.ErrCorrupt},
		{"payload size", func(b []byte) []byte { put64(b, 48, 1); return b }, parallax.ErrCorrupt},
		{"truncated area", func(b []byte) []byte { return b[:len(b)-1] }, parallax.ErrCorrupt},
		{"header only", func(b []byte) []byte { return b[:HeaderSize] }, parallax.ErrCorrupt},
		{"too short for header", func(b []byte) []byte { return b[:HeaderSize-1] }, parallax.ErrCorrupt},
		{"empty", func(b []byte) []byte { return nil }, parallax.ErrCorrupt},
		{"misaligned", func(b []byte) []byte { return b[1:] }, ErrRegion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mgmt := HeapRegion(MgmtSize(c))
			_, err := Format(mgmt, 1, c)
			require.NoError(t, err)
			_, err = Attach(tc.mutate(mgmt), nil)
			require.ErrorIs(t, err, tc.want)
		})
	}
	t.Run("payload too small", func(t *testing.T) {
		t.Parallel()
		mgmt := HeapRegion(MgmtSize(c))
		_, err := Format(mgmt, 1, c)
		require.NoError(t, err)
		_, err = Attach(mgmt, make([]byte, c.PayloadSize()-1))
		require.ErrorIs(t, err, ErrRegion)
	})
}

func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func put64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

func TestLoanReleaseAddRef(t *testing.T) {
	t.Parallel()
	p := newPool(t, 2, Class{ChunkSize: 64, Count: 4})

	a, err := p.Loan(5)
	require.NoError(t, err)
	require.Equal(t, uint32(2), a.Pool())
	require.Equal(t, uint32(1), a.Gen())
	require.NoError(t, p.Validate(a))

	require.NoError(t, p.AddRef(a, 2)) // 3 holders
	st, _ := p.Slot(a.Slot())
	require.Equal(t, SlotState{Gen: 1, Owner: 5, RefCount: 3}, st)
	for i, wantFreed := range []bool{false, false, true} {
		freed, err := p.Release(a)
		require.NoError(t, err, "release %d", i)
		require.Equal(t, wantFreed, freed, "release %d", i)
	}
	st, _ = p.Slot(a.Slot())
	require.Equal(t, SlotState{Gen: 2, Owner: 0, RefCount: 0}, st)

	// Double release and AddRef on the old ref are stale.
	_, err = p.Release(a)
	require.ErrorIs(t, err, parallax.ErrStaleRef)
	require.ErrorIs(t, p.AddRef(a, 1), parallax.ErrStaleRef)
	require.ErrorIs(t, p.Validate(a), parallax.ErrStaleRef)
	var re *RefError
	require.ErrorAs(t, p.AddRef(a, 1), &re)
	require.Equal(t, a, re.Ref)
	require.Equal(t, "addref", re.Op)

	// A forged ref with the current generation of a free slot is not held.
	forged := parallax.MakeRef(2, a.Slot(), 2)
	_, err = p.Release(forged)
	require.ErrorIs(t, err, parallax.ErrNotHeld)

	// AddRef 0 is a validated no-op; overflow is refused.
	b, err := p.Loan(5)
	require.NoError(t, err)
	require.NoError(t, p.AddRef(b, 0))
	require.NoError(t, p.AddRef(b, MaxRefCount-1))
	require.ErrorIs(t, p.AddRef(b, 1), ErrRefCountOverflow)
	st, _ = p.Slot(b.Slot())
	require.Equal(t, uint32(MaxRefCount), st.RefCount)
	freed, err := p.Release(b)
	require.NoError(t, err)
	require.False(t, freed)
	// Skip the other 16M releases: drop the count to 1 directly.
	p.chunks[b.Slot()].ctl = makeCtl(b.Gen(), 5, 1)
	freed, err = p.Release(b)
	require.NoError(t, err)
	require.True(t, freed)
	require.True(t, p.Audit().AllFree())
}

func TestExhaustionAndStats(t *testing.T) {
	t.Parallel()
	const n = 130 // spans three bitmap words, the last partial
	p := newPool(t, 1, Class{ChunkSize: 64, Count: n})
	seen := map[uint32]bool{}
	var refs []parallax.ChunkRef
	for range n {
		r, err := p.Loan(1)
		require.NoError(t, err)
		require.False(t, seen[r.Slot()], "slot %d handed out twice", r.Slot())
		require.Less(t, r.Slot(), uint32(n))
		seen[r.Slot()] = true
		refs = append(refs, r)
	}
	for i := range 3 {
		_, err := p.Loan(1)
		require.ErrorIs(t, err, parallax.ErrPoolExhausted)
		require.Equal(t, uint64(i+1), p.Stats().FailedLoans)
	}
	s := p.Stats()
	require.Equal(t, Stats{ID: 1, ChunkSize: 64, Count: n, InUse: n, HighWater: n, FailedLoans: 3, Loans: n}, s)

	for _, r := range refs[:n-10] {
		_, err := p.Release(r)
		require.NoError(t, err)
	}
	s = p.Stats()
	require.Equal(t, uint64(10), s.InUse)
	require.Equal(t, uint64(n), s.HighWater, "high water keeps its peak")

	// Freed slots come back, under a new generation.
	r, err := p.Loan(1)
	require.NoError(t, err)
	require.Equal(t, uint32(2), r.Gen())
	refs = append(refs[n-10:], r)
	for _, r := range refs {
		_, err := p.Release(r)
		require.NoError(t, err)
	}
	a := p.Audit()
	require.True(t, a.AllFree(), "%v", a)
	require.Equal(t, uint64(0), p.Stats().InUse)
}

func TestInvalidRefs(t *testing.T) {
	t.Parallel()
	p := newPool(t, 3, Class{ChunkSize: 64, Count: 10})
	held, err := p.Loan(1)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		ref  parallax.ChunkRef
		want error
	}{
		{"nil", parallax.NilRef, parallax.ErrInvalidRef},
		{"other pool", parallax.MakeRef(4, held.Slot(), held.Gen()), parallax.ErrInvalidRef},
		{"slot == count", parallax.MakeRef(3, 10, 1), parallax.ErrInvalidRef},
		{"slot max", parallax.MakeRef(3, parallax.MaxSlots-1, 1), parallax.ErrInvalidRef},
		{"gen 0", parallax.MakeRef(3, held.Slot(), 0), parallax.ErrInvalidRef},
		{"all ones", parallax.ChunkRef(^uint64(0)), parallax.ErrInvalidRef},
		{"wrong gen", parallax.MakeRef(3, held.Slot(), held.Gen()+1), parallax.ErrStaleRef},
		{"max gen", parallax.MakeRef(3, held.Slot(), parallax.GenMask), parallax.ErrStaleRef},
		{"free slot", parallax.MakeRef(3, (held.Slot()+1)%10, 1), parallax.ErrNotHeld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Release(tc.ref)
			require.ErrorIs(t, err, tc.want)
			require.ErrorIs(t, p.AddRef(tc.ref, 1), tc.want)
			require.ErrorIs(t, p.Validate(tc.ref), tc.want)
			_, err = p.Payload(tc.ref)
			require.ErrorIs(t, err, tc.want)
			_, err = p.Data(tc.ref)
			require.ErrorIs(t, err, tc.want)
			_, err = p.Meta(tc.ref)
			require.ErrorIs(t, err, tc.want)
			_, _, err = p.View(tc.ref)
			require.ErrorIs(t, err, tc.want)
			require.ErrorIs(t, p.SetMeta(tc.ref, Meta{}), tc.want)
			require.ErrorIs(t, p.SetLength(tc.ref, 0), tc.want)
		})
	}
	// Nothing above changed the held chunk.
	st, err := p.Slot(held.Slot())
	require.NoError(t, err)
	require.Equal(t, SlotState{Gen: 1, Owner: 1, RefCount: 1}, st)
	_, err = p.Slot(10)
	require.ErrorIs(t, err, parallax.ErrInvalidRef)
}

func TestMetaAndData(t *testing.T) {
	t.Parallel()
	p := newPool(t, 1, Class{ChunkSize: 128, Count: 2})
	r, err := p.Loan(9)
	require.NoError(t, err)
	m := Meta{Length: 5, Seq: 42, Timestamp: 1700000000000000000, Origin: 77}
	require.NoError(t, p.SetMeta(r, m))
	got, err := p.Meta(r)
	require.NoError(t, err)
	require.Equal(t, m, got)

	b, err := p.Payload(r)
	require.NoError(t, err)
	copy(b, "hello, world")
	d, err := p.Data(r)
	require.NoError(t, err)
	require.Equal(t, "hello", string(d))
	v, vm, err := p.View(r)
	require.NoError(t, err)
	require.Equal(t, "hello", string(v), "View is Data")
	require.Equal(t, m, vm, "View is Meta")
	require.Equal(t, cap(d), cap(v), "both end at the chunk's end")

	require.NoError(t, p.SetLength(r, 128))
	require.ErrorIs(t, p.SetLength(r, 129), ErrRegion)
	require.ErrorIs(t, p.SetLength(r, -1), ErrRegion)
	require.ErrorIs(t, p.SetMeta(r, Meta{Length: 129}), ErrRegion)

	// A peer writing a bogus length is caught, not trusted.
	p.chunks[r.Slot()].length = 1 << 40
	_, err = p.Data(r)
	require.ErrorIs(t, err, parallax.ErrCorrupt)
	_, _, err = p.View(r)
	require.ErrorIs(t, err, parallax.ErrCorrupt)

	// Loan zeroes metadata of a reused slot.
	_, err = p.Release(r)
	require.NoError(t, err)
	var refs []parallax.ChunkRef
	for range 2 {
		r, err := p.Loan(9)
		require.NoError(t, err)
		got, err := p.Meta(r)
		require.NoError(t, err)
		require.Equal(t, Meta{}, got)
		refs = append(refs, r)
	}
	// The two chunks do not overlap.
	b0, _ := p.Payload(refs[0])
	b1, _ := p.Payload(refs[1])
	clear(b1)
	for i := range b0 {
		b0[i] = 0xff
	}
	require.Equal(t, make([]byte, 128), b1)
}

func TestAudit(t *testing.T) {
	t.Parallel()
	p := newPool(t, 1, Class{ChunkSize: 64, Count: 100})
	r1, err := p.Loan(1)
	require.NoError(t, err)
	r2, err := p.Loan(1)
	require.NoError(t, err)

	// Simulate a loaner killed between clearing a bit and claiming ctl.
	lost := uint32(50)
	*p.word(lost / wordSlots) &^= 1 << (lost % wordSlots)
	// Simulate a set bit over a held slot and two corrupt ctl words.
	*p.word(r1.Slot() / wordSlots) |= 1 << (r1.Slot() % wordSlots)
	p.chunks[60].ctl = makeCtl(0, 0, 0)
	p.chunks[61].ctl = makeCtl(4, 9, 0)

	a := p.Audit()
	require.Equal(t, Audit{Count: 100, Free: 96, InUse: 2, BitFree: 98, LostFree: 1, FalseFree: 1, Corrupt: 2}, a)
	require.False(t, a.AllFree())
	require.Contains(t, a.String(), "lostfree=1")

	// Loan never hands out the held slot whose bit was wrongly set, and
	// never the corrupt ones (until repaired).
	var refs []parallax.ChunkRef
	for {
		r, err := p.Loan(2)
		if err != nil {
			require.ErrorIs(t, err, parallax.ErrPoolExhausted)
			break
		}
		require.NotEqual(t, r1.Slot(), r.Slot())
		require.NotEqual(t, r2.Slot(), r.Slot())
		refs = append(refs, r)
	}
	require.Len(t, refs, 95) // 100 - 2 held - 1 lost - 2 corrupt
	for _, r := range refs {
		_, err := p.Release(r)
		require.NoError(t, err)
	}

	for _, r := range []parallax.ChunkRef{r1, r2} {
		_, err := p.Release(r)
		require.NoError(t, err)
	}
	// Everything released: the lost slot stays lost, and the corrupt ones
	// stay out of the bitmap (Loan took their bits and left them).
	require.Equal(t, Audit{Count: 100, Free: 98, InUse: 0, BitFree: 97, LostFree: 1, Corrupt: 2}, p.Audit())
}

func TestGenerationWrapsSkippingZero(t *testing.T) {
	t.Parallel()
	p := newPool(t, 1, Class{ChunkSize: 64, Count: 1})
	p.chunks[0].ctl = makeCtl(parallax.GenMask, 0, 0)
	r, err := p.Loan(1)
	require.NoError(t, err)
	require.Equal(t, uint32(parallax.GenMask), r.Gen())
	freed, err := p.Release(r)
	require.NoError(t, err)
	require.True(t, freed)
	r2, err := p.Loan(1)
	require.NoError(t, err)
	require.Equal(t, uint32(1), r2.Gen(), "generation wraps to 1, never 0")
	_, err = p.Release(r)
	require.ErrorIs(t, err, parallax.ErrStaleRef)
	_, err = p.Release(r2)
	require.NoError(t, err)
}

// Loans walk through the pool (next fit) instead of taking back the slot
// released a moment ago, whose lines are still hot in the releaser's cache;
// after the last slot they wrap around. High water stays exact.
func TestLoanNextFit(t *testing.T) {
	t.Parallel()
	p := newPool(t, 1, Class{ChunkSize: 64, Count: 130})
	var slots []uint32
	for range 2 * 130 {
		r, err := p.Loan(8)
		require.NoError(t, err)
		slots = append(slots, r.Slot())
		_, err = p.Release(r)
		require.NoError(t, err)
	}
	for i, s := range slots {
		require.Equal(t, uint32(i%130), s, "loan %d", i)
	}
	require.Equal(t, uint64(1), p.Stats().HighWater)
	a, err := p.Loan(8)
	require.NoError(t, err)
	b, err := p.Loan(8)
	require.NoError(t, err)
	require.Equal(t, uint64(2), p.Stats().HighWater)
	_, _ = p.Release(a)
	_, _ = p.Release(b)
	require.Equal(t, uint64(0), p.Stats().InUse)
}
