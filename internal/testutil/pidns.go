//go:build linux

package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

// PidNSCommand is [ChildCommand] for a child that starts as the init
// process (pid 1) of a new pid namespace, in a new mount namespace, so that
// it can mount a procfs of its own (see [MountOwnProc]). Everything in the
// namespace is killed when the child exits. It skips (or fails, in strict
// mode) t unless it runs as root.
func PidNSCommand(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	RequiresRoot(t)
	cmd := ChildCommand(t, role, nil, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	return cmd
}

// MountOwnProc, run in a child started by [PidNSCommand], makes every mount
// of its mount namespace private (nothing propagates back to the host) and
// mounts a procfs of its pid namespace on /proc.
func MountOwnProc() error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc: %w", err)
	}
	return nil
}

// SetNextPid makes the calling process's pid namespace hand out pid next
// (when it is free) to the next process created in it, by writing next-1 to
// /proc/sys/kernel/ns_last_pid. It needs CAP_SYS_ADMIN over the namespace,
// and nothing else may fork in it meanwhile.
func SetNextPid(next int) error {
	if next < 2 {
		return fmt.Errorf("set next pid %d: must be at least 2", next)
	}
	if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(next-1)), 0); err != nil {
		return fmt.Errorf("set next pid %d: %w", next, err)
	}
	return nil
}
