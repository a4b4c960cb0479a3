//go:build !linux

package sys

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/parallax-ipc/parallax"
)

// Constants keep their Linux values so code using them compiles everywhere;
// every function below returns an error wrapping [parallax.ErrNotSupported].
const (
	MFD_CLOEXEC       = 0x1
	MFD_ALLOW_SEALING = 0x2
	MFD_NOEXEC_SEAL   = 0x8
	MFD_HUGETLB       = 0x4
	MFD_HUGE_2MB      = 0x54000000
	MFD_HUGE_1GB      = 0x78000000

	F_SEAL_SEAL   = 0x1
	F_SEAL_SHRINK = 0x2
	F_SEAL_GROW   = 0x4
	F_SEAL_WRITE  = 0x8
	F_SEAL_EXEC   = 0x20

	PROT_NONE  = 0x0
	PROT_READ  = 0x1
	PROT_WRITE = 0x2

	MAP_SHARED    = 0x1
	MAP_PRIVATE   = 0x2
	MAP_ANONYMOUS = 0x20
	MAP_POPULATE  = 0x8000

	MADV_NORMAL     = 0
	MADV_WILLNEED   = 3
	MADV_DONTNEED   = 4
	MADV_HUGEPAGE   = 14
	MADV_NOHUGEPAGE = 15
	MADV_DONTDUMP   = 16

	PIDFD_NONBLOCK = 0x800
)

// Errno values callers compare with errors.Is.
const (
	EAGAIN    = syscall.EAGAIN
	EINTR     = syscall.EINTR
	ETIMEDOUT = syscall.ETIMEDOUT
	ENOMEM    = syscall.ENOMEM
	EPERM     = syscall.EPERM
	EACCES    = syscall.EACCES
	EINVAL    = syscall.EINVAL
	ENODEV    = syscall.ENODEV
	ESRCH     = syscall.ESRCH
	EBADF     = syscall.EBADF
	ENOSYS    = syscall.ENOSYS
)

func unsupported(op string) error { return fmt.Errorf("%s: %w", op, parallax.ErrNotSupported) }

// Stat is the subset of fstat(2) Parallax uses.
type Stat struct {
	Size    int64
	Blksize int64
	Mode    uint32
}

var pageSize = os.Getpagesize()

// PageSize returns the base page size of the system.
func PageSize() int { return pageSize }

// YieldThread is runtime.Gosched where sched_yield is not used.
func YieldThread() { runtime.Gosched() }

// RoundUp rounds n up to a multiple of page, which must be a power of two.
func RoundUp(n, page int) int { return (n + page - 1) &^ (page - 1) }

func MemfdCreate(name string, flags int) (int, error) { return -1, unsupported("memfd_create") }
func HugeFlag(pageSize int) (int, error)              { return 0, unsupported("hugetlb memfd") }
func AddSeals(fd int, seals int) error                { return unsupported("add seals") }
func GetSeals(fd int) (int, error)                    { return 0, unsupported("get seals") }
func Ftruncate(fd int, size int64) error              { return unsupported("ftruncate") }
func Fstat(fd int) (Stat, error)                      { return Stat{}, unsupported("fstat") }
func PunchHole(fd int, off, n int64) error            { return unsupported("fallocate") }
func ReopenReadOnly(fd int) (int, error)              { return -1, unsupported("reopen read-only") }
func FdPath(fd int) (string, error)                   { return "", unsupported("fd path") }
func Close(fd int) error                              { return syscall.Close(fd) }
func Mmap(fd int, offset int64, length, pageSize, prot, flags int) ([]byte, error) {
	return nil, unsupported("mmap")
}
func Munmap(b []byte) error                               { return unsupported("munmap") }
func Mprotect(b []byte, prot int) error                   { return unsupported("mprotect") }
func Madvise(b []byte, advice int) error                  { return unsupported("madvise") }
func PidfdOpen(pid int, flags int) (int, error)           { return -1, unsupported("pidfd_open") }
func OpenPidfd(pid int) (*os.File, error)                 { return nil, unsupported("pidfd_open") }
func PidfdSendSignal(pidfd int, sig syscall.Signal) error { return unsupported("pidfd_send_signal") }
func PidfdSignal(f *os.File, sig syscall.Signal) error    { return unsupported("pidfd_send_signal") }
func WaitPidfd(ctx context.Context, f *os.File) error     { return unsupported("wait for pidfd") }
func PidfdExited(fd int) (bool, error)                    { return false, unsupported("poll pidfd") }

// DupFile is not supported off Linux.
func DupFile(f *os.File) (*os.File, error) { return nil, unsupported("dup") }

// MaxWaitv is the most words FutexWaitv accepts.
const MaxWaitv = 128

// FutexWaitv is not supported off Linux.
func FutexWaitv(addrs []*uint32, vals []uint32, timeout time.Duration) (int, error) {
	return -1, unsupported("futex_waitv")
}

// ReniceProcess is not supported off Linux.
func ReniceProcess(nice int) error { return unsupported("renice") }

// ErrLocked reports that [TryLockFile] found the file locked.
var ErrLocked = errors.New("file is locked")

// TryLockFile is not supported off Linux.
func TryLockFile(f *os.File) error { return fmt.Errorf("flock: %w", parallax.ErrNotSupported) }

// ProcessAlive cannot tell off Linux: every positive pid counts as alive.
func ProcessAlive(pid int) bool { return pid > 0 }

// ErrnoName returns the symbolic name of the errno err wraps; elsewhere
// than Linux only its number.
func ErrnoName(err error) string {
	var e syscall.Errno
	if !errors.As(err, &e) {
		return ""
	}
	return fmt.Sprintf("errno%d", int(e))
}

// PollIn, PollHup and PollErr keep their Linux values.
const (
	PollIn  = 0x1
	PollErr = 0x8
	PollHup = 0x10
)

// PollFd mirrors Linux's struct pollfd.
type PollFd struct {
	Fd      int32
	Events  int16
	Revents int16
}

// Poll is not supported off Linux.
func Poll(fds []PollFd, timeout time.Duration) (int, error) { return 0, unsupported("poll") }
