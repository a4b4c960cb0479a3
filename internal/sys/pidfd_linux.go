//go:build linux

package sys

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// PIDFD_NONBLOCK makes a pidfd non-blocking, so it can be parked in the Go
// netpoller (see [OpenPidfd]).
const PIDFD_NONBLOCK = unix.PIDFD_NONBLOCK

// PidfdOpen returns a pidfd for process pid (pidfd_open(2)). flags is 0 or
// [PIDFD_NONBLOCK]. A pid that does not exist (or was already reaped) yields
// ESRCH. The caller owns the fd.
func PidfdOpen(pid int, flags int) (int, error) {
	fd, err := unix.PidfdOpen(pid, flags)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	return fd, nil
}

// OpenPidfd opens a non-blocking pidfd for pid and wraps it in an *os.File
// registered with the Go netpoller, ready for [WaitPidfd] and
// [PidfdSignal]. Close the file to release the pidfd. Do not call its Fd
// method: that switches the shared open file description back to blocking.
func OpenPidfd(pid int) (*os.File, error) {
	fd, err := PidfdOpen(pid, PIDFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid)), nil
}

// PidfdSendSignal sends sig to the process behind pidfd (pidfd_send_signal(2)).
func PidfdSendSignal(pidfd int, sig syscall.Signal) error {
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("pidfd_send_signal %v: %w", sig, err)
	}
	return nil
}

// PidfdSignal sends sig to the process behind f, a pidfd from [OpenPidfd].
func PidfdSignal(f *os.File, sig syscall.Signal) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("signal pidfd: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = PidfdSendSignal(int(fd), sig) }); err != nil {
		return fmt.Errorf("signal pidfd: %w", closedErr(f, err))
	}
	return serr
}

// WaitPidfd blocks until the process behind f (a pidfd from [OpenPidfd])
// has exited, or ctx is done. It parks the goroutine in the Go netpoller and
// holds no OS thread while waiting. It does not reap the process. It returns
// nil once the process has exited, ctx.Err() when ctx ends first, and an
// error wrapping os.ErrClosed when f is closed meanwhile.
func WaitPidfd(ctx context.Context, f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("wait for pidfd: %w", err)
	}
	// Clear a deadline left by an earlier cancelled wait.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("wait for pidfd: %w", closedErr(f, err))
	}
	stop := context.AfterFunc(ctx, func() {
		// Wakes the Read below with os.ErrDeadlineExceeded.
		_ = f.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		exited, err := pollExited(int(fd))
		if err != nil {
			perr = err
			return true
		}
		return exited
	})
	switch {
	case perr != nil:
		return fmt.Errorf("wait for pidfd: %w", perr)
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("wait for pidfd: %w", closedErr(f, err))
	}
	return nil
}

// closedErr turns the raw "use of closed file" error of a RawConn into one
// wrapping os.ErrClosed when f has been closed.
func closedErr(f *os.File, err error) error {
	// A zero-length Read makes no syscall; it only takes the read lock,
	// which fails on a closed file with an error wrapping os.ErrClosed.
	if _, rerr := f.Read(nil); errors.Is(rerr, os.ErrClosed) {
		return rerr
	}
	return err
}

// PidfdExited reports, without blocking, whether the process behind the
// pidfd fd has exited.
func PidfdExited(fd int) (bool, error) { return pollExited(fd) }

// pollExited polls fd with a zero timeout, retrying on EINTR (poll(2) is
// never restarted after a signal such as Go's SIGURG preemption).
func pollExited(fd int) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("poll pidfd: %w", err)
		}
		return n > 0, nil
	}
}
