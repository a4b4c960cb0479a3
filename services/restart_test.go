package services_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/services"
)

// startOn starts a router with the domain, socket and runtime directory of
// cfg.
func startOn(t *testing.T, cfg *roudi.Config) *roudi.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := roudi.Start(ctx, cfg, roudi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	return srv
}

// A watcher survives a router restart: after reconnecting it takes a
// fresh snapshot and reports what changed while it was away.
func TestWatchAcrossRouterRestart(t *testing.T) {
	t.Parallel()
	cfg, err := roudi.ParseConfig([]byte(routertest.Small))
	require.NoError(t, err)
	cfg.Domain = fmt.Sprintf("svc-restart-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	cfg.Socket = filepath.Join(t.TempDir(), "roudi.sock")
	cfg.RuntimeDir = filepath.Dir(cfg.Socket)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv1 := startOn(t, cfg)
	pa, err := publisher.New(ctx, "before", publisher.Options{Socket: cfg.Socket})
	require.NoError(t, err)
	w, err := services.Watch(ctx, services.Options{Socket: cfg.Socket})
	require.NoError(t, err)
	defer w.Close()
	ev := next(t, w)
	require.Equal(t, services.Appeared, ev.Kind)
	require.Equal(t, "before", ev.Service.Name)

	closed, err := services.Watch(ctx, services.Options{Socket: cfg.Socket})
	require.NoError(t, err)
	require.NoError(t, closed.Close())

	require.NoError(t, srv1.Close())
	require.NoError(t, pa.Close()) // gone while no router runs
	srv2 := startOn(t, cfg)
	defer srv2.Close()
	pb, err := publisher.New(ctx, "after", publisher.Options{Socket: cfg.Socket})
	require.NoError(t, err)
	defer pb.Close()

	got := map[string]services.EventKind{}
	for len(got) < 2 {
		ev := next(t, w)
		got[ev.Service.Name] = ev.Kind
	}
	require.Equal(t, map[string]services.EventKind{"before": services.Disappeared, "after": services.Appeared}, got)
	require.NoError(t, w.Err())
	// The restarted router has the live watcher's watch, not the closed one's.
	waitWatches(t, srv2, 1)
}
