//go:build linux

package sys

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// PunchHole deallocates n bytes of fd at off and keeps the file size
// (fallocate FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE): the range then
// reads as zeros. Tests use it to check who may do that to a segment.
func PunchHole(fd int, off, n int64) error {
	if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		return fmt.Errorf("punch a hole of %d bytes at %d: %w", n, off, err)
	}
	return nil
}

// ErrnoName returns the symbolic name of the errno err wraps ("EACCES"),
// or "" when it wraps none.
func ErrnoName(err error) string {
	var e unix.Errno
	if !errors.As(err, &e) {
		return ""
	}
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return fmt.Sprintf("errno%d", int(e))
}
