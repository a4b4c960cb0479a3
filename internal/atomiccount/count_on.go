//go:build parallax_countatomics

package atomiccount

import "sync/atomic"

// Enabled reports whether this binary counts (built with the
// parallax_countatomics tag).
const Enabled = true

var ops, locked atomic.Uint64

// Add counts one shared-memory atomic operation; locked says whether it is
// a store or read-modify-write (see [Counts]).
func Add(isLocked bool) {
	ops.Add(1)
	if isLocked {
		locked.Add(1)
	}
}

// Snapshot returns the counters' current values.
func Snapshot() Counts { return Counts{Ops: ops.Load(), Locked: locked.Load()} }
