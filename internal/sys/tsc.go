package sys

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The time-stamp counter clock behind UnixNano on processors with an
// invariant TSC. A publisher stamps every message; reading the kernel's
// clock through the vDSO costs ~26 ns here (kvm-clock) and, worse, its
// ordered TSC read (LFENCE; RDTSC) waits for every cache miss in flight,
// which on a publish path full of cache-line transfers made the stamp
// ~20 % of a 64-byte one-way message. An unordered RDTSC scaled by a slope
// measured against the wall clock costs a few nanoseconds and waits for
// nothing.
//
// Calibration. A calibration point is a TSC reading paired with
// time.Now().UnixNano() (the TSC read on both sides of it, the midpoint
// kept). The slope (nanoseconds per tick, as a 32.32 fixed-point factor)
// comes from two points at least tscWarmup apart; until there is one,
// UnixNano uses the monotonic clock. An anchor (point and slope) serves for
// tscSpan worth of ticks; the first call after that takes a new point,
// checks the anchor's prediction against it and re-anchors with the slope
// of the last interval, so a slewed wall clock is followed within a span.
// A prediction off by more than tscTolerance (a stepped wall clock, a
// counter that jumped or differs between processors) drops the slope and
// warms up again; after tscMaxResets such events the process stops using
// the counter. Readers and the one calibrating caller meet through a
// sequence lock: a reader that sees a calibration in progress uses the
// monotonic clock for that call.
var tscClock tscState

// tscState is the counter clock's anchor and calibration state.
type tscState struct {
	seq   atomic.Uint64 // odd while the anchor is written
	tsc0  atomic.Uint64 // counter at the anchor
	ns0   atomic.Int64  // wall-clock ns at the anchor
	mult  atomic.Uint64 // ns per tick << 32; 0: no slope (warming up)
	limit atomic.Uint64 // ticks past tsc0 the anchor serves

	busy   atomic.Bool // one caller calibrates at a time
	off    atomic.Bool // the counter proved unreliable: not used any more
	resets atomic.Int32

	// Guarded by busy.
	prevTSC uint64 // the last calibration point (0: none)
	prevNS  int64
}

const (
	// tscWarmup is the least interval a slope is measured over.
	tscWarmup = 20 * time.Millisecond
	// tscSpan is how long one anchor serves.
	tscSpan = recalibrate
	// tscTolerance bounds how far an anchor's prediction may be from the
	// wall clock at the next calibration: a slewing wall clock or the
	// points' own error moves it by far less (a stepped clock or a jumping
	// counter by far more).
	tscTolerance = 50 * time.Microsecond
	// tscMaxResets is how many out-of-tolerance predictions a process
	// accepts before it stops using the counter.
	tscMaxResets = 4
	// tscMaxPointTicks bounds the counter ticks around one calibration
	// point's time.Now (~4 µs at 2 GHz): the point's error is at most half
	// of it, typically tens of nanoseconds.
	tscMaxPointTicks = 1 << 13
)

// useTSC is decided once: the counter must be invariant.
var useTSC = tscInvariant()

// tscUnixNano returns the wall-clock time from the counter, or false when
// the caller must read the clock itself (no slope yet, a calibration in
// progress elsewhere, the counter not usable).
func tscUnixNano() (int64, bool) {
	if !useTSC {
		return 0, false
	}
	c := &tscClock
	if c.off.Load() {
		return 0, false
	}
	if ns, st := c.read(rdtsc()); st != tscExpired {
		return ns, st == tscOK
	}
	if !c.busy.CompareAndSwap(false, true) {
		return 0, false // another caller calibrates
	}
	defer c.busy.Store(false)
	tp, w, ok := tscPoint()
	if ok {
		c.calibrate(tp, w)
	}
	return w, true
}

// What read found.
const (
	tscOK      = iota // the time is the anchor's interpolation
	tscBusy           // the anchor is being written: read the clock
	tscExpired        // no slope, or t beyond the anchor's span: calibrate
)

// read interpolates counter reading t on the anchor.
func (c *tscState) read(t uint64) (int64, int) {
	s := c.seq.Load()
	t0 := c.tsc0.Load()
	n0 := c.ns0.Load()
	m := c.mult.Load()
	lim := c.limit.Load()
	if s&1 != 0 || c.seq.Load() != s {
		return 0, tscBusy
	}
	// t before t0 (another processor's counter behind) wraps to a huge d
	// and calibrates, like an expired anchor.
	if d := t - t0; m != 0 && d < lim {
		// d < lim keeps d*m within 64 bits (limit is ~tscSpan of ticks).
		return n0 + int64((d*m)>>32), tscOK
	}
	return 0, tscExpired
}

// calibrate takes calibration point (tp, w) into account: the first point
// of a warm-up, the end of one (a slope), or a re-anchoring after a check
// of the anchor's prediction (see tscClock). busy held.
func (c *tscState) calibrate(tp uint64, w int64) {
	dt, dw := tp-c.prevTSC, w-c.prevNS
	switch {
	case c.prevTSC == 0 || tp <= c.prevTSC || dw <= 0:
		// The first point, or the counter or the clock went backwards.
		c.restart(tp, w)
		return
	case dw < int64(tscWarmup):
		return // too soon after the last point for a slope
	}
	if m := c.mult.Load(); m != 0 {
		// How far the anchor's prediction is from the clock now, unless
		// the anchor is so old (an idle process) that a tiny slope error
		// adds up: the new slope, over that long interval, is exact.
		if d := tp - c.tsc0.Load(); d < 4*c.limit.Load() {
			e := w - (c.ns0.Load() + int64((d*m)>>32))
			if e > int64(tscTolerance) || e < -int64(tscTolerance) {
				if c.resets.Add(1) >= tscMaxResets {
					c.off.Store(true)
				}
				c.restart(tp, w)
				return
			}
		}
	}
	// ns per tick << 32 = dw << 32 / dt; dw>>32 < dt for any counter
	// faster than one tick per 4 s, so the quotient fits.
	hi, lo := uint64(dw)>>32, uint64(dw)<<32
	if hi >= dt {
		c.restart(tp, w)
		return
	}
	m, _ := bits.Div64(hi, lo, dt)
	if m > 20<<32 || m < (1<<32)/20 {
		// Not a counter between 50 MHz and 20 GHz: distrust the points.
		c.restart(tp, w)
		return
	}
	c.seq.Add(1)
	c.tsc0.Store(tp)
	c.ns0.Store(w)
	c.mult.Store(m)
	c.limit.Store(uint64(int64(tscSpan)<<32/int64(m)) + 1)
	c.seq.Add(1)
	c.prevTSC, c.prevNS = tp, w
}

// restart drops the slope (readers use the monotonic clock until the next
// one) and makes (tp, w) the first point of a new warm-up. busy held.
func (c *tscState) restart(tp uint64, w int64) {
	c.seq.Add(1)
	c.mult.Store(0)
	c.seq.Add(1)
	c.prevTSC, c.prevNS = tp, w
}

// tscPoint pairs a counter reading with the wall clock: the midpoint of
// the counter read before and after time.Now. A pair further apart than
// tscMaxPointTicks (the goroutine was preempted, or the counter is not
// monotonic) is taken again, up to three times; ok is false if none was
// close enough (w is the wall clock anyway).
func tscPoint() (tp uint64, w int64, ok bool) {
	for range 3 {
		a := rdtsc()
		w = time.Now().UnixNano()
		b := rdtsc()
		if b >= a && b-a < tscMaxPointTicks {
			return a + (b-a)/2, w, true
		}
	}
	return 0, w, false
}
