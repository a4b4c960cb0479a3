package discovery

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "d.sock")
	l, err := Listen(path)
	require.NoError(t, err)
	_, err = Listen(path)
	require.ErrorIs(t, err, ErrRouterRunning)
	require.NoError(t, l.Close())
	_, err = os.Lstat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "closing the listener removes the socket")

	// A stale socket file (its router died without unlinking) is replaced.
	stale, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	require.NoError(t, err)
	stale.SetUnlinkOnClose(false)
	require.NoError(t, stale.Close())
	l, err = Listen(path)
	require.NoError(t, err)
	require.NoError(t, l.Close())
}
