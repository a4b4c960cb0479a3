package idlegate_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/idlegate"
)

// A gate is due exactly once: after Close, with no hold and nothing busy,
// whichever of them ends last; no hold succeeds after that.
func TestGate(t *testing.T) {
	runs := 0
	g := idlegate.New(func() { runs++ })
	require.False(t, g.Due(false), "open")
	require.True(t, g.Hold())
	g.Close()
	require.True(t, g.Closed())
	require.False(t, g.Due(false), "a hold lasts")
	g.Unhold()
	require.False(t, g.Due(true), "the engine has something out")
	due := g.Due(false)
	require.True(t, due)
	g.Run(due)
	require.Equal(t, 1, runs)
	require.False(t, g.Due(false), "due once")
	require.False(t, g.Hold(), "no hold after idle")
	g.Run(false)
	require.Equal(t, 1, runs)

	var zero idlegate.Gate
	zero.Close()
	zero.Run(zero.Due(false)) // no onIdle: nothing runs, nothing panics
}
