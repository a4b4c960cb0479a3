package subscriber_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// waitConns waits until the router has exactly n connections.
func waitConns(ctx context.Context, t *testing.T, srv *roudi.Server, n int) {
	t.Helper()
	for {
		snap, err := srv.Snapshot(ctx)
		require.NoError(t, err)
		if len(snap.Connections) == n {
			return
		}
		require.NoError(t, ctx.Err(), "%d connections, want %d", len(snap.Connections), n)
		runtime.Gosched()
	}
}

// A removed connection leaves the router at once, both when the publisher
// closes (the subscriber still gets what was queued) and when the
// subscriber closes (the publisher stops pushing).
func TestRemovedConnectionsReleased(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "rel", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 16})
	require.NoError(t, err)
	defer sub.Close()
	for round := range 3 {
		pub, err := publisher.New(ctx, "rel", publisher.Options{Socket: srv.SocketPath()})
		require.NoError(t, err)
		require.NoError(t, sub.WaitForPublishers(ctx, 1))
		for i := range 5 {
			require.NoError(t, pub.Send(fmt.Appendf(nil, "%d/%d", round, i)))
		}
		require.NoError(t, pub.Close())
		waitConns(ctx, t, srv, 0)
		for i := range 5 {
			s, err := sub.TryTake()
			require.NoError(t, err, "round %d sample %d queued before the publisher closed", round, i)
			require.Equal(t, fmt.Sprintf("%d/%d", round, i), string(s.Bytes()))
			require.NoError(t, s.Release())
		}
	}

	pub, err := publisher.New(ctx, "rel", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, pub.Send([]byte("left in the queue")))
	require.NoError(t, sub.Close())
	waitConns(ctx, t, srv, 0)
}

// Connections come and go on one topic while another streams: no
// subscriber ever sees an entry that belongs to another connection,
// nothing it was sent is lost while its publisher lives, and no
// connection is left at the end.
func TestConnectionChurnKeepsRingsApart(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	steadySub, err := subscriber.New(ctx, "steady", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 64, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	steadyPub, err := publisher.New(ctx, "steady", publisher.Options{Socket: srv.SocketPath(), BlockTimeout: 30 * time.Second})
	require.NoError(t, err)
	require.NoError(t, steadyPub.WaitForSubscribers(ctx, 1))
	stop := make(chan struct{})
	streamed := make(chan error, 1)
	go func() {
		var n int
		for {
			select {
			case <-stop:
				streamed <- steadyPub.Send(fmt.Appendf(nil, "steady %d end", n))
				return
			default:
			}
			if err := steadyPub.Send(fmt.Appendf(nil, "steady %d", n)); err != nil {
				streamed <- err
				return
			}
			n++
		}
	}()
	checked := make(chan error, 1)
	go func() {
		for n := 0; ; n++ {
			s, err := steadySub.Take(ctx)
			if err != nil {
				checked <- err
				return
			}
			got := string(s.Bytes())
			_ = s.Release()
			if got == fmt.Sprintf("steady %d end", n) {
				checked <- nil
				return
			}
			if want := fmt.Sprintf("steady %d", n); got != want {
				checked <- fmt.Errorf("steady subscriber got %q, want %q", got, want)
				return
			}
		}
	}()

	for round := range 60 {
		sub, err := subscriber.New(ctx, "churn", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 8})
		require.NoError(t, err)
		pub, err := publisher.New(ctx, "churn", publisher.Options{Socket: srv.SocketPath()})
		require.NoError(t, err)
		require.NoError(t, pub.WaitForSubscribers(ctx, 1))
		for k := range 3 {
			require.NoError(t, pub.Send(fmt.Appendf(nil, "churn %d %d", round, k)))
		}
		if round%2 == 0 {
			require.NoError(t, pub.Close()) // the subscriber keeps what was queued
		}
		for k := range 3 {
			s, err := sub.Take(ctx)
			require.NoError(t, err, "round %d sample %d", round, k)
			require.Equal(t, fmt.Sprintf("churn %d %d", round, k), string(s.Bytes()))
			require.NoError(t, s.Release())
		}
		require.NoError(t, sub.Close())
		require.NoError(t, pub.Close())
	}
	close(stop)
	require.NoError(t, <-streamed)
	require.NoError(t, <-checked)
	require.NoError(t, steadyPub.Close())
	require.NoError(t, steadySub.Close())
	waitConns(ctx, t, srv, 0)
}
