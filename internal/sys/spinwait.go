package sys

import "time"

// spinClockEvery is how many looks a spin makes between two reads of the
// clock (and of done): a clock read costs about as much as a look with its
// pause, so a spin spends most of its budget looking.
const spinClockEvery = 8

// SpinUntil calls ready until it reports true (SpinUntil returns true) or
// budget has passed on the monotonic clock or done is closed (false). It
// pauses between looks with the processor's spin-wait hint, doubling the
// pause up to maxPause hints, and reads the clock every few looks only.
// A budget of zero or less makes no look at all. It allocates nothing and
// makes no system call (the clock is read through the vDSO).
//
// The budget is a duration, not a count of looks, so it means the same on
// every machine; it may overrun by a few looks.
func SpinUntil(budget time.Duration, done <-chan struct{}, maxPause uint32, ready func() bool) bool {
	return spinUntil(nanotime, procyield, budget, done, maxPause, ready)
}

// spinUntil is SpinUntil over an injected clock and pause, for tests.
func spinUntil(now func() int64, pause func(uint32), budget time.Duration, done <-chan struct{}, maxPause uint32, ready func() bool) bool {
	if budget <= 0 {
		return false
	}
	end := now() + int64(budget)
	p := uint32(1)
	for i := uint32(1); ; i++ {
		// Pause between looks, longer and longer: a waiter that polls a
		// ring's tail back to back takes the line from the producer on
		// every look and slows the very pushes it waits for.
		if maxPause > 0 {
			pause(p)
			p = min(2*p, maxPause)
		}
		if ready() {
			return true
		}
		if i%spinClockEvery != 0 {
			continue
		}
		if now() >= end {
			return false
		}
		select {
		case <-done:
			return false
		default:
		}
	}
}

// SpinPaced calls ready at growing intervals on the monotonic clock — first
// after first, then each interval twice the last, up to maxGap — until it
// reports true (SpinPaced returns true), budget has passed since the call
// or done is closed (false). Between looks it only pauses and reads the
// clock. It is for a waiter whose every look costs its peer: a publisher
// waiting for room in a full ring reads the consumer's head line, and each
// read takes that line away from the consumer's next pop (in a slow
// cross-core state a look every few tens of nanoseconds cost the stream a
// fifth of its rate). A waiter that looks rarely lets room pile up, and
// then uses it in a batch. It allocates nothing and makes no system call.
func SpinPaced(budget, first, maxGap time.Duration, done <-chan struct{}, ready func() bool) bool {
	return spinPaced(nanotime, procyield, budget, first, maxGap, done, ready)
}

// spinPaced is SpinPaced over an injected clock and pause, for tests.
func spinPaced(now func() int64, pause func(uint32), budget, first, maxGap time.Duration, done <-chan struct{}, ready func() bool) bool {
	if budget <= 0 {
		return false
	}
	start := now()
	end := start + int64(budget)
	gap := max(int64(first), 1)
	next := start + gap
	for {
		t := now()
		for ; t < next && t < end; t = now() {
			pause(pacedPause)
		}
		if ready() {
			return true
		}
		if t >= end {
			return false
		}
		select {
		case <-done:
			return false
		default:
		}
		gap = min(2*gap, max(int64(maxGap), gap))
		next = t + gap
	}
}

// pacedPause is the spin-wait hints between two clock reads of SpinPaced
// (~80 ns on current x86; a clock read is ~10-50 ns).
const pacedPause = 4
