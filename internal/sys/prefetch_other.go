//go:build !amd64

package sys

// PrefetchW is a hint with no effect on this architecture.
func PrefetchW([]byte) {}
