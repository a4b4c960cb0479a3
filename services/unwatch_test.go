package services_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/services"
)

// watchesOf returns the router's count of pid's open service watches.
func watchesOf(ctx context.Context, t *testing.T, srv *roudi.Server, pid int32) int {
	t.Helper()
	snap, err := srv.Snapshot(ctx)
	require.NoError(t, err)
	for _, c := range snap.Clients {
		if c.PID == pid {
			return c.Watches
		}
	}
	return 0
}

// waitWatches waits (10 s at most) until the router counts want watches
// of this process.
func waitWatches(t *testing.T, srv *roudi.Server, want int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		got := watchesOf(ctx, t, srv, int32(os.Getpid()))
		if got == want {
			return
		}
		select {
		case <-deadline.C:
			require.Equal(t, want, got, "router's count of this process's service watches")
			return
		case <-tick.C:
		}
	}
}

// A closed Watcher is unwatched at the router: a process that opens and
// closes watchers (while another keeps watching, and another client
// changes the services) leaves the router with exactly the watches still
// open, and none once the last one is closed.
func TestWatcherCloseUnwatches(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := services.Options{Socket: srv.SocketPath()}

	p, err := publisher.New(ctx, "unwatch", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer p.Close()

	keep, err := services.Watch(ctx, opts)
	require.NoError(t, err)
	defer keep.Close()
	require.Equal(t, "unwatch", next(t, keep).Service.Name)

	for range 20 {
		w, err := services.Watch(ctx, opts)
		require.NoError(t, err)
		require.Equal(t, "unwatch", next(t, w).Service.Name)
		require.NoError(t, w.Close())
	}
	waitWatches(t, srv, 1)

	// The remaining watcher still follows the services.
	p2, err := publisher.New(ctx, "unwatch2", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer p2.Close()
	ev := next(t, keep)
	require.Equal(t, services.Appeared, ev.Kind)
	require.Equal(t, "unwatch2", ev.Service.Name)

	require.NoError(t, keep.Close())
	waitWatches(t, srv, 0)
}
