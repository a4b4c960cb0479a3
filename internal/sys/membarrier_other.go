//go:build !linux

package sys

// MembarrierReady reports false: membarrier(2) is Linux's.
func MembarrierReady() bool { return false }

// Membarrier does nothing: see MembarrierReady.
func Membarrier() {}
