// Package background counts the work the client library goes on doing
// after the call that started it returned: the undo of a request whose
// caller gave up waiting for its reply (it closes, when the reply comes,
// what the router made meanwhile) and the disconnect of a runtime that
// such an undo held last. Each piece is bounded by its own timeout.
//
// Tests use [Wait] to let that work end before they count what a process
// holds (internal/testutil): a count taken while an undo runs would show
// its control connection and mappings as leaks.
package background

import (
	"sync"
	"time"
)

var state struct {
	mu      sync.Mutex
	running int
	idle    chan struct{} // closed when running drops to 0; nil while 0
}

// Start counts one more piece of background work; [Done] ends it.
func Start() {
	state.mu.Lock()
	if state.running == 0 {
		state.idle = make(chan struct{})
	}
	state.running++
	state.mu.Unlock()
}

// Done ends a piece of work [Start] counted. It panics without one.
func Done() {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.running == 0 {
		panic("background: Done without Start")
	}
	state.running--
	if state.running == 0 {
		close(state.idle)
		state.idle = nil
	}
}

// Running returns the number of pieces of work running.
func Running() int {
	state.mu.Lock()
	defer state.mu.Unlock()
	return state.running
}

// Wait waits until no work runs, for d at most, and reports whether none
// does.
func Wait(d time.Duration) bool {
	state.mu.Lock()
	idle := state.idle
	state.mu.Unlock()
	if idle == nil {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return Running() == 0
	}
}
