package segment

import (
	"testing"

	"github.com/stretchr/testify/require"
)

type point struct {
	X, Y float64
	Tag  [4]uint8
}

type withPtr struct {
	N int
	P *int
}

func TestView(t *testing.T) {
	t.Parallel()
	h, err := NewHeap(4096)
	require.NoError(t, err)
	defer h.Close()
	p, err := View[point](h.Bytes())
	require.NoError(t, err)
	p.X, p.Y = 1.5, -2
	p.Tag[3] = 9
	q, err := View[point](h.Bytes())
	require.NoError(t, err)
	require.Equal(t, *p, *q, "two views of the same bytes see the same value")
	require.Equal(t, byte(9), h.Bytes()[19])

	_, err = View[point](h.Bytes()[:8])
	require.Error(t, err, "too short")
	_, err = View[point](h.Bytes()[1:])
	require.Error(t, err, "misaligned")
	_, err = View[withPtr](h.Bytes())
	require.ErrorIs(t, err, ErrNotFixedLayout)
	require.ErrorContains(t, err, ".P has kind ptr")
	_, err = View[string](h.Bytes())
	require.ErrorIs(t, err, ErrNotFixedLayout)
}
