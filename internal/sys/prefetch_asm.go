//go:build amd64

package sys

// PrefetchW asks the processor to bring the cache line holding b[0] into
// this core's cache in a writable state, without waiting for it. It never
// faults (an empty b is fine) and changes no memory. A producer calls it a
// little ahead of the stores it will make to lines another core wrote
// last, so the ownership transfer overlaps other work instead of stalling
// the next atomic instruction.
//
//go:noescape
func PrefetchW(b []byte)
