package subscriber_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// A subscriber of large samples in the owned model connects and receives:
// the connection's bound (connection_budget / chunk size: 4 for 1 MiB
// chunks and a 4 MiB budget; 8 for 4 MiB chunks and the default 32 MiB) is
// below the default max held (16), and the connection's max held is capped
// by it instead of the subscriber refusing the connection.
func TestOwnedLargeChunksBoundBelowMaxHeld(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned+"[publishers]\nconnection_budget = \"4MiB\"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	const size = 1 << 20
	sub, err := subscriber.New(ctx, "large", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "large", publisher.Options{Socket: sock, MaxPayload: size})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, sub.WaitForPublishers(ctx, 1), "the connection is attached")
	c, err := pub.Loan(size)
	require.NoError(t, err)
	c.Bytes()[size-1] = 42
	require.NoError(t, pub.Publish(c))
	x, err := sub.Take(ctx)
	require.NoError(t, err)
	require.Len(t, x.Bytes(), size)
	require.Equal(t, byte(42), x.Bytes()[size-1])
	require.NoError(t, x.Release())
}
