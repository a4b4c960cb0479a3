//go:build !linux

package sys

// MembarrierReady reports false: membarrier(2) is Linux's.
func MembarrierReady() bool { return false }

// Membarrier makes no barrier and says so: see MembarrierReady.
func Membarrier() error { return unsupported("membarrier") }
