package sys

// This file borrows the runtime's monotonic clock. runtime.nanotime is one
// of the runtime functions the Go team keeps reachable by linkname for the
// packages that use it (see the comment on its declaration in
// runtime/time_nofake.go); it reads CLOCK_MONOTONIC through the vDSO and
// touches no memory of ours, so the only invariant is its signature.

import (
	_ "unsafe" // go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64
