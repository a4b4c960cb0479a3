package roudi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
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

// waitPublisherSegs polls the router's introspection until ok accepts the
// segment rows of publisher pub (nil when it has none), or fails after a
// deadline naming what it saw last.
func waitPublisherSegs(t *testing.T, srv *roudi.Server, pub uint32, what string, ok func([]roudi.PublisherSegStat) bool) []roudi.PublisherSegStat {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		in, err := srv.Introspect(ctx)
		cancel()
		require.NoError(t, err)
		var rows []roudi.PublisherSegStat
		for _, s := range in.PublisherSegments {
			if s.PubID == pub {
				rows = append(rows, s)
			}
		}
		if ok(rows) {
			return rows
		}
		require.True(t, time.Now().Before(deadline), "%s: router shows %+v", what, rows)
		<-tick.C
	}
}

// TestIntrospectPublisherMemory: in the owned model the router lists every
// data segment of a publisher with its own figures (chunk size, count,
// bytes, page size) and the publisher's reported accounting, which follows
// what the publisher loans and what its subscriber holds, exactly; the
// rows go when the publisher and its subscriber do. The metrics carry the
// same numbers per publisher.
func TestIntrospectPublisherMemory(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	sub, err := subscriber.New(ctx, "mem/a", subscriber.Options{Socket: sock, QueueCapacity: 8, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	pub, err := publisher.New(ctx, "mem/a", publisher.Options{Socket: sock, History: 2, MaxPayload: 256})
	require.NoError(t, err)
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	for i := range 5 {
		require.NoError(t, pub.Send([]byte{byte(i)}))
	}
	var held []subscriber.Sample
	for range 2 {
		s, err := sub.Take(ctx)
		require.NoError(t, err)
		held = append(held, s)
	}
	loan, err := pub.Loan(100)
	require.NoError(t, err)

	// 5 delivered and not returned (2 held, 3 queued; the history's 2 are
	// among them) plus 1 loan.
	rows := waitPublisherSegs(t, srv, pub.ID(), "report of 6 in use", func(r []roudi.PublisherSegStat) bool {
		return len(r) > 0 && r[0].Reported && r[0].Memory.InUse == 6 && r[0].Memory.Loans == 1
	})
	var count uint32
	for _, r := range rows {
		require.Equal(t, "mem/a", r.Topic)
		require.EqualValues(t, os.Getpid(), r.PID)
		require.False(t, r.Dead)
		require.Positive(t, r.ChunkSize)
		require.EqualValues(t, os.Getpagesize(), r.PageSize)
		require.False(t, r.Hugepages)
		require.Positive(t, r.Bytes)
		require.Equal(t, rows[0].Memory, r.Memory, "one publisher, one report")
		count += r.Count
	}
	m := rows[0].Memory
	require.Equal(t, count, m.Chunks, "the publisher's chunks are the router's segments' chunks")
	require.EqualValues(t, len(rows), m.Segments)
	require.EqualValues(t, 5, m.Outstanding)
	require.EqualValues(t, 2, m.History)
	require.EqualValues(t, 6, m.HighWater)
	require.Equal(t, m.Chunks-6, m.Free)

	hs := httptest.NewServer(srv.MetricsHandler())
	defer hs.Close()
	body := scrape(t, hs.URL)
	l := fmt.Sprintf(`{publisher="%d",topic="mem/a"}`, pub.ID())
	for _, want := range []string{
		"parallax_publisher_in_use_chunks" + l + " 6",
		"parallax_publisher_loans" + l + " 1",
		"parallax_publisher_outstanding_chunks" + l + " 5",
		"parallax_publisher_high_water_chunks" + l + " 6",
		fmt.Sprintf("parallax_publisher_chunks%s %d", l, count),
		"parallax_publisher_tombstones 0",
	} {
		require.True(t, strings.Contains(body, want), "scrape lacks %q", want)
	}

	// Everything handed back: 3 queued remain (the history's 2 among them).
	require.NoError(t, pub.Release(loan))
	for _, s := range held {
		require.NoError(t, s.Release())
	}
	waitPublisherSegs(t, srv, pub.ID(), "report of 3 in use", func(r []roudi.PublisherSegStat) bool {
		return len(r) > 0 && r[0].Memory.InUse == 3 && r[0].Memory.Loans == 0 && r[0].Memory.HighWater == 6
	})

	require.NoError(t, pub.Close())
	require.NoError(t, sub.Close())
	waitPublisherSegs(t, srv, pub.ID(), "no segment left", func(r []roudi.PublisherSegStat) bool { return len(r) == 0 })
}

// TestReportMemoryChecked: a client reports only its own publishers, and
// no more chunks than the router created for them; within that it is
// believed (it can only misstate its own use). The shared model lists no
// publisher segments and takes no reports.
func TestReportMemoryChecked(t *testing.T) {
	routertest.ForModels(t, func(t *testing.T, cfg string) {
		srv := routertest.Start(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		other, err := publisher.New(ctx, "mem/other", publisher.Options{Socket: srv.SocketPath()})
		require.NoError(t, err)
		defer other.Close()
		c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: "liar"})
		require.NoError(t, err)
		defer c.Close()
		r, files, err := c.Request(ctx, &wire.CreatePublisher{Topic: "mem/liar"}, nil)
		for _, f := range files {
			f.Close()
		}
		require.NoError(t, err)
		own := r.(*wire.PublisherCreated).PubID
		report := func(p wire.PubMemory) error {
			_, files, err := c.Request(ctx, &wire.ReportMemory{Publishers: []wire.PubMemory{p}}, nil)
			for _, f := range files {
				f.Close()
			}
			return err
		}

		err = report(wire.PubMemory{PubID: other.ID(), Segments: 1, Chunks: 1, InUse: 1})
		require.ErrorIs(t, err, parallax.ErrPermissionDenied, "another client's publisher")
		require.Contains(t, err.Error(), fmt.Sprintf("publisher %d", other.ID()))
		if cfg == routertest.Shared {
			require.ErrorIs(t, report(wire.PubMemory{PubID: own, Segments: 1, Chunks: 1, InUse: 1}), wire.ErrInvalidArgument, "no owned memory")
			in, err := srv.Introspect(ctx)
			require.NoError(t, err)
			require.Empty(t, in.PublisherSegments)
			return
		}
		rows := waitPublisherSegs(t, srv, own, "the liar's segment", func(r []roudi.PublisherSegStat) bool { return len(r) == 1 })
		chunks := rows[0].Count
		err = report(wire.PubMemory{PubID: own, Segments: 1, Chunks: chunks + 1, InUse: chunks + 1})
		require.ErrorIs(t, err, wire.ErrInvalidArgument, "more chunks than its segments hold")
		require.Contains(t, err.Error(), "chunks")
		require.Error(t, report(wire.PubMemory{PubID: own, Segments: 2, Chunks: chunks, Free: chunks}), "more segments than it has")
		// A lie within its own segments is believed: it is about itself.
		require.NoError(t, report(wire.PubMemory{PubID: own, Segments: 1, Chunks: chunks, InUse: chunks, HighWater: chunks}))
		waitPublisherSegs(t, srv, own, "the liar's report", func(r []roudi.PublisherSegStat) bool {
			return len(r) == 1 && r[0].Reported && r[0].Memory.InUse == chunks
		})
		rows = waitPublisherSegs(t, srv, other.ID(), "the honest publisher's row", func(r []roudi.PublisherSegStat) bool { return len(r) > 0 })
		require.NotEqual(t, chunks, rows[0].Memory.InUse, "the lie does not touch another publisher")
	})
}
