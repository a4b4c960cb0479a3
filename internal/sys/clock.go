package sys

import (
	"sync/atomic"
	"time"
)

// unixClock turns the monotonic clock into wall-clock time: UnixNano adds
// an offset, measured with [time.Now] at most recalibrate ago, to one
// monotonic reading. That halves the cost of a timestamp (time.Now reads
// two clocks) while a step or slew of the wall clock shows up within
// recalibrate.
var unixClock struct {
	at     atomic.Int64 // monotonic reading of the last calibration (0: never)
	offset atomic.Int64 // wall - monotonic at that calibration
}

// recalibrate bounds how long UnixNano keeps an offset between the clocks.
const recalibrate = 50 * time.Millisecond

// UnixNano returns the current wall-clock time in nanoseconds since the
// Unix epoch, like time.Now().UnixNano(): from the processor's time-stamp
// counter where it is invariant (tsc.go, a few nanoseconds and no fence),
// else at the cost of one monotonic clock read. It allocates nothing and
// is safe for concurrent use.
func UnixNano() int64 {
	if ns, ok := tscUnixNano(); ok {
		return ns // tsc.go: the counter, where it is invariant
	}
	return monoUnixNano()
}

// monoUnixNano is UnixNano from one monotonic clock read and the offset.
func monoUnixNano() int64 {
	m := nanotime()
	// Any ordering: a reader that pairs one calibration's time with the
	// next one's offset is off by the drift between them, which is what
	// recalibrate bounds anyway.
	if at := unixClock.at.Load(); at != 0 && m-at < int64(recalibrate) {
		return m + unixClock.offset.Load()
	}
	return calibrate()
}

// calibrate measures the offset between the wall and the monotonic clock
// and returns the current wall-clock time.
func calibrate() int64 {
	m0 := nanotime()
	w := time.Now().UnixNano()
	m1 := nanotime()
	m := m0 + (m1-m0)/2
	unixClock.offset.Store(w - m)
	unixClock.at.Store(m)
	return w
}

// Nanotime returns the monotonic clock in nanoseconds (CLOCK_MONOTONIC on
// Linux): cheap (one vDSO read), for measuring short intervals.
func Nanotime() int64 { return nanotime() }
