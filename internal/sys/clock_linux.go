//go:build linux

package sys

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// MonotonicNanos reads CLOCK_MONOTONIC, the clock of the kernel's own
// timestamps (bpf_ktime_get_ns, futex_waitv deadlines), in nanoseconds.
func MonotonicNanos() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_MONOTONIC): %w", err)
	}
	return ts.Nano(), nil
}
