package sys

import (
	"math/bits"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// The time-stamp counter clock behind UnixNano. A publisher stamps every
// message; reading the kernel's clock through the vDSO costs ~26 ns here
// (kvm-clock) and, worse, its ordered counter read (LFENCE; RDTSC) waits
// for every cache miss in flight, which on a publish path full of
// cache-line transfers made the stamp ~20 % of a 64-byte one-way message.
// An unordered RDTSC scaled by a measured slope costs a few nanoseconds
// and waits for nothing.
//
// When. Only where the counter is invariant (CPUID), the kernel's
// clocksource reads it (tscClocksource) and the kernel's own vDSO clock
// reads it (tscTrusted): the kernel lets user space compute time from the
// counter only when it runs at one rate and in step on every processor
// (the "tsc" clocksource after its synchronization checks, kvm-clock with
// the hypervisor's stable bit, the Hyper-V TSC page).
//
// Calibration. A point pairs a counter reading (the midpoint of reads on
// both sides of one time.Now, retaken when they are far apart) with that
// time.Now's wall-clock and monotonic readings. The slope (monotonic
// nanoseconds per tick, 32.32 fixed point) comes from two points at least
// tscWarmup apart; until there is one, UnixNano uses the monotonic clock.
// The monotonic clock is slewed with the wall clock but never stepped, so
// a stepped wall clock never gets into a slope: it moves the anchor only.
// An anchor (the last point's counter and wall-clock readings, and the
// slope) serves tscSpan worth of ticks, so a step shows within a span, as
// with the monotonic clock plus an offset. The first call after the span
// takes a new point, checks the anchor's prediction of the monotonic
// reading against it and re-anchors with the slope of the last interval.
// A prediction off by more than tscTolerance (a counter that jumped, a
// change of slew rate beyond any NTP daemon's) restarts the warm-up;
// tscMaxResets misses in a row, or as many unusable points in a row, and
// the process stops using the counter. Readers and the one calibrating
// caller meet through a sequence lock: a reader that sees a calibration in
// progress uses the monotonic clock for that call.
var tscClock tscState

// tscState is the counter clock's anchor and calibration state: the
// readers' line first, the calibrating caller's on its own line.
type tscState struct {
	seq   atomic.Uint64 // odd while the anchor is written
	tsc0  atomic.Uint64 // counter at the anchor
	ns0   atomic.Int64  // wall-clock ns at the anchor
	mult  atomic.Uint64 // ns per tick << 32; 0: no slope (warming up)
	limit atomic.Uint64 // ticks past tsc0 the anchor serves
	off   atomic.Bool   // the counter proved unreliable: not used any more
	_     [20]byte      // the readers' 44 bytes above fill a cache line

	busy atomic.Bool // one caller calibrates at a time
	// Guarded by busy.
	prevTSC  uint64 // the last point (0: none)
	prevMono int64  // its monotonic reading
	misses   int    // out-of-tolerance predictions or unusable points in a row
}

const (
	// tscWarmup is the least interval a slope is measured over.
	tscWarmup = 20 * time.Millisecond
	// tscSpan is how long one anchor serves.
	tscSpan = recalibrate
	// tscTolerance bounds how far an anchor's prediction of the
	// monotonic clock may be off at the next calibration: 1000 ppm of a
	// span, far more than the points' own error (a few ns, at most 2 µs)
	// or a slew rate change.
	tscTolerance = 50 * time.Microsecond
	// tscMaxMisses is how many misses in a row a process accepts before
	// it stops using the counter.
	tscMaxMisses = 4
	// tscMaxPointTicks bounds the counter ticks around one calibration
	// point's time.Now (~4 µs at 2 GHz): the point's error is at most half
	// of it, typically tens of nanoseconds.
	tscMaxPointTicks = 1 << 13
)

// useTSC is decided once.
var useTSC = tscInvariant() && tscClocksource() && tscTrusted()

// tscTrusted reports whether the kernel's vDSO clock reads the counter
// itself, judged by its cost: the cheapest of 64 reads of CLOCK_MONOTONIC
// through the vDSO takes tens of nanoseconds, a system call (the vDSO's
// fallback when the clocksource is not counter-based or the counter is
// unstable) several times more.
func tscTrusted() bool {
	best := int64(1 << 62)
	for range 64 {
		a := nanotime()
		b := nanotime()
		best = min(best, b-a)
	}
	return best < vdsoMaxNanos
}

// tscClocksources are the Linux clocksources that read the time-stamp
// counter and let the vDSO use it: "tsc" (after the kernel's
// synchronization checks), "kvm-clock" (the vDSO uses it only with the
// hypervisor's stable bit, which tscTrusted's timing shows) and the
// Hyper-V TSC page.
var tscClocksources = []string{"tsc", "kvm-clock", "hyperv_clocksource_tsc_page"}

// tscClocksource reports whether the kernel's current clocksource reads
// the counter (tscClocksources); true where the kernel does not say (no
// such file: another system, where tscTrusted's timing decides).
func tscClocksource() bool {
	b, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	if err != nil {
		return true
	}
	return slices.Contains(tscClocksources, strings.TrimSpace(string(b)))
}

// vdsoMaxNanos separates a vDSO clock read from a system call.
const vdsoMaxNanos = 90

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
	// Load first: a failed CAS still takes the line from the readers.
	if c.busy.Load() || !c.busy.CompareAndSwap(false, true) {
		return 0, false // another caller calibrates
	}
	defer c.busy.Store(false)
	tp, mono, w, ok := tscPoint()
	if ok {
		c.calibrate(tp, mono, w)
	} else {
		c.countMiss() // an unusable point: the warm-up goes on
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
	// t before t0 (a counter read before the anchor moved) wraps to a
	// huge d and calibrates, like an expired anchor.
	if d := t - t0; m != 0 && d < lim {
		// d < lim keeps d*m within 64 bits (limit is ~tscSpan of ticks).
		return n0 + int64((d*m)>>32), tscOK
	}
	return 0, tscExpired
}

// calibrate takes calibration point (tp, mono, w) into account: the first
// point of a warm-up, the end of one (a slope), or a re-anchoring after a
// check of the anchor's prediction (see tscClock). busy held.
func (c *tscState) calibrate(tp uint64, mono, w int64) {
	dm := mono - c.prevMono
	switch {
	case c.prevTSC == 0:
		c.restart(tp, mono) // the first point
		return
	case dm < int64(tscWarmup):
		return // too soon after the last point for a slope
	case tp <= c.prevTSC:
		// The counter stood still or went back over a warm-up or more.
		c.miss(tp, mono)
		return
	}
	dt := tp - c.prevTSC
	if m := c.mult.Load(); m != 0 {
		// How far the anchor's slope predicts the monotonic clock now,
		// unless the anchor is so old (an idle process) that a tiny slope
		// error adds up: the new slope, over that long interval, is
		// exact.
		if dt < 4*c.limit.Load() {
			e := dm - int64((dt*m)>>32)
			if e > int64(tscTolerance) || e < -int64(tscTolerance) {
				c.miss(tp, mono)
				return
			}
		}
	}
	// ns per tick << 32 = dm << 32 / dt; dm>>32 < dt for any counter
	// faster than one tick per 4 s, so the quotient fits.
	hi, lo := uint64(dm)>>32, uint64(dm)<<32
	if hi >= dt {
		c.miss(tp, mono)
		return
	}
	m, _ := bits.Div64(hi, lo, dt)
	if m > 20<<32 || m < (1<<32)/20 {
		// Not a counter between 50 MHz and 20 GHz.
		c.miss(tp, mono)
		return
	}
	c.seq.Add(1)
	c.tsc0.Store(tp)
	c.ns0.Store(w)
	c.mult.Store(m)
	c.limit.Store(uint64(int64(tscSpan)<<32/int64(m)) + 1)
	c.seq.Add(1)
	c.prevTSC, c.prevMono, c.misses = tp, mono, 0
}

// miss counts a miss (the counter stops being used after tscMaxMisses in
// a row) and restarts the warm-up from (tp, mono). busy held.
func (c *tscState) miss(tp uint64, mono int64) {
	c.countMiss()
	c.restart(tp, mono)
}

// countMiss counts a miss; tscMaxMisses in a row turn the counter off.
// busy held.
func (c *tscState) countMiss() {
	if c.misses++; c.misses >= tscMaxMisses {
		c.off.Store(true)
	}
}

// restart drops the slope (readers use the monotonic clock until the next
// one) and makes (tp, mono) the first point of a new warm-up. busy held.
func (c *tscState) restart(tp uint64, mono int64) {
	c.seq.Add(1)
	c.mult.Store(0)
	c.seq.Add(1)
	c.prevTSC, c.prevMono = tp, mono
}

// tscEpoch is the base of tscPoint's monotonic readings.
var tscEpoch = time.Now()

// tscPoint pairs a counter reading with one time.Now: its wall-clock
// reading and its monotonic one (since tscEpoch). The counter reading is
// the midpoint of reads on both sides; a pair further apart than
// tscMaxPointTicks (the goroutine was preempted, or the counter is not
// monotonic) is taken again, up to three times; ok is false if none was
// close enough (w is the wall clock anyway).
func tscPoint() (tp uint64, mono, w int64, ok bool) {
	for range 3 {
		a := rdtsc()
		now := time.Now()
		b := rdtsc()
		w = now.UnixNano()
		if b >= a && b-a < tscMaxPointTicks {
			return a + (b-a)/2, int64(now.Sub(tscEpoch)), w, true
		}
	}
	return 0, 0, w, false
}
