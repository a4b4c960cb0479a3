package roudi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

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
