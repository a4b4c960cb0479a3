//go:build !amd64

package sys

// rdtsc is not available on this architecture; tscInvariant keeps it
// unused.
func rdtsc() uint64 { return 0 }

// tscInvariant reports false: UnixNano reads the monotonic clock here.
func tscInvariant() bool { return false }
