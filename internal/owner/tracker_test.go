package owner

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

// newTracker returns a Tracker with one 64-byte class of count chunks in
// segment 0 and n connections of the given bound.
func newTracker(t testing.TB, cfg Config, count uint32, n, bound int) (*Tracker, []*ConnTrack) {
	t.Helper()
	tr := New(cfg)
	_, err := tr.AddSegment(0, 64, count)
	require.NoError(t, err)
	conns := make([]*ConnTrack, n)
	for i := range conns {
		conns[i], err = tr.AddConn(uint32(i), bound)
		require.NoError(t, err)
	}
	return tr, conns
}

// publish loans a chunk and delivers it on conns.
func publish(t testing.TB, tr *Tracker, conns ...*ConnTrack) (uint32, parallax.ChunkRef) {
	t.Helper()
	idx, ref, err := tr.Loan(0)
	require.NoError(t, err)
	for _, c := range conns {
		require.NoError(t, tr.Deliver(c, idx))
	}
	require.NoError(t, tr.Published(idx))
	return idx, ref
}

func TestLIFOReuse(t *testing.T) {
	t.Parallel()
	tr, c := newTracker(t, Config{}, 4, 1, 4)
	var refs []parallax.ChunkRef
	for i := range 3 {
		idx, ref := publish(t, tr, c[0])
		require.EqualValues(t, i, idx, "slot 0 goes out first, then in order")
		require.EqualValues(t, 1, ref.Gen())
		refs = append(refs, ref)
	}
	require.NoError(t, tr.Return(c[0], refs[1]))
	require.NoError(t, tr.Return(c[0], refs[0]))
	idx, ref, err := tr.Loan(0)
	require.NoError(t, err)
	require.EqualValues(t, 0, idx, "the most recently freed chunk goes out next")
	require.Equal(t, parallax.MakeRef(0, 0, 2), ref)
	idx, _, err = tr.Loan(0)
	require.NoError(t, err)
	require.EqualValues(t, 1, idx)
	idx, _, err = tr.Loan(0)
	require.NoError(t, err)
	require.EqualValues(t, 3, idx, "then the never-used one")
	_, _, err = tr.Loan(0)
	require.ErrorIs(t, err, parallax.ErrPoolExhausted)
}

func TestGrowthKeepsHotChunksOnTop(t *testing.T) {
	t.Parallel()
	tr, c := newTracker(t, Config{}, 2, 1, 8)
	_, r0 := publish(t, tr, c[0])
	require.NoError(t, tr.Return(c[0], r0)) // chunk 0 is hot and free, chunk 1 never used
	cl, err := tr.AddSegment(5, 64, 3)      // growth: indices 2..4 in segment 5
	require.NoError(t, err)
	require.Zero(t, cl, "same chunk size, same class")
	var got []uint32
	for range 5 {
		idx, ref, err := tr.Loan(0)
		require.NoError(t, err)
		got = append(got, idx)
		if idx >= 2 {
			require.Equal(t, parallax.MakeRef(5, idx-2, 1), ref)
		}
	}
	require.Equal(t, []uint32{0, 1, 2, 3, 4}, got)
	_, err = tr.AddSegment(5, 64, 1)
	require.ErrorIs(t, err, ErrSegment)
	cl, err = tr.AddSegment(6, 4096, 1)
	require.NoError(t, err)
	require.Equal(t, 1, cl)
	got1, ok := tr.ClassFor(65)
	require.True(t, ok)
	require.Equal(t, 1, got1)
	got0, _ := tr.ClassFor(64)
	require.Equal(t, 0, got0)
	_, ok = tr.ClassFor(4097)
	require.False(t, ok)
}

func TestGenerationNeverZero(t *testing.T) {
	t.Parallel()
	tr, _ := newTracker(t, Config{}, 1, 0, 1)
	tr.chunks[0].gen = parallax.GenMask
	idx, ref, err := tr.Loan(0)
	require.NoError(t, err)
	require.EqualValues(t, 1, ref.Gen())
	require.NoError(t, tr.Unloan(idx))
}

func TestReturnValidation(t *testing.T) {
	t.Parallel()
	tr, c := newTracker(t, Config{}, 4, 3, 4)
	_, both := publish(t, tr, c[0], c[1]) // fan-out 2
	_, only1 := publish(t, tr, c[1])
	before := tr.Stats()

	cases := []struct {
		name   string
		conn   *ConnTrack
		ref    parallax.ChunkRef
		reason error
	}{
		{"never delivered on this connection", c[2], both, parallax.ErrNotHeld},
		{"delivered on another connection", c[0], only1, parallax.ErrNotHeld},
		{"old generation", c[0], parallax.MakeRef(0, both.Slot(), both.Gen()+1), parallax.ErrStaleRef},
		{"generation 0", c[0], parallax.MakeRef(0, both.Slot(), 0), parallax.ErrInvalidRef},
		{"slot out of range", c[0], parallax.MakeRef(0, 4, 1), parallax.ErrInvalidRef},
		{"segment absent", c[0], parallax.MakeRef(1, 0, 1), parallax.ErrInvalidRef},
		{"segment far out", c[0], parallax.MakeRef(parallax.MaxPools-1, 0, 1), parallax.ErrInvalidRef},
		{"nil", c[0], parallax.NilRef, parallax.ErrInvalidRef},
	}
	for _, tc := range cases {
		err := tr.Return(tc.conn, tc.ref)
		require.ErrorIs(t, err, parallax.ErrInvalidRef, tc.name)
		require.ErrorIs(t, err, tc.reason, tc.name)
		var re *ReturnError
		require.ErrorAs(t, err, &re, tc.name)
		require.Equal(t, tc.conn.ID(), re.Conn)
		after := tr.Stats()
		require.Equal(t, before.Free, after.Free, "%s freed something", tc.name)
		require.Equal(t, before.Units, after.Units, tc.name)
	}
	require.EqualValues(t, 7, c[0].BadReturns())

	require.NoError(t, tr.Return(c[0], both))
	require.Equal(t, before.Free, tr.Stats().Free, "still held by connection 1")
	err := tr.Return(c[0], both)
	require.ErrorIs(t, err, parallax.ErrNotHeld, "double return")
	require.Equal(t, before.Free, tr.Stats().Free, "a double return frees nothing")
	require.NoError(t, tr.Return(c[1], both))
	require.Equal(t, before.Free+1, tr.Stats().Free, "the last holder's return frees it")
	require.NoError(t, checkInvariants(tr))
}

func TestBoundAndClose(t *testing.T) {
	t.Parallel()
	tr, c := newTracker(t, Config{}, 4, 1, 2)
	_, r0 := publish(t, tr, c[0])
	publish(t, tr, c[0])
	idx, _, err := tr.Loan(0)
	require.NoError(t, err)
	require.ErrorIs(t, tr.Deliver(c[0], idx), ErrBound)
	require.NoError(t, tr.Return(c[0], r0)) // drained one
	require.NoError(t, tr.Deliver(c[0], idx))
	require.ErrorIs(t, tr.Deliver(c[0], idx), ErrDelivered)
	require.ErrorIs(t, tr.Unloan(idx), ErrDelivered)
	require.NoError(t, tr.Published(idx))
	require.ErrorIs(t, tr.Published(idx), ErrNotLoaned)

	tr.CloseConn(c[0])
	require.False(t, c[0].Live())
	idx, _, err = tr.Loan(0)
	require.NoError(t, err)
	require.ErrorIs(t, tr.Deliver(c[0], idx), ErrConnClosed)
	other, _ := newTracker(t, Config{}, 1, 1, 1)
	require.ErrorIs(t, tr.Deliver(other.conns[0], idx), ErrConnClosed, "a ConnTrack of another Tracker")
	require.NoError(t, tr.Unloan(idx))
}

func TestReclaimConn(t *testing.T) {
	t.Parallel()
	tr, c := newTracker(t, Config{History: 1}, 8, 2, 8)
	_, shared := publish(t, tr, c[0], c[1])
	publish(t, tr, c[0])
	publish(t, tr, c[0])
	idx, _, err := tr.Loan(0)
	require.NoError(t, err)
	require.NoError(t, tr.Deliver(c[0], idx))
	require.NoError(t, tr.HistoryPush(idx))
	require.NoError(t, tr.Published(idx))
	require.Equal(t, 4, tr.Stats().InUse)

	require.Equal(t, 4, tr.ReclaimConn(c[0]))
	require.True(t, c[0].Gone())
	s := tr.Stats()
	require.Equal(t, 2, s.InUse, "the chunk connection 1 holds and the one in history stay")
	require.EqualValues(t, 4, s.Reclaimed)
	require.Zero(t, tr.ReclaimConn(c[0]), "reclaiming twice")
	require.ErrorIs(t, tr.Return(c[0], shared), parallax.ErrNotHeld)
	require.NoError(t, tr.Return(c[1], shared))
	require.Equal(t, []uint32{idx}, tr.History(nil))
	require.Equal(t, 1, tr.Stats().InUse)

	// History replay to a new connection, then eviction by the next push.
	c2, err := tr.AddConn(9, 4)
	require.NoError(t, err)
	require.NoError(t, tr.Deliver(c2, idx))
	require.Equal(t, tr.Ref(idx), parallax.MakeRef(0, idx, 1))
	n, _, err := tr.Loan(0)
	require.NoError(t, err)
	require.NoError(t, tr.HistoryPush(n))
	require.NoError(t, tr.Published(n))
	require.Equal(t, []uint32{n}, tr.History(nil))
	require.Equal(t, 2, tr.Stats().InUse, "the evicted chunk stays while c2 holds it")
	require.Equal(t, 1, tr.ReclaimConn(c2))
	require.Equal(t, 1, tr.Stats().InUse)
	require.NoError(t, checkInvariants(tr))
}

func TestLoanLimit(t *testing.T) {
	t.Parallel()
	tr, _ := newTracker(t, Config{MaxLoans: 2}, 4, 0, 1)
	a, _, err := tr.Loan(0)
	require.NoError(t, err)
	_, _, err = tr.Loan(0)
	require.NoError(t, err)
	_, _, err = tr.Loan(0)
	require.ErrorIs(t, err, parallax.ErrLimit)
	require.NoError(t, tr.Unloan(a))
	_, _, err = tr.Loan(0)
	require.NoError(t, err)
	_, _, err = tr.Loan(3)
	require.ErrorIs(t, err, ErrClass)
	_, err = tr.AddConn(1, 0)
	require.Error(t, err)
}

func TestDataPathAllocs(t *testing.T) {
	tr, c := newTracker(t, Config{History: 2}, 64, 4, 8)
	n := testing.AllocsPerRun(200, func() {
		idx, ref, err := tr.Loan(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range c {
			if err := tr.Deliver(x, idx); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.HistoryPush(idx); err != nil {
			t.Fatal(err)
		}
		if err := tr.Published(idx); err != nil {
			t.Fatal(err)
		}
		for _, x := range c {
			if err := tr.Return(x, ref); err != nil {
				t.Fatal(err)
			}
		}
	})
	require.Zero(t, n)
}

// TestLoaned follows one chunk through loan, history, publish and reuse:
// Loaned is true exactly between Loan and Published or Unloan.
func TestLoaned(t *testing.T) {
	t.Parallel()
	tr, _ := newTracker(t, Config{History: 1}, 2, 0, 1)
	require.False(t, tr.Loaned(0))
	require.False(t, tr.Loaned(99))
	idx, _, err := tr.Loan(0)
	require.NoError(t, err)
	require.True(t, tr.Loaned(idx))
	require.NoError(t, tr.HistoryPush(idx))
	require.True(t, tr.Loaned(idx))
	require.NoError(t, tr.Published(idx))
	require.False(t, tr.Loaned(idx), "in history, not loaned")
	idx2, _, err := tr.Loan(0)
	require.NoError(t, err)
	require.NoError(t, tr.Unloan(idx2))
	require.False(t, tr.Loaned(idx2))
}
