package roudi

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
)

// startConfig is a small config with its own socket and runtime directory.
func startConfig(t *testing.T, domain string) *Config {
	t.Helper()
	cfg, err := ParseConfig([]byte("[[pools]]\nchunk_size = \"256B\"\ncount = 16\nhugepages = \"never\"\n"))
	require.NoError(t, err)
	cfg.Domain = domain
	cfg.Socket = filepath.Join(t.TempDir(), "r.sock")
	cfg.RuntimeDir = filepath.Dir(cfg.Socket)
	return cfg
}

// syncBuffer is a bytes.Buffer safe for the router's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Start returns a router that accepts clients at once; Close stops it,
// removes its socket and is idempotent.
func TestStartServesUntilClose(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	cfg := startConfig(t, "start1")
	srv, err := Start(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	c, err := discovery.Dial(context.Background(), discovery.DialOptions{Socket: cfg.Socket})
	require.NoError(t, err, "a started router accepts clients without waiting")
	require.Equal(t, "start1", c.Welcome().Domain)
	require.NoError(t, c.Close())

	require.NoError(t, srv.Close())
	_, err = os.Stat(cfg.Socket)
	require.ErrorIs(t, err, os.ErrNotExist, "Close removes the socket")
	require.NoError(t, srv.Close(), "Close is idempotent")
	// The embedder's logger received the router's records.
	require.Contains(t, logs.String(), "router ready")
	require.Contains(t, logs.String(), "router stopped")
}

// Start's context bounds the start only: the router keeps serving after it
// ends, until Close.
func TestStartContextBoundsStartOnly(t *testing.T) {
	t.Parallel()
	cfg := startConfig(t, "start2")
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer srv.Close()
	cancel()
	c, err := discovery.Dial(context.Background(), discovery.DialOptions{Socket: cfg.Socket})
	require.NoError(t, err, "the router serves after Start's context ended")
	require.NoError(t, c.Close())

	// A context that ends before the router is ready fails the start.
	done, stop := context.WithCancel(context.Background())
	stop()
	_, err = Start(done, startConfig(t, "start2b"), Options{Logger: slog.New(slog.DiscardHandler)})
	require.ErrorIs(t, err, context.Canceled)
}

// Start returns Serve's early error, with everything released: here another
// router (of another domain) listens on the socket.
func TestStartReturnsServeError(t *testing.T) {
	t.Parallel()
	first := startConfig(t, "start3a")
	srv, err := Start(context.Background(), first, Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer srv.Close()

	second := startConfig(t, "start3b")
	second.Socket = first.Socket
	_, err = Start(context.Background(), second, Options{Logger: slog.New(slog.DiscardHandler)})
	require.ErrorIs(t, err, discovery.ErrRouterRunning)
	// The failed start released its domain lock: the domain starts now.
	second.Socket = filepath.Join(t.TempDir(), "r.sock")
	again, err := Start(context.Background(), second, Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, again.Close())
}

// Start and New honour Config.LogLevel when no logger is given.
func TestServerLogLevelFromConfig(t *testing.T) {
	t.Parallel()
	for _, level := range []string{"debug", "info", "warn", "error"} {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			cfg := startConfig(t, "lvl-"+level)
			cfg.LogLevel = level
			srv, err := New(cfg, Options{})
			require.NoError(t, err)
			defer srv.Close()
			ctx := context.Background()
			want := cfg.SlogLevel()
			require.True(t, srv.log.Enabled(ctx, want), "level %s enabled", level)
			require.False(t, srv.log.Enabled(ctx, want-1), "below %s disabled", level)
		})
	}
}
