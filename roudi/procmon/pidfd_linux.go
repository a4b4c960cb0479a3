//go:build linux

package procmon

import (
	"fmt"
	"os"
	"syscall"

	"github.com/parallax-ipc/parallax/internal/sys"
)

// pollablePidfd returns a non-blocking pidfd for pid registered with the Go
// netpoller. With a caller-supplied pidfd (SO_PEERPIDFD hands out blocking
// ones, which the netpoller cannot park on) it duplicates it, makes the
// duplicate non-blocking and closes the original; otherwise it opens one
// with pidfd_open. A process already reaped yields an error wrapping
// sys.ESRCH.
func pollablePidfd(pid int32, pidfd *os.File) (*os.File, error) {
	if pidfd == nil {
		return sys.OpenPidfd(int(pid))
	}
	defer pidfd.Close()
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("duplicate pidfd: %w", err)
	}
	nfd := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		// ForkLock keeps the duplicate from leaking into a child
		// forked before CloseOnExec (as os/exec does for its pipes).
		syscall.ForkLock.RLock()
		nfd, derr = syscall.Dup(int(fd))
		if derr == nil {
			syscall.CloseOnExec(nfd)
		}
		syscall.ForkLock.RUnlock()
		if derr == nil {
			// O_NONBLOCK lives in the open file description, shared
			// with the original, which is closed below.
			derr = syscall.SetNonblock(nfd, true)
		}
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		if nfd >= 0 {
			syscall.Close(nfd)
		}
		return nil, fmt.Errorf("duplicate pidfd: %w", err)
	}
	return os.NewFile(uintptr(nfd), fmt.Sprintf("pidfd:%d", pid)), nil
}
