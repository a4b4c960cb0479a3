package roudi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
)

const testPools = `
[[pools]]
chunk_size = "256B"
count = 64
hugepages = "never"
[limits]
max_connections = 64
max_subscribers = 32
`

// sharedModel selects the shared memory model in a test configuration:
// shared model: deleted in step 14 (tests that pin it say why).
const sharedModel = `
[memory]
model = "shared"
`

// startServer runs a router on sock; stop ends it (idempotent) and returns
// Serve's result.
func startServer(t *testing.T, sock string) (srv *Server, stop func() error) {
	t.Helper()
	cfg, err := ParseConfig([]byte(testPools))
	require.NoError(t, err)
	cfg.Domain = "srvtest"
	cfg.Socket = sock
	cfg.RuntimeDir = filepath.Dir(sock) // the domain lock, apart from parallel tests
	srv, err = New(cfg, Options{Logger: discardLogger()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	var serveErr error
	stop = func() error {
		once.Do(func() { cancel(); serveErr = <-done })
		return serveErr
	}
	t.Cleanup(func() {
		_ = stop()
		srv.Close()
	})
	select {
	case <-srv.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("router not ready")
	}
	return srv, stop
}

func TestServerRefusesSecondRouterOnSameSocket(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "r.sock")
	startServer(t, sock)

	cfg, err := ParseConfig([]byte(testPools))
	require.NoError(t, err)
	cfg.Socket = sock
	cfg.RuntimeDir = t.TempDir()
	second, err := New(cfg, Options{Logger: discardLogger()})
	require.NoError(t, err)
	defer second.Close()
	err = second.Serve(context.Background())
	require.ErrorIs(t, err, discovery.ErrRouterRunning)
}

func TestServerTakesOverStaleSocket(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "r.sock")
	// A socket file nobody listens on, as a SIGKILLed router leaves behind.
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	require.NoError(t, err)
	l.SetUnlinkOnClose(false)
	require.NoError(t, l.Close())
	_, err = os.Stat(sock)
	require.NoError(t, err, "stale socket file must exist before the router starts")

	_, stop := startServer(t, sock)
	c, err := discovery.Dial(context.Background(), discovery.DialOptions{Socket: sock})
	require.NoError(t, err)
	require.Equal(t, "srvtest", c.Welcome().Domain)
	require.NoError(t, c.Close())

	// Graceful stop removes the socket.
	require.NoError(t, stop())
	_, err = os.Stat(sock)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestMainInvalidConfigDoesNotStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.toml")
	require.NoError(t, os.WriteFile(path, []byte("[rings]\ndefault_capacity = 100\n"), 0o600))
	var stderr bytes.Buffer
	code := Main([]string{"-config", path, "-socket", filepath.Join(dir, "s.sock")}, &stderr)
	require.Equal(t, 1, code)
	require.Contains(t, stderr.String(), "rings.default_capacity")
	_, err := os.Stat(filepath.Join(dir, "s.sock"))
	require.ErrorIs(t, err, os.ErrNotExist, "an invalid config must not start a router")
}

func TestServerShutdownTellsClients(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "r.sock")
	_, stop := startServer(t, sock)
	c, err := discovery.Dial(context.Background(), discovery.DialOptions{Socket: sock})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, stop())
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client not told that the router went away")
	}
	require.Error(t, c.Err())
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
