//go:build linux

package sys

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrLocked reports that [TryLockFile] found the file locked by another
// open file description (another process, or another open in this one).
var ErrLocked = errors.New("file is locked")

// TryLockFile takes an exclusive flock(2) on f without waiting. The lock
// belongs to f's open file description: it is released when f is closed
// or when the process dies, whatever the way. A lock held elsewhere yields
// an error wrapping [ErrLocked].
func TryLockFile(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("flock %s: %w", f.Name(), err)
	}
	var ferr error
	if err := sc.Control(func(fd uintptr) {
		for {
			ferr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
			if !errors.Is(ferr, unix.EINTR) {
				return
			}
		}
	}); err != nil {
		return fmt.Errorf("flock %s: %w", f.Name(), err)
	}
	if errors.Is(ferr, unix.EWOULDBLOCK) {
		return fmt.Errorf("flock %s: %w", f.Name(), ErrLocked)
	}
	if ferr != nil {
		return fmt.Errorf("flock %s: %w", f.Name(), ferr)
	}
	return nil
}

// ProcessAlive reports whether process pid exists and has not exited (a
// zombie, exited but not reaped, counts as dead). It checks with a pidfd:
// pidfd_open fails with ESRCH for a pid nobody has, and the pidfd of an
// exited process polls readable. A pid it cannot tell about (no pidfd
// support, no permission) counts as alive.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return false
	}
	if err != nil {
		return !errors.Is(unix.Kill(pid, 0), unix.ESRCH)
	}
	defer unix.Close(fd)
	exited, err := pollExited(fd)
	return err != nil || !exited
}
