package subscriber

import (
	"runtime"
	"sync/atomic"
)

// takeState guards the taking side of a subscriber: at most one take at a
// time (busy), and whether that take is looking at the rings right now (a
// pass). A ConnectionRemoved waits for the pass it finds running to end
// before its ring is released to the router, which may then reuse the
// bytes. A take that waits for data is not in a pass (its readiness checks
// only read ring indices, a hint that a reused ring cannot make unsafe).
//
// Only the goroutine holding busy changes the word, and every change
// stores a new value (a counter above the two flags), so a waiter knows
// that the pass it saw has ended even if the next one has begun. The
// transitions are the atomic operations a take makes anyway: one CAS to
// begin, one store to end.
type takeState struct{ w atomic.Uint64 }

const (
	tsBusy uint64 = 1 << iota
	tsPass
	tsStep // the counter's unit
)

// begin claims the taking side and enters a pass; false when another take
// (or Close) holds it.
func (t *takeState) begin() bool {
	v := t.w.Load()
	// Seq-cst: ordered before the pass's load of conns (see waitPass).
	return v&tsBusy == 0 && t.w.CompareAndSwap(v, (v+tsStep)|tsBusy|tsPass)
}

// set moves the holder's word to the given flags.
func (t *takeState) set(flags uint64) {
	v := t.w.Load()
	t.w.Store((v+tsStep)&^(tsBusy|tsPass) | flags)
}

// pause leaves the pass while the take waits; resume enters a new one.
func (t *takeState) pause()  { t.set(tsBusy) }
func (t *takeState) resume() { t.set(tsBusy | tsPass) }

// end releases the taking side.
func (t *takeState) end() { t.set(0) }

// claim waits until no take runs and holds the taking side without a pass
// (Close).
func (t *takeState) claim() {
	for {
		if v := t.w.Load(); v&tsBusy == 0 && t.w.CompareAndSwap(v, (v+tsStep)|tsBusy) {
			return
		}
		runtime.Gosched()
	}
}

// waitPass returns once the pass running when it is called, if any, has
// ended. The caller has stored a new conns first: Dekker with begin and
// resume (seq-cst), so either it sees the pass or the pass sees the new
// conns. A pass makes no system call and never blocks, so the wait is
// short.
func (t *takeState) waitPass() {
	if v := t.w.Load(); v&tsPass != 0 {
		for t.w.Load() == v {
			runtime.Gosched()
		}
	}
}
