package sys

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The calibration logic on synthetic points: a 2 GHz counter (0.5 ns per
// tick) starting at tick 1e9, the monotonic clock at 0 and the wall clock
// at 1e18 then.
const (
	synTick0 = uint64(1e9)
	synWall0 = int64(1e18)
)

// synPoint is the point ns after the start, the wall clock stepped by step.
func synPoint(ns, step int64) (uint64, int64, int64) {
	return synTick0 + uint64(ns)*2, ns, synWall0 + ns + step
}

func TestTSCWarmsUpThenInterpolates(t *testing.T) {
	t.Parallel()
	var c tscState
	_, st := c.read(synTick0)
	require.Equal(t, tscExpired, st, "no slope before any point")
	c.calibrate(synPoint(0, 0))
	_, st = c.read(synTick0 + 10)
	require.Equal(t, tscExpired, st, "one point gives no slope")
	c.calibrate(synPoint(int64(tscWarmup)/2, 0))
	_, st = c.read(synTick0 + 10)
	require.Equal(t, tscExpired, st, "two points closer than %v give no slope", tscWarmup)
	end := int64(tscWarmup)
	c.calibrate(synPoint(end, 0))
	for _, dns := range []int64{0, 1, 1000, int64(tscSpan) / 2, int64(tscSpan) - 1} {
		tick, _, want := synPoint(end+dns, 0)
		got, st := c.read(tick)
		require.Equal(t, tscOK, st, "%d ns after the anchor", dns)
		require.InDelta(t, want, got, 2, "%d ns after the anchor", dns)
	}
	tick, _, _ := synPoint(end+int64(tscSpan)+1, 0)
	_, st = c.read(tick)
	require.Equal(t, tscExpired, st, "an anchor serves %v", tscSpan)
	_, st = c.read(synTick0)
	require.Equal(t, tscExpired, st, "a counter behind the anchor calibrates")
}

func TestTSCFollowsSlewedClock(t *testing.T) {
	t.Parallel()
	var c tscState
	c.calibrate(synPoint(0, 0))
	c.calibrate(synPoint(int64(tscWarmup), 0))
	// From here the clocks run 200 ppm fast (an NTP slew): each span the
	// prediction misses by 10 µs, within tolerance, and the slope of the
	// last interval follows.
	tick, mono, wall := synPoint(int64(tscWarmup), 0)
	for range 10 {
		tick += uint64(2 * tscSpan)
		mono += int64(tscSpan) + int64(tscSpan)/5000
		wall += int64(tscSpan) + int64(tscSpan)/5000
		c.calibrate(tick, mono, wall)
	}
	got, st := c.read(tick + 2_000_000) // 1 ms of ticks later
	require.Equal(t, tscOK, st)
	require.InDelta(t, wall+int64(time.Millisecond)+int64(time.Millisecond)/5000, got, 2)
	require.Zero(t, c.misses, "a slew is not a miss")
}

func TestTSCWallStepMovesOnlyTheAnchor(t *testing.T) {
	t.Parallel()
	for _, at := range []struct {
		name string
		ns   int64 // when the wall clock steps
	}{
		{"during the warm-up", int64(tscWarmup) / 2},
		{"after the warm-up", int64(tscWarmup) + int64(tscSpan)/2},
		{"in an idle hour", int64(tscWarmup) + int64(time.Hour)/2},
	} {
		t.Run(at.name, func(t *testing.T) {
			var c tscState
			const step = -int64(100 * time.Millisecond)
			stepAt := func(ns int64) int64 {
				if ns >= at.ns {
					return step
				}
				return 0
			}
			pt := func(ns int64) (uint64, int64, int64) { return synPoint(ns, stepAt(ns)) }
			c.calibrate(pt(0))
			c.calibrate(pt(int64(tscWarmup)))
			last := int64(tscWarmup) + int64(time.Hour)
			c.calibrate(pt(int64(tscWarmup) + int64(tscSpan)))
			c.calibrate(pt(last))
			// The slope is the monotonic one, exact: 1 ms of ticks after
			// the last point is 1 ms of the (stepped) wall clock.
			tick, _, wall := pt(last + int64(time.Millisecond))
			got, st := c.read(tick)
			require.Equal(t, tscOK, st)
			require.InDelta(t, wall, got, 2)
			require.Zero(t, c.misses, "a wall-clock step is not a miss")
			require.False(t, c.off.Load())
		})
	}
}

func TestTSCJumpsAndGivesUp(t *testing.T) {
	t.Parallel()
	var c tscState
	tick, mono, wall := synPoint(0, 0)
	next := func(dTicks uint64, dns int64) {
		tick += dTicks
		mono += dns
		wall += dns
		c.calibrate(tick, mono, wall)
	}
	warm := func() {
		next(uint64(2*tscWarmup), int64(tscWarmup))
		_, st := c.read(tick + 1)
		require.Equal(t, tscOK, st, "slope after a warm-up")
	}
	c.calibrate(tick, mono, wall)
	warm()
	// A good check after a miss clears the count: misses must be in a row.
	next(uint64(4*tscSpan), int64(tscSpan)) // the counter ran twice as fast
	require.Equal(t, 1, c.misses)
	warm()
	next(uint64(2*tscSpan), int64(tscSpan))
	require.Zero(t, c.misses, "a good check ends the run of misses")
	for i := range tscMaxMisses {
		// The counter jumps a second ahead: the anchor's prediction misses.
		next(uint64(2*tscSpan)+uint64(2*time.Second), int64(tscSpan))
		_, st := c.read(tick + 1)
		require.Equal(t, tscExpired, st, "jump %d drops the slope", i+1)
		if i+1 < tscMaxMisses {
			require.False(t, c.off.Load(), "jump %d", i+1)
		}
	}
	require.True(t, c.off.Load(), "after %d misses in a row the counter is not used", tscMaxMisses)
}

func TestTSCCounterBehind(t *testing.T) {
	t.Parallel()
	var c tscState
	tick, mono, wall := synPoint(0, 0)
	c.calibrate(tick, mono, wall)
	c.calibrate(tick+uint64(2*tscWarmup), mono+int64(tscWarmup), wall+int64(tscWarmup))
	// Behind the last point within a warm-up (another processor's read
	// racing the anchor): ignored, the slope stays.
	c.calibrate(tick+5, mono+int64(tscWarmup)+10, wall+int64(tscWarmup)+10)
	_, st := c.read(tick + uint64(2*tscWarmup) + 2)
	require.Equal(t, tscOK, st)
	require.Zero(t, c.misses)
	// Behind it a warm-up later: a miss.
	c.calibrate(tick+5, mono+int64(3*tscWarmup), wall+int64(3*tscWarmup))
	_, st = c.read(tick + 6)
	require.Equal(t, tscExpired, st)
	require.Equal(t, 1, c.misses)
}

// TestUnixNanoConcurrent reads the clock from several goroutines across
// calibrations, each reading between two time.Now readings.
func TestUnixNanoConcurrent(t *testing.T) {
	t.Parallel()
	deadline := time.Now().Add(3 * tscSpan)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				before := time.Now().UnixNano()
				got := UnixNano()
				after := time.Now().UnixNano()
				const slack = int64(50 * time.Microsecond)
				if got < before-slack || got > after+slack {
					errs <- &clockError{before, got, after}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

type clockError struct{ before, got, after int64 }

func (e *clockError) Error() string {
	return "UnixNano " + time.Unix(0, e.got).String() + " outside [" + time.Unix(0, e.before).String() + ", " + time.Unix(0, e.after).String() + "]"
}
