//go:build !linux

package sys

import "time"

// FutexWait is not supported off Linux.
func FutexWait(addr *uint32, val uint32, timeout time.Duration) error {
	return unsupported("futex wait")
}

// FutexWake is not supported off Linux.
func FutexWake(addr *uint32, n int) (int, error) { return 0, unsupported("futex wake") }
