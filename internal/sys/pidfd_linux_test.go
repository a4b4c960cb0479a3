//go:build linux

package sys_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

// startBlocker starts a child that runs until its stdin closes or it is
// killed.
func startBlocker(t *testing.T) (*exec.Cmd, func()) {
	t.Helper()
	cmd := testutil.ChildCommand(t, "block", nil)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	return cmd, func() { stdin.Close() }
}

func TestPidfdWaitAndSignal(t *testing.T) {
	t.Parallel()
	cmd, release := startBlocker(t)
	defer release()

	pf, err := sys.OpenPidfd(cmd.Process.Pid)
	require.NoError(t, err)
	defer pf.Close()

	// Not exited yet: a cancelled wait returns the context's error.
	rc, err := pf.SyscallConn()
	require.NoError(t, err)
	var exited bool
	var perr error
	require.NoError(t, rc.Control(func(fd uintptr) { exited, perr = sys.PidfdExited(int(fd)) }))
	require.NoError(t, perr)
	require.False(t, exited)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, sys.WaitPidfd(ctx, pf), context.Canceled)

	require.NoError(t, sys.PidfdSignal(pf, syscall.SIGKILL))
	require.NoError(t, sys.WaitPidfd(context.Background(), pf), "a wait after a cancelled one works")

	err = cmd.Wait()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "wait: %v", err)
	require.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())

	// Reaped: pidfd_open now reports ESRCH (unless the pid was reused in
	// between, which the kernel makes unlikely by cycling pids).
	_, err = sys.PidfdOpen(cmd.Process.Pid, 0)
	require.ErrorIs(t, err, sys.ESRCH)
}

// TestPidfdWaitNormalExit waits, parked in the netpoller, for a child that
// exits on its own.
func TestPidfdWaitNormalExit(t *testing.T) {
	t.Parallel()
	cmd, release := startBlocker(t)
	pf, err := sys.OpenPidfd(cmd.Process.Pid)
	require.NoError(t, err)
	defer pf.Close()

	done := make(chan error, 1)
	go func() { done <- sys.WaitPidfd(context.Background(), pf) }()
	release()
	require.NoError(t, <-done)
	require.NoError(t, cmd.Wait())
}

func TestPidfdClosed(t *testing.T) {
	t.Parallel()
	pf, err := sys.OpenPidfd(os.Getpid())
	require.NoError(t, err)
	require.NoError(t, pf.Close())
	require.ErrorIs(t, sys.WaitPidfd(context.Background(), pf), os.ErrClosed)
	require.ErrorIs(t, sys.PidfdSignal(pf, 0), os.ErrClosed)
}
