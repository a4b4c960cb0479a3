package publisher_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Samples published before any subscriber is connected are not lost
// silently: Stats counts them as Unconnected. Once a subscriber is there,
// they count as Delivered, once per subscriber; outstanding loans show.
func TestStatsUnconnected(t *testing.T) {
	t.Parallel()
	testStatsUnconnected(t, routertest.Small)
}

func testStatsUnconnected(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "stats", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	st0 := pub.Stats()
	st0.Memory = publisher.MemoryStats{} // the owned model's own chunks (all free)
	require.Equal(t, publisher.Stats{}, st0)

	for range 5 {
		require.NoError(t, pub.Send([]byte("nobody listens")))
	}
	st := pub.Stats()
	require.Equal(t, uint64(5), st.Published)
	require.Equal(t, uint64(5), st.Unconnected)
	require.Zero(t, st.Delivered)

	sub, err := subscriber.New(ctx, "stats", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 8})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	for range 3 {
		require.NoError(t, pub.Send([]byte("heard")))
	}
	st = pub.Stats()
	require.Equal(t, uint64(8), st.Published)
	require.Equal(t, uint64(5), st.Unconnected)
	require.Equal(t, uint64(3), st.Delivered)
	require.Zero(t, st.Dropped)
	require.Equal(t, 1, st.Subscribers)
	for range 3 {
		s, err := sub.TakeTimeout(5 * time.Second)
		require.NoError(t, err)
		require.Equal(t, "heard", string(s.Bytes()))
		require.NoError(t, s.Release())
	}

	// Two subscribers: one publish is delivered twice.
	sub2, err := subscriber.New(ctx, "stats", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 8})
	require.NoError(t, err)
	defer sub2.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 2))
	require.NoError(t, pub.Send([]byte("both")))
	require.Equal(t, uint64(5), pub.Stats().Delivered)

	c, err := pub.Loan(8)
	require.NoError(t, err)
	require.Equal(t, int64(1), pub.Stats().Loans)
	require.NoError(t, pub.Release(c))
	require.Zero(t, pub.Stats().Loans)
}
