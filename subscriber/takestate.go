package subscriber

import (
	"runtime"
	"sync/atomic"
)

// takeState guards the taking side of a subscriber: at most one take at a
// time (busy), and whether that take is working right now (a pass) rather
// than waiting for data. Close claims it to wait out a take of another
// goroutine.
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
