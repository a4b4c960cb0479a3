package roudi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// TestIntrospectPublisherCounters: in the owned model a publisher's
// message counters (published, delivered, dropped, unconnected, removed
// connections), which only its process knows, reach the router with its
// memory report: the introspection and the metrics show the samples it
// published before any subscriber was connected.
func TestIntrospectPublisherCounters(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	pub, err := publisher.New(ctx, "count/a", publisher.Options{Socket: sock, MaxPayload: 256})
	require.NoError(t, err)
	defer pub.Close()
	for range 4 {
		require.NoError(t, pub.Send([]byte("lost")))
	}
	sub, err := subscriber.New(ctx, "count/a", subscriber.Options{Socket: sock, QueueCapacity: 8})
	require.NoError(t, err)
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	for range 3 {
		require.NoError(t, pub.Send([]byte("heard")))
	}
	require.NoError(t, sub.Close())

	rows := waitPublisherSegs(t, srv, pub.ID(), "7 published, 4 unconnected, 1 removed", func(r []roudi.PublisherSegStat) bool {
		return len(r) > 0 && r[0].Reported && r[0].Memory.Published == 7 && r[0].Memory.Removed == 1
	})
	m := rows[0].Memory
	require.EqualValues(t, 4, m.Unconnected, "%+v", m)
	require.EqualValues(t, 3, m.Delivered, "%+v", m)
	require.Zero(t, m.Dropped, "%+v", m)

	hs := httptest.NewServer(srv.MetricsHandler())
	defer hs.Close()
	body := scrape(t, hs.URL)
	l := fmt.Sprintf(`{publisher="%d",topic="count/a"}`, pub.ID())
	for _, want := range []string{
		"parallax_publisher_published_total" + l + " 7",
		"parallax_publisher_delivered_total" + l + " 3",
		"parallax_publisher_dropped_total" + l + " 0",
		"parallax_publisher_unconnected_total" + l + " 4",
		"parallax_publisher_removed_connections_total" + l + " 1",
	} {
		require.True(t, strings.Contains(body, want), "scrape lacks %q", want)
	}
}
