package publisher_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/event"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// All endpoints of one process share one control connection per router:
// the router sees one client, whatever mix of publishers, subscribers and
// event endpoints the process opens, and the connection closes with the
// last of them (issue 14).
func TestOneControlConnectionPerProcess(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sock := srv.SocketPath()

	pub, err := publisher.New(ctx, "one/a", publisher.Options{Socket: sock})
	require.NoError(t, err)
	pub2, err := publisher.New(ctx, "one/b", publisher.Options{Socket: sock})
	require.NoError(t, err)
	sub, err := subscriber.New(ctx, "one/a", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	n, err := event.NewNotifier(ctx, "one/ev", event.Options{Socket: sock})
	require.NoError(t, err)
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	in, err := srv.Introspect(ctx)
	require.NoError(t, err)
	require.Len(t, in.Processes, 1, "one process, one control connection: %+v", in.Processes)
	require.GreaterOrEqual(t, in.Processes[0].Publishers, uint32(2))
	require.GreaterOrEqual(t, in.Processes[0].Subscribers, uint32(1))

	// Closing all but one keeps the connection; closing the last closes it.
	require.NoError(t, pub.Close())
	require.NoError(t, sub.Close())
	require.NoError(t, n.Close())
	in, err = srv.Introspect(ctx)
	require.NoError(t, err)
	require.Len(t, in.Processes, 1, "pub2 still holds the connection")
	require.NoError(t, pub2.Close())
	waitProcesses(ctx, t, srv, 0)

	// A new endpoint dials again.
	pub3, err := publisher.New(ctx, "one/c", publisher.Options{Socket: sock})
	require.NoError(t, err)
	waitProcesses(ctx, t, srv, 1)
	require.NoError(t, pub3.Close())
	waitProcesses(ctx, t, srv, 0)
}

// waitProcesses waits until the router lists n client processes.
func waitProcesses(ctx context.Context, t *testing.T, srv *roudi.Server, n int) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		in, err := srv.Introspect(ctx)
		require.NoError(t, err)
		if len(in.Processes) == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("router lists %d processes, want %d: %+v", len(in.Processes), n, in.Processes)
		case <-tick.C:
		}
	}
}
