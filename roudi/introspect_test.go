package roudi_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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

// traffic publishes n samples on topic to one discard-oldest subscriber
// with a queue of 4 and takes take of them, leaving the rest queued or
// dropped. The endpoints stay open until the test ends.
func traffic(t *testing.T, srv *roudi.Server, topic string, n, take int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	sub, err := subscriber.New(ctx, topic, subscriber.Options{Socket: sock, QueueCapacity: 4})
	require.NoError(t, err)
	t.Cleanup(func() { sub.Close() })
	pub, err := publisher.New(ctx, topic, publisher.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { pub.Close() })
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	for i := range take {
		require.NoError(t, pub.Send([]byte{byte(i)}))
		s, err := sub.Take(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Release())
	}
	for i := take; i < n; i++ {
		require.NoError(t, pub.Send([]byte{byte(i)}))
	}
}

// Shared model: deleted in step 14. Its topic and connection traffic
// counters come from the router sampling the shared rings; in the owned
// model the router reads no client memory and clients do not report
// traffic yet, so these counters stay 0 there (not done, design §8.10).
// The owned model's introspection is checked by TestIntrospectPublisherMemory and
// TestReportMemoryChecked.
func TestIntrospectCounters(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Shared)
	traffic(t, srv, "intro/a", 10, 3) // 3 delivered, 7 pushed into a ring of 4: 3 dropped, 4 queued
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := srv.Introspect(ctx)
	require.NoError(t, err)
	require.Len(t, in.Topics, 1)
	top := in.Topics[0]
	require.Equal(t, "intro/a", top.Name)
	require.EqualValues(t, 1, top.Publishers)
	require.EqualValues(t, 1, top.Subscribers)
	require.EqualValues(t, 10, top.Published)
	require.EqualValues(t, 3, top.Delivered)
	require.EqualValues(t, 3, top.Dropped)
	require.EqualValues(t, 4, top.QueueDepth)
	require.EqualValues(t, 4, top.QueueCapacity)
	require.Len(t, in.Connections, 1)
	require.EqualValues(t, 4, in.Connections[0].Depth)
	require.EqualValues(t, 10, in.Connections[0].Pushed)
	require.Len(t, in.Processes, 1, "publisher and subscriber share the process's runtime")
	require.Equal(t, srv.MonitorKind(), in.Router.Monitor, "the process monitor in use (ebpf as root, else pidfd)")
	require.Contains(t, []string{"ebpf", "pidfd"}, in.Router.Monitor)
	require.Equal(t, in.Router.Monitor, in.Processes[0].Monitor)
	require.EqualValues(t, 1, in.Router.Processes)
	require.NotEmpty(t, in.Pools)
	var inUse uint64
	for _, p := range in.Pools {
		inUse += p.InUse
		require.False(t, p.Hugepages)
		require.EqualValues(t, 1, p.Segments)
	}
	require.EqualValues(t, 4, inUse, "the 4 queued samples hold chunks")
}

// Shared model: deleted in step 14. Its topic and connection traffic
// counters come from the router sampling the shared rings; in the owned
// model the router reads no client memory and clients do not report
// traffic yet, so these counters stay 0 there (not done, design §8.10).
// The owned model's introspection is checked by TestIntrospectPublisherMemory and
// TestReportMemoryChecked.
func TestIntrospectOverSocket(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Shared)
	traffic(t, srv, "intro/b", 2, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: "introspect-test"})
	require.NoError(t, err)
	defer c.Close()

	m, _, err := c.Request(ctx, &wire.GetRouterInfo{}, nil)
	require.NoError(t, err)
	info := m.(*wire.RouterInfo)
	require.Equal(t, srv.Config().Domain, info.Domain)
	require.EqualValues(t, 2, info.Processes, "the endpoints' shared runtime and this client")

	m, _, err = c.Request(ctx, &wire.ListTopics{}, nil)
	require.NoError(t, err)
	tl := m.(*wire.TopicList)
	require.Len(t, tl.Topics, 1)
	require.EqualValues(t, 2, tl.Topics[0].Delivered)
	require.Zero(t, tl.Next)

	m, _, err = c.Request(ctx, &wire.ListProcesses{}, nil)
	require.NoError(t, err)
	names := []string{}
	for _, p := range m.(*wire.ProcessList).Processes {
		names = append(names, p.Name)
	}
	require.Contains(t, names, "introspect-test")

	m, _, err = c.Request(ctx, &wire.ListPools{}, nil)
	require.NoError(t, err)
	require.Len(t, m.(*wire.PoolList).Pools, len(srv.Config().Pools))

	m, _, err = c.Request(ctx, &wire.ListConnections{Offset: 1000}, nil)
	require.NoError(t, err)
	require.Empty(t, m.(*wire.ConnectionList).Connections, "an offset past the end is an empty page")
}

func TestIntrospectPaging(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = wire.MaxIntrospectPage + 6
	for i := range n {
		p, err := publisher.New(ctx, "page/t"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26)), publisher.Options{Socket: srv.SocketPath()})
		require.NoError(t, err)
		t.Cleanup(func() { p.Close() })
	}
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer c.Close()
	var all []wire.TopicStat
	off := uint32(0)
	for {
		m, _, err := c.Request(ctx, &wire.ListTopics{Offset: off}, nil)
		require.NoError(t, err)
		tl := m.(*wire.TopicList)
		all = append(all, tl.Topics...)
		if tl.Next == 0 {
			break
		}
		off = tl.Next
	}
	require.Len(t, all, n)
}

// Shared model: deleted in step 14. Its topic and connection traffic
// counters come from the router sampling the shared rings; in the owned
// model the router reads no client memory and clients do not report
// traffic yet, so these counters stay 0 there (not done, design §8.10).
// The owned model's introspection is checked by TestIntrospectPublisherMemory and
// TestReportMemoryChecked.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Shared)
	traffic(t, srv, "metrics/a", 5, 5)

	hs := httptest.NewServer(srv.MetricsHandler())
	defer hs.Close()
	body := scrape(t, hs.URL)
	for _, want := range []string{
		`parallax_topic_published_total{topic="metrics/a"} 5`,
		`parallax_topic_delivered_total{topic="metrics/a"} 5`,
		`parallax_topic_dropped_total{topic="metrics/a"} 0`,
		`parallax_processes 1`,
		`parallax_pool_chunks{chunk_size="256",pool="0"} 1024`,
		`parallax_reclaims_total 0`,
		`parallax_monitor_events_total{source="socket"}`,
		`parallax_control_request_duration_seconds_bucket{type="CreatePublisher"`,
		`parallax_router_info{domain="` + srv.Config().Domain + `"`,
		`go_goroutines`,
	} {
		require.True(t, strings.Contains(body, want), "scrape lacks %q", want)
	}

	// The real listener, as parallax-roudi -metrics runs it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeMetrics(ctx, ln) }()
	require.Contains(t, scrape(t, "http://"+ln.Addr().String()+"/metrics"), `parallax_topic_delivered_total{topic="metrics/a"} 5`)
	cancel()
	require.NoError(t, <-done)
}

func TestMetricsCountReclaims(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "metrics/r", subscriber.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	require.NoError(t, sub.Close())
	// Closing the runtime's last endpoint ends its control connection:
	// the router sees the socket close and reclaims the client.
	for {
		in, err := srv.Introspect(ctx)
		require.NoError(t, err)
		if in.Router.Reclaims > 0 {
			require.NotZero(t, in.MonitorEvents["socket"])
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no reclaim counted: %+v", in.Router)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
