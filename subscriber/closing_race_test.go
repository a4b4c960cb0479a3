package subscriber_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// A connection announced to a subscriber while it closes (a publisher
// created meanwhile: the router pushes its ConnectionAdded and grant
// before it serves the CloseSubscriber) ends with the Close: the router
// frees it and tells its publisher, which is not held back by a
// subscriber that no longer exists. The publisher lives in the same
// process, so the process keeps its router connection: nothing but the
// subscriber's release ends the connection's closing state. Before, a
// push that reached the closed (or unregistered) subscriber was dropped
// without a release, and the connection stayed closing until the
// process exited: the publisher never saw it removed.
func TestConnectionAddedWhileClosingReleased(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name            string
		afterUnregister bool
	}{{"closed endpoint", false}, {"unregistered endpoint", true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := routertest.Start(t, "")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const capacity = 4
			sub, err := subscriber.New(ctx, "closing-race", subscriber.Options{Socket: srv.SocketPath(),
				QueueCapacity: capacity, Policy: subscriber.BlockProducer})
			require.NoError(t, err)
			reached, release := make(chan struct{}), make(chan struct{})
			subscriber.HoldClose(sub, c.afterUnregister, reached, release)
			closed := make(chan error, 1)
			go func() { closed <- sub.Close() }()
			select {
			case <-reached:
			case <-ctx.Done():
				close(release)
				t.Fatal("Close did not reach the hold")
			}

			// The router connects the new publisher to the subscriber it
			// still knows, and pushes the connection to this process.
			pub, err := publisher.New(ctx, "closing-race", publisher.Options{Socket: srv.SocketPath()})
			if err != nil {
				close(release)
				require.NoError(t, err)
			}
			defer pub.Close()
			require.NoError(t, pub.WaitForSubscribers(ctx, 1), "the publisher is connected before the subscriber's close goes on")
			close(release)
			require.NoError(t, <-closed)

			waitConns(ctx, t, srv, 0)
			for pub.Stats().Removed != 1 || pub.Subscribers() != 0 {
				require.NoError(t, ctx.Err(), "the connection of the closed subscriber is never removed: publisher stats %+v", pub.Stats())
				runtime.Gosched()
			}
			// Nothing holds the block-producer publisher back: more than a
			// queue's worth goes out, none of it dropped.
			for i := range 3 * capacity {
				require.NoError(t, pub.Send([]byte{byte(i)}))
			}
			require.Zero(t, pub.Stats().Dropped)
		})
	}
}
