package roudi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// TestIntrospectConnectionTraffic: each connection's traffic, which only
// its publisher counts, reaches the router with the publisher's report and
// shows in that connection's row and metrics. A fast block-producer
// subscriber takes and releases every sample; a slow discard-oldest one
// with a queue of 4 takes 2 of the 4 left at the end: the rows differ
// exactly as the publisher counted.
func TestIntrospectConnectionTraffic(t *testing.T) {
	t.Parallel()
	const n = 10
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	slow, err := subscriber.New(ctx, "traffic/a", subscriber.Options{Socket: sock, QueueCapacity: 4, Policy: parallax.DiscardOldest})
	require.NoError(t, err)
	defer slow.Close()
	fast, err := subscriber.New(ctx, "traffic/a", subscriber.Options{Socket: sock, QueueCapacity: 16, Policy: parallax.BlockProducer})
	require.NoError(t, err)
	defer fast.Close()
	pub, err := publisher.New(ctx, "traffic/a", publisher.Options{Socket: sock, MaxPayload: 64, ExpectedSubscribers: 2})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 2))
	for i := range n {
		require.NoError(t, pub.Send(fmt.Appendf(nil, "sample %d", i)))
		s, err := fast.Take(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Release())
	}
	for range 2 {
		s, err := slow.Take(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Release())
	}

	type traffic struct{ delivered, dropped, returned uint64 }
	want := map[uint32]traffic{slow.ID(): {n, n - 4, 2}, fast.ID(): {n, 0, n}}
	got := map[uint32]traffic{}
	var rows []roudi.ConnStat
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		in, err := srv.Introspect(ctx)
		require.NoError(t, err)
		rows = in.Connections
		clear(got)
		for _, c := range rows {
			if c.Topic == "traffic/a" && c.Reported {
				require.Equal(t, pub.ID(), c.PubID)
				got[c.SubID] = traffic{c.Delivered, c.Dropped, c.Returned}
			}
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		require.True(t, time.Now().Before(deadline), "connection rows never showed %v (delivered, dropped, returned by subscriber): %+v", want, rows)
		<-tick.C
	}
	st := pub.Stats()
	require.EqualValues(t, 2*n, st.Delivered, "the rows add up to the publisher's own count")
	require.EqualValues(t, n-4, st.Dropped)

	hs := httptest.NewServer(srv.MetricsHandler())
	defer hs.Close()
	body := scrape(t, hs.URL)
	for sub, w := range want {
		l := fmt.Sprintf(`{publisher="%d",subscriber="%d",topic="traffic/a"}`, pub.ID(), sub)
		for _, m := range []string{
			fmt.Sprintf("parallax_connection_delivered_total%s %d", l, w.delivered),
			fmt.Sprintf("parallax_connection_dropped_total%s %d", l, w.dropped),
			fmt.Sprintf("parallax_connection_returned_total%s %d", l, w.returned),
		} {
			require.True(t, strings.Contains(body, m), "scrape lacks %q", m)
		}
	}
}

// TestReportConnTrafficChecked: the router believes a connection's traffic
// only from the client whose publisher owns the connection, and only while
// its counters grow; an entry for a connection it does not know (ended
// while the report was on its way) is ignored.
func TestReportConnTrafficChecked(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	honest, err := publisher.New(ctx, "traffic/honest", publisher.Options{Socket: sock, MaxPayload: 64})
	require.NoError(t, err)
	defer honest.Close()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: sock, Name: "liar"})
	require.NoError(t, err)
	defer c.Close()
	r, files, err := c.Request(ctx, &wire.CreatePublisher{Topic: "traffic/liar"}, nil)
	for _, f := range files {
		f.Close()
	}
	require.NoError(t, err)
	liar := r.(*wire.PublisherCreated).PubID
	for _, topic := range []string{"traffic/honest", "traffic/liar"} {
		sub, err := subscriber.New(ctx, topic, subscriber.Options{Socket: sock, QueueCapacity: 4})
		require.NoError(t, err)
		defer sub.Close()
	}
	conns := map[uint32]roudi.ConnStat{} // by publisher
	waitFor(t, "both connections", func() bool {
		in, err := srv.Introspect(ctx)
		require.NoError(t, err)
		clear(conns)
		for _, cs := range in.Connections {
			conns[cs.PubID] = cs
		}
		return len(conns) == 2
	})
	report := func(ts ...wire.ConnTraffic) error {
		_, files, err := c.Request(ctx, &wire.ReportMemory{Conns: ts}, nil)
		for _, f := range files {
			f.Close()
		}
		return err
	}
	theirs, mine := conns[honest.ID()].ConnID, conns[liar].ConnID

	err = report(wire.ConnTraffic{ConnID: theirs, Delivered: 1 << 40})
	require.ErrorIs(t, err, parallax.ErrPermissionDenied, "another client's connection")
	require.Contains(t, err.Error(), fmt.Sprintf("connection %d", theirs))
	require.NoError(t, report(wire.ConnTraffic{ConnID: mine, Delivered: 5, Dropped: 1, Returned: 2}, wire.ConnTraffic{ConnID: 1 << 30, Delivered: 7}))
	err = report(wire.ConnTraffic{ConnID: mine, Delivered: 4, Dropped: 1, Returned: 2})
	require.ErrorIs(t, err, wire.ErrInvalidArgument, "a counter went back")
	require.Contains(t, err.Error(), "Delivered")

	in, err := srv.Introspect(ctx)
	require.NoError(t, err)
	require.Len(t, in.Connections, 2, "the unknown connection's entry was ignored")
	for _, cs := range in.Connections {
		switch cs.ConnID {
		case mine:
			require.True(t, cs.Reported)
			require.Equal(t, [3]uint64{5, 1, 2}, [3]uint64{cs.Delivered, cs.Dropped, cs.Returned}, "the liar's own connection: its word")
		case theirs:
			require.NotEqual(t, uint64(1<<40), cs.Delivered, "the lie does not touch another publisher's connection")
		}
	}
}
