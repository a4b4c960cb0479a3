// Package idlegate decides when a closed engine's memory is no longer in
// use. The publisher's and the subscriber's engines (internal/ownedpub,
// internal/ownedsub) count what they hand out themselves (loans, held
// samples); a Gate adds whether the engine is closed and the holds of
// callers that work on the memory outside such a unit (growth, a sleeping
// LoanWait, Close itself), and reports exactly once that the engine is
// closed, holds nothing and has nothing out: then the engine runs its
// OnIdle, where the caller unmaps what the units aliased and lets its
// share of the process runtime go.
package idlegate

// A Gate is guarded by its engine's mutex; only Run is called without it.
// The zero Gate is open, holds nothing and runs nothing when idle.
type Gate struct {
	onIdle func()
	closed bool
	holds  int
	idle   bool
}

// New returns an open gate that runs onIdle (nil: nothing) once it is
// idle.
func New(onIdle func()) Gate { return Gate{onIdle: onIdle} }

// Close closes the gate; closing twice does nothing.
func (g *Gate) Close() { g.closed = true }

// Closed reports whether Close was called.
func (g *Gate) Closed() bool { return g.closed }

// Hold counts a hold, or reports false, counting nothing, once the gate
// was idle.
func (g *Gate) Hold() bool {
	if g.idle {
		return false
	}
	g.holds++
	return true
}

// Unhold ends a Hold that succeeded.
func (g *Gate) Unhold() { g.holds-- }

// Due reports, exactly once, that the gate is closed with no hold and
// nothing busy (the engine's own count of what is out): the caller then
// passes true to Run once its mutex is released.
func (g *Gate) Due(busy bool) bool {
	if !g.closed || g.idle || g.holds > 0 || busy {
		return false
	}
	g.idle = true
	return true
}

// Run runs the gate's onIdle when due says so. Call it without the
// engine's mutex: onIdle may unmap memory and call into the runtime.
func (g *Gate) Run(due bool) {
	if due && g.onIdle != nil {
		g.onIdle()
	}
}
