package roudi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// topicCounts are a topic's message counters.
type topicCounts struct{ Published, Delivered, Dropped uint64 }

func (a topicCounts) plus(b topicCounts) topicCounts {
	return topicCounts{a.Published + b.Published, a.Delivered + b.Delivered, a.Dropped + b.Dropped}
}

func pubCounts(p *publisher.Publisher) topicCounts {
	s := p.Stats()
	return topicCounts{s.Published, s.Delivered, s.Dropped}
}

// waitTopicCounts polls the introspection until topic's counters equal
// want (as want() returns it at that moment), failing after a deadline or
// as soon as a counter goes backwards.
func waitTopicCounts(t *testing.T, srv *roudi.Server, topic string, want func() topicCounts) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last topicCounts
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		in, err := srv.Introspect(ctx)
		cancel()
		require.NoError(t, err)
		var got topicCounts
		for _, ts := range in.Topics {
			if ts.Name == topic {
				got = topicCounts{ts.Published, ts.Delivered, ts.Dropped}
			}
		}
		require.True(t, got.Published >= last.Published && got.Delivered >= last.Delivered && got.Dropped >= last.Dropped,
			"topic %s counters went back: %+v after %+v", topic, got, last)
		last = got
		w := want()
		if got == w {
			return
		}
		require.True(t, time.Now().Before(deadline), "topic %s: router shows %+v, want %+v", topic, got, w)
		<-tick.C
	}
}

// TestIntrospectTopicCounters: a topic's published, delivered and dropped
// counters are its publishers' own Stats (as they reported them), summed,
// and keep what a closed publisher had counted; the metrics scrape shows
// the same numbers.
func TestIntrospectTopicCounters(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	const topic = "counters/a"
	sub, err := subscriber.New(ctx, topic, subscriber.Options{Socket: sock, QueueCapacity: 4, Policy: subscriber.DiscardOldest})
	require.NoError(t, err)
	defer sub.Close()
	pub1, err := publisher.New(ctx, topic, publisher.Options{Socket: sock, MaxPayload: 64})
	require.NoError(t, err)
	require.NoError(t, pub1.WaitForSubscribers(ctx, 1))
	for i := range 10 {
		require.NoError(t, pub1.Send([]byte{byte(i)}))
	}
	first := pubCounts(pub1)
	require.EqualValues(t, 10, first.Published)
	require.EqualValues(t, 10, first.Delivered)
	require.Positive(t, first.Dropped, "a queue of 4 overflowed")
	waitTopicCounts(t, srv, topic, func() topicCounts { return pubCounts(pub1) })

	// A second publisher: the topic sums both.
	pub2, err := publisher.New(ctx, topic, publisher.Options{Socket: sock, MaxPayload: 64})
	require.NoError(t, err)
	defer pub2.Close()
	require.NoError(t, pub2.WaitForSubscribers(ctx, 1))
	for i := range 3 {
		require.NoError(t, pub2.Send([]byte{byte(i)}))
	}
	waitTopicCounts(t, srv, topic, func() topicCounts { return pubCounts(pub1).plus(pubCounts(pub2)) })

	// The first goes: what it reported stays in the topic's counters.
	require.NoError(t, pub1.Close())
	for i := range 2 {
		require.NoError(t, pub2.Send([]byte{byte(i)}))
	}
	waitTopicCounts(t, srv, topic, func() topicCounts { return first.plus(pubCounts(pub2)) })
	in, err := srv.Introspect(ctx)
	require.NoError(t, err)
	for _, ts := range in.Topics {
		if ts.Name == topic {
			require.EqualValues(t, 1, ts.Publishers, "the first publisher is gone")
		}
	}

	want := first.plus(pubCounts(pub2))
	hs := httptest.NewServer(srv.MetricsHandler())
	defer hs.Close()
	body := scrape(t, hs.URL)
	l := fmt.Sprintf(`{topic="%s"}`, topic)
	for _, line := range []string{
		fmt.Sprintf("parallax_topic_published_total%s %d", l, want.Published),
		fmt.Sprintf("parallax_topic_delivered_total%s %d", l, want.Delivered),
		fmt.Sprintf("parallax_topic_dropped_total%s %d", l, want.Dropped),
	} {
		require.Contains(t, body, line+"\n")
	}
	for _, gone := range []string{"parallax_topic_queue_depth", "parallax_pool_"} {
		require.NotContains(t, body, gone, "a metric nothing fills any more")
	}
}

// TestReportMemoryCountersMonotonic: a publisher's report may not lower a
// counter it reported before (the topic sums and the *_total metrics would
// go backwards).
func TestReportMemoryCountersMonotonic(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: "backwards"})
	require.NoError(t, err)
	defer c.Close()
	r, files, err := c.Request(ctx, &wire.CreatePublisher{Topic: "counters/back"}, nil)
	for _, f := range files {
		f.Close()
	}
	require.NoError(t, err)
	own := r.(*wire.PublisherCreated).PubID
	rows := waitPublisherSegs(t, srv, own, "its segment", func(r []roudi.PublisherSegStat) bool { return len(r) == 1 })
	chunks := rows[0].Count
	report := func(published, dropped uint64) error {
		_, files, err := c.Request(ctx, &wire.ReportMemory{Publishers: []wire.PubMemory{
			{PubID: own, Segments: 1, Chunks: chunks, Free: chunks, Published: published, Delivered: published, Dropped: dropped}}}, nil)
		for _, f := range files {
			f.Close()
		}
		return err
	}
	require.NoError(t, report(10, 2))
	require.NoError(t, report(10, 2), "the same figures again")
	err = report(9, 2)
	require.ErrorIs(t, err, wire.ErrInvalidArgument)
	require.Contains(t, err.Error(), "Published (9 after 10)")
	require.ErrorIs(t, report(11, 1), wire.ErrInvalidArgument)
	require.NoError(t, report(12, 3))
	waitTopicCounts(t, srv, "counters/back", func() topicCounts { return topicCounts{12, 12, 3} })
}
