package sys

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The calibration logic on synthetic points: a 2 GHz counter (0.5 ns per
// tick) starting at tick 1e9 and wall time 1e18.
const (
	synTick0 = uint64(1e9)
	synWall0 = int64(1e18)
)

func synPoint(ns int64) (uint64, int64) { return synTick0 + uint64(ns)*2, synWall0 + ns }

func TestTSCWarmsUpThenInterpolates(t *testing.T) {
	t.Parallel()
	var c tscState
	_, st := c.read(synTick0)
	require.Equal(t, tscExpired, st, "no slope before any point")
	c.calibrate(synPoint(0))
	_, st = c.read(synTick0 + 10)
	require.Equal(t, tscExpired, st, "one point gives no slope")
	c.calibrate(synPoint(int64(tscWarmup) / 2))
	_, st = c.read(synTick0 + 10)
	require.Equal(t, tscExpired, st, "two points closer than %v give no slope", tscWarmup)
	end := int64(tscWarmup)
	c.calibrate(synPoint(end))
	for _, dns := range []int64{0, 1, 1000, int64(tscSpan) / 2, int64(tscSpan) - 1} {
		tick, want := synPoint(end + dns)
		got, st := c.read(tick)
		require.Equal(t, tscOK, st, "%d ns after the anchor", dns)
		require.InDelta(t, want, got, 2, "%d ns after the anchor", dns)
	}
	tick, _ := synPoint(end + int64(tscSpan) + 1)
	_, st = c.read(tick)
	require.Equal(t, tscExpired, st, "an anchor serves %v", tscSpan)
	_, st = c.read(synTick0)
	require.Equal(t, tscExpired, st, "a counter behind the anchor (another processor's) calibrates")
}

func TestTSCFollowsSlewedClock(t *testing.T) {
	t.Parallel()
	var c tscState
	c.calibrate(synPoint(0))
	c.calibrate(synPoint(int64(tscWarmup)))
	// From here the wall clock runs 200 ppm fast (an NTP slew): each span
	// the prediction misses by 10 µs, within tolerance, and the slope of
	// the last interval follows it.
	tick, wall := synPoint(int64(tscWarmup))
	for range 10 {
		tick += uint64(2 * tscSpan)
		wall += int64(tscSpan) + int64(tscSpan)/5000
		c.calibrate(tick, wall)
	}
	got, st := c.read(tick + 2_000_000) // 1 ms of ticks later
	require.Equal(t, tscOK, st)
	require.InDelta(t, wall+int64(time.Millisecond)+int64(time.Millisecond)/5000, got, 2)
	require.Zero(t, c.resets.Load(), "a slew is not a reset")
}

func TestTSCStepRestartsAndGivesUp(t *testing.T) {
	t.Parallel()
	var c tscState
	tick, wall := synPoint(0)
	warm := func() {
		c.calibrate(tick, wall)
		tick += uint64(2 * tscWarmup)
		wall += int64(tscWarmup)
		c.calibrate(tick, wall)
		_, st := c.read(tick + 1)
		require.Equal(t, tscOK, st, "slope after a warm-up")
	}
	warm()
	for i := range tscMaxResets {
		// The wall clock steps a second ahead (settimeofday): the
		// anchor's prediction misses it, the slope goes.
		tick += uint64(2 * tscSpan)
		wall += int64(tscSpan) + int64(time.Second)
		c.calibrate(tick, wall)
		_, st := c.read(tick + 1)
		require.Equal(t, tscExpired, st, "step %d drops the slope", i+1)
		require.Equal(t, int32(i+1), c.resets.Load())
		if i+1 < tscMaxResets {
			require.False(t, c.off.Load(), "step %d", i+1)
			tick += uint64(2 * tscWarmup)
			wall += int64(tscWarmup)
			c.calibrate(tick, wall)
			_, st = c.read(tick + 1)
			require.Equal(t, tscOK, st, "a new slope after step %d", i+1)
		}
	}
	require.True(t, c.off.Load(), "after %d steps the counter is not used", tscMaxResets)
}

func TestTSCBackwardsAndIdle(t *testing.T) {
	t.Parallel()
	var c tscState
	tick, wall := synPoint(0)
	c.calibrate(tick, wall)
	c.calibrate(tick+uint64(2*tscWarmup), wall+int64(tscWarmup))
	// A counter behind the last point restarts the warm-up, not counted
	// as a reset.
	c.calibrate(tick+5, wall+int64(2*tscWarmup))
	_, st := c.read(tick + 6)
	require.Equal(t, tscExpired, st)
	require.Zero(t, c.resets.Load())
	// An idle hour at a counter 0.01 % off its slope: the long interval
	// gives the new slope; no reset.
	var d tscState
	d.calibrate(synPoint(0))
	d.calibrate(synPoint(int64(tscWarmup)))
	tick, wall = synPoint(int64(tscWarmup))
	tick += uint64(2 * time.Hour)
	wall += int64(time.Hour) + int64(time.Hour)/10000
	d.calibrate(tick, wall)
	require.Zero(t, d.resets.Load(), "an idle process is not a reset")
	got, st := d.read(tick + 2000)
	require.Equal(t, tscOK, st)
	require.InDelta(t, wall+1000, got, 2)
}
