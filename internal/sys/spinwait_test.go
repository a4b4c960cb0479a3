package sys

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock advances by step on every read.
type fakeClock struct {
	t, step int64
	reads   int
}

func (c *fakeClock) now() int64 { c.reads++; c.t += c.step; return c.t }

func TestSpinUntil(t *testing.T) {
	t.Parallel()
	noPause := func(uint32) {}
	never := func() bool { return false }

	t.Run("budget in clock time, not looks", func(t *testing.T) {
		for _, step := range []int64{1, 10, 100} {
			c := &fakeClock{step: step}
			looks := 0
			ok := spinUntil(c.now, noPause, time.Duration(1000), nil, 4, func() bool { looks++; return false })
			require.False(t, ok)
			// The spin ends at the first clock read at or past 1000 ns:
			// a faster clock (bigger step) means fewer looks.
			require.GreaterOrEqual(t, c.t, int64(1000+step), "spun past the budget")
			require.Less(t, c.t, int64(1000+2*step+1), "spun well past the budget")
			require.Equal(t, (c.reads-1)*spinClockEvery, looks, "one clock read per %d looks", spinClockEvery)
		}
	})

	t.Run("ready ends the spin", func(t *testing.T) {
		c := &fakeClock{step: 1}
		looks := 0
		require.True(t, spinUntil(c.now, noPause, time.Hour, nil, 4, func() bool { looks++; return looks == 3 }))
		require.Equal(t, 3, looks)
		require.Equal(t, 1, c.reads, "no clock read before the %d-th look", spinClockEvery)
	})

	t.Run("zero or negative budget looks not at all", func(t *testing.T) {
		for _, b := range []time.Duration{0, -1, -time.Second} {
			c := &fakeClock{step: 1}
			looks := 0
			require.False(t, spinUntil(c.now, noPause, b, nil, 4, func() bool { looks++; return true }))
			require.Zero(t, looks)
			require.Zero(t, c.reads)
		}
	})

	t.Run("done ends the spin", func(t *testing.T) {
		done := make(chan struct{})
		close(done)
		c := &fakeClock{step: 0} // the clock never advances
		require.False(t, spinUntil(c.now, noPause, time.Hour, done, 4, never))
		require.Equal(t, 2, c.reads)
	})

	t.Run("pauses grow to maxPause", func(t *testing.T) {
		var pauses []uint32
		c := &fakeClock{step: 100}
		spinUntil(c.now, func(n uint32) { pauses = append(pauses, n) }, time.Duration(150), nil, 4, never)
		require.Equal(t, []uint32{1, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}, pauses)
	})

	t.Run("real clock", func(t *testing.T) {
		done := make(chan struct{})
		require.False(t, SpinUntil(time.Microsecond, done, 4, never))
		require.True(t, SpinUntil(time.Hour, done, 4, func() bool { return true }))
	})
}

func TestSpinUntilAllocs(t *testing.T) {
	n := 0
	ready := func() bool { n++; return n%50 == 0 }
	allocs := testing.AllocsPerRun(100, func() { SpinUntil(time.Hour, nil, 4, ready) })
	require.Zero(t, allocs)
}

func TestSpinPaced(t *testing.T) {
	t.Parallel()
	noPause := func(uint32) {}
	never := func() bool { return false }

	t.Run("looks at growing gaps up to maxGap", func(t *testing.T) {
		c := &fakeClock{step: 10}
		var at []int64
		ok := spinPaced(c.now, noPause, 1000, 50, 200, nil, func() bool { at = append(at, c.t); return false })
		require.False(t, ok)
		// The clock starts at 10: gaps 50, 100, 200, 200, ... from each
		// look, and a last look when the budget ends (at 1010).
		require.Equal(t, []int64{60, 160, 360, 560, 760, 960, 1010}, at)
	})

	t.Run("ready ends it", func(t *testing.T) {
		c := &fakeClock{step: 10}
		looks := 0
		require.True(t, spinPaced(c.now, noPause, 1000, 50, 200, nil, func() bool { looks++; return looks == 2 }))
		require.Equal(t, 2, looks)
	})

	t.Run("no budget, no look", func(t *testing.T) {
		c := &fakeClock{step: 10}
		require.False(t, spinPaced(c.now, noPause, 0, 50, 200, nil, func() bool { t.Fatal("looked"); return true }))
	})

	t.Run("done ends it", func(t *testing.T) {
		done := make(chan struct{})
		close(done)
		c := &fakeClock{step: 10}
		looks := 0
		require.False(t, spinPaced(c.now, noPause, time.Hour, 50, 200, done, func() bool { looks++; return false }))
		require.Equal(t, 1, looks)
	})

	t.Run("real clock", func(t *testing.T) {
		require.False(t, SpinPaced(time.Microsecond, 100*time.Nanosecond, time.Microsecond, nil, never))
		require.True(t, SpinPaced(time.Hour, 100*time.Nanosecond, time.Microsecond, nil, func() bool { return true }))
	})
}
