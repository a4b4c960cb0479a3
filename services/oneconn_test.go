package services_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/services"
	"github.com/parallax-ipc/parallax/subscriber"
)

// A process with a publisher, a subscriber and a Watcher has one control
// connection to the router (issue 14): the router lists one client, this
// process, and the watcher follows the endpoints over it.
func TestWatcherSharesTheConnection(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := publisher.New(ctx, "one", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer p.Close()
	s, err := subscriber.New(ctx, "one", subscriber.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer s.Close()
	w, err := services.Watch(ctx, services.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer w.Close()
	ev := next(t, w)
	require.Equal(t, services.Appeared, ev.Kind)
	require.Equal(t, "one", ev.Service.Name)

	snap, err := srv.Snapshot(ctx)
	require.NoError(t, err)
	var pids []string
	for _, c := range snap.Clients {
		pids = append(pids, fmt.Sprintf("client %d pid %d (%d publishers, %d subscribers)", c.ID, c.PID, len(c.Publishers), len(c.Subscribers)))
	}
	require.Len(t, snap.Clients, 1, "control connections: %v", pids)
	require.Equal(t, int32(os.Getpid()), snap.Clients[0].PID)

	// The watch works over it: a second subscriber changes the service.
	s2, err := subscriber.New(ctx, "one", subscriber.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer s2.Close()
	ev = next(t, w)
	require.Equal(t, services.Changed, ev.Kind)
	require.Len(t, ev.Service.Subscribers, 2)
	snap, err = srv.Snapshot(ctx)
	require.NoError(t, err)
	require.Len(t, snap.Clients, 1)
}
