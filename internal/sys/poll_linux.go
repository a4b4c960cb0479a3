//go:build linux

package sys

import (
	"time"

	"golang.org/x/sys/unix"
)

// PollIn and PollHup are the poll(2) event bits a wait set asks for and
// reads back (re-exported so no other package imports x/sys/unix).
const (
	PollIn  = unix.POLLIN
	PollHup = unix.POLLHUP
	PollErr = unix.POLLERR
)

// PollFd is one descriptor of [Poll]: Events asked for, Revents returned.
type PollFd = unix.PollFd

// Poll waits until one of fds has one of its Events or timeout passes
// (negative: no timeout) and returns how many have Revents set. EINTR is
// returned as is; callers loop.
func Poll(fds []PollFd, timeout time.Duration) (int, error) {
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	n, err := unix.Poll(fds, ms)
	if err != nil {
		return 0, err
	}
	return n, nil
}
