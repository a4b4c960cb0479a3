package roudi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pubpkg "github.com/parallax-ipc/parallax/publisher"
	subpkg "github.com/parallax-ipc/parallax/subscriber"
)

// startServerConfig runs a router with the given TOML on a socket in
// t.TempDir() and stops it in cleanup.
func startServerConfig(t *testing.T, toml string, opts Options) *Server {
	t.Helper()
	cfg, err := ParseConfig([]byte(toml))
	require.NoError(t, err)
	cfg.Domain = "acltest"
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(t.TempDir(), "r.sock")
	}
	cfg.RuntimeDir = t.TempDir() // the domain lock, apart from parallel tests
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	srv, err := New(cfg, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			srv.Close()
		})
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("router stopped before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("router not ready")
	}
	return srv
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// TestSubscriberPayloadIsReadOnly writes through a received sample: the
// subscriber's mapping is read-only, so the write faults (turned into a
// recoverable panic by debug.SetPanicOnFault) and the payload is unchanged.
func TestSubscriberPayloadIsReadOnly(t *testing.T) {
	t.Parallel()
	srv := startServerConfig(t, testPools, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := subpkg.New(ctx, "ro", subpkg.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := pubpkg.New(ctx, "ro", pubpkg.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, pub.Send([]byte("hello")))
	s, err := sub.Take(ctx)
	require.NoError(t, err)
	defer func() { _ = s.Release() }()
	b := s.Bytes()
	require.Equal(t, "hello", string(b))

	fault := writeFaults(b)
	require.Error(t, fault, "writing into a subscriber's sample must fault")
	t.Logf("write attempt: %v", fault)
	require.Equal(t, "hello", string(s.Bytes()))
}

// writeFaults writes b[0] and returns the fault it caused, if any.
func writeFaults(b []byte) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = errors.New("panic")
			}
		}
	}()
	b[0] = 'j'
	return nil
}

func TestSocketDirAndSocketModes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "run", "parallax")
	sock := filepath.Join(dir, "r.sock")
	srv := startServerConfig(t, "socket = \""+sock+"\"\nsocket_dir_mode = \"0751\"\nsocket_mode = \"0666\"\n"+testPools, Options{})
	require.Equal(t, sock, srv.SocketPath())
	st, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o751), st.Mode().Perm(), "created socket directory mode (umask must not apply)")
	st, err = os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.ModeSocket, st.Mode().Type())
	require.Equal(t, os.FileMode(0o666), st.Mode().Perm())

	// An existing directory keeps its mode; the default socket mode is 0600.
	existing := t.TempDir()
	require.NoError(t, os.Chmod(existing, 0o755))
	sock2 := filepath.Join(existing, "r.sock")
	startServerConfig(t, "socket = \""+sock2+"\"\n"+testPools, Options{})
	st, err = os.Stat(existing)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	st, err = os.Stat(sock2)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestConfigSocketModeValidation(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{`socket_mode = "0400"`, `socket_mode = "01666"`} {
		cfg, err := ParseConfig([]byte(bad))
		require.NoError(t, err)
		err = cfg.Validate()
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, bad)
		require.ErrorContains(t, err, "socket_mode")
	}
	require.Equal(t, FileMode(0o600), DefaultConfig().SocketMode)
}
