package discovery

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// TestSocketPath changes the environment, so it does not run in parallel.
func TestSocketPath(t *testing.T) {
	t.Setenv(EnvSocket, "")
	t.Setenv(EnvDomain, "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	p, err := SocketPath("")
	require.NoError(t, err)
	require.Equal(t, "/run/user/1000/parallax/default.sock", p)

	t.Setenv(EnvDomain, "lab")
	p, err = SocketPath("")
	require.NoError(t, err)
	require.Equal(t, "/run/user/1000/parallax/lab.sock", p)
	p, err = SocketPath("other")
	require.NoError(t, err)
	require.Equal(t, "/run/user/1000/parallax/other.sock", p)

	t.Setenv("XDG_RUNTIME_DIR", "")
	p, err = SocketPath("lab")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(os.TempDir(), "parallax-"+strconv.Itoa(os.Getuid()), "lab.sock"), p)

	t.Setenv(EnvSocket, "/x/y.sock")
	p, err = SocketPath("lab")
	require.NoError(t, err)
	require.Equal(t, "/x/y.sock", p)

	_, err = SocketPath("../evil")
	require.ErrorIs(t, err, wire.ErrInvalidArgument)
	t.Setenv(EnvDomain, "a b")
	_, err = DefaultDomain()
	require.ErrorIs(t, err, wire.ErrInvalidArgument)
}
