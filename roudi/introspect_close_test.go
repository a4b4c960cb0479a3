package roudi_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// TestIntrospectClosedPublisherCounters: a publisher that publishes and
// closes within one report interval still counts. Close reports its final
// counters before the router forgets it, and the router keeps a departed
// publisher's last report in its topic's sums: with the subscriber still
// attached, the topic shows exactly the N published and N delivered.
func TestIntrospectClosedPublisherCounters(t *testing.T) {
	t.Parallel()
	const n = 5
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	sub, err := subscriber.New(ctx, "count/closed", subscriber.Options{Socket: sock, QueueCapacity: 8})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "count/closed", publisher.Options{Socket: sock, MaxPayload: 64})
	require.NoError(t, err)
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	for range n {
		require.NoError(t, pub.Send([]byte("last words")))
	}
	for range n {
		s, err := sub.Take(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Release())
	}
	require.NoError(t, pub.Close())

	var got roudi.TopicStat
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		in, err := srv.Introspect(ctx)
		require.NoError(t, err)
		got = roudi.TopicStat{}
		for _, ts := range in.Topics {
			if ts.Name == "count/closed" {
				got = ts
			}
		}
		if got.Published == n && got.Delivered == n && got.Publishers == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the closed publisher's %d samples never reached the topic's counters: %+v", n, got)
		<-tick.C
	}
	require.Zero(t, got.Dropped, "%+v", got)
	require.EqualValues(t, 1, got.Subscribers, "%+v", got)
}
