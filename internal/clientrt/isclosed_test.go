package clientrt

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

// TestIsClosedBrokenPipe: a request sent to a router that stopped before
// this process read its EOF fails in sendmsg with EPIPE (seen in CI as
// "send ClosePublisher: write unixpacket @: sendmsg: broken pipe" from
// Publisher.Close); Close treats that like a router already gone.
func TestIsClosedBrokenPipe(t *testing.T) {
	sendErr := func(errno syscall.Errno) error {
		return fmt.Errorf("send ClosePublisher: %w", &net.OpError{Op: "write", Net: "unixpacket",
			Err: os.NewSyscallError("sendmsg", errno)})
	}
	require.True(t, IsClosed(sendErr(syscall.EPIPE)))
	require.True(t, IsClosed(sendErr(syscall.ECONNRESET)))
	require.True(t, IsClosed(ErrClosed))
	require.True(t, IsClosed(fmt.Errorf("dial: %w", parallax.ErrDaemonUnavailable)))
	require.False(t, IsClosed(sendErr(syscall.EINVAL)))
	require.False(t, IsClosed(errors.New("refused: permission denied")))
}
