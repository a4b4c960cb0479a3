package owner_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/owner"
)

// TestRemoveSegment: a dedicated class's segment is removed once free, its
// chunks leave the free stack, the class is not chosen any more, and a
// later segment of that index reuses the chunk range (grow/retire cycles
// do not grow the Tracker).
func TestRemoveSegment(t *testing.T) {
	tr := owner.New(owner.Config{})
	_, err := tr.AddSegment(0, 64, 4)
	require.NoError(t, err)
	big, err := tr.AddSegment(1, 1<<20, 2)
	require.NoError(t, err)
	idx, _, err := tr.Loan(big)
	require.NoError(t, err)
	free, gens, ok := tr.SegmentIdle(1)
	require.True(t, ok)
	require.False(t, free)
	require.ErrorIs(t, tr.RemoveSegment(1), owner.ErrSegment, "chunks in use")
	require.NoError(t, tr.Unloan(idx))
	free, gens2, _ := tr.SegmentIdle(1)
	require.True(t, free)
	require.Equal(t, gens, gens2, "no loan since the first look")
	idx, _, err = tr.Loan(big)
	require.NoError(t, err)
	require.NoError(t, tr.Unloan(idx))
	free, gens3, _ := tr.SegmentIdle(1)
	require.True(t, free)
	require.NotEqual(t, gens2, gens3, "a loan in between shows")

	require.NoError(t, tr.RemoveSegment(1))
	st := tr.Stats()
	require.Equal(t, 1, st.Segments)
	require.Equal(t, 4, st.Chunks)
	require.Equal(t, 4, st.Free)
	_, fits := tr.ClassFor(1 << 20)
	require.False(t, fits, "a class without segments is not chosen")

	for range 100 {
		c, err := tr.AddSegment(1, 1<<20, 2)
		require.NoError(t, err)
		require.Equal(t, big, c, "the class is reused")
		i, ref, err := tr.Loan(c)
		require.NoError(t, err)
		require.EqualValues(t, 1, ref.Pool())
		require.Less(t, i, uint32(6), "the chunk range is reused")
		require.NoError(t, tr.Unloan(i))
		require.NoError(t, tr.RemoveSegment(1))
	}
	require.Equal(t, 4, tr.Stats().Chunks)
}
