//go:build linux

package sys

import "golang.org/x/sys/unix"

// Errno values callers compare with errors.Is. They are the unix.Errno
// values themselves, re-exported so no other package imports x/sys/unix.
const (
	EAGAIN    = unix.EAGAIN
	EINTR     = unix.EINTR
	ETIMEDOUT = unix.ETIMEDOUT
	ENOMEM    = unix.ENOMEM
	EPERM     = unix.EPERM
	EACCES    = unix.EACCES
	EINVAL    = unix.EINVAL
	ENODEV    = unix.ENODEV
	ESRCH     = unix.ESRCH
	EBADF     = unix.EBADF
	ENOSYS    = unix.ENOSYS
)

// errnoErr returns common errnos without allocating (they are already
// comparable values; the switch keeps the hot futex path branch-cheap).
func errnoErr(e unix.Errno) error {
	switch e {
	case unix.EAGAIN:
		return EAGAIN
	case unix.EINTR:
		return EINTR
	case unix.ETIMEDOUT:
		return ETIMEDOUT
	}
	return e
}
