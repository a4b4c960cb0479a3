package roudi_test

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Helpers of the guard and ring-check tests: hostile raw clients, honest
// publisher and subscriber pairs, waiting with a deadline, and the final
// audit that the router survived.

// rawConn dials the router and completes the handshake by hand.
func rawConn(t *testing.T, srv *roudi.Server) *discovery.Conn {
	t.Helper()
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: srv.SocketPath(), Net: "unixpacket"})
	require.NoError(t, err)
	fc := discovery.NewConn(uc)
	t.Cleanup(func() { fc.Close() })
	require.NoError(t, fc.Send(1, &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, PID: int32(os.Getpid()), Name: "raw"}, nil))
	env, files, err := fc.Recv()
	require.NoError(t, err)
	for _, f := range files {
		f.Close()
	}
	require.IsType(t, &wire.Welcome{}, env.Msg)
	return fc
}

// newSub opens an honest subscriber of topic on srv with opts (Socket set
// here); cleanup closes it. Tests close it themselves to check Close.
func newSub(t *testing.T, ctx context.Context, srv *roudi.Server, topic string, opts subscriber.Options) *subscriber.Subscriber {
	t.Helper()
	opts.Socket = srv.SocketPath()
	sub, err := subscriber.New(ctx, topic, opts)
	require.NoError(t, err)
	t.Cleanup(func() { sub.Close() })
	return sub
}

// newPub opens an honest publisher of topic on srv with opts (Socket set
// here); cleanup closes it. Tests close it themselves to check Close.
func newPub(t *testing.T, ctx context.Context, srv *roudi.Server, topic string, opts publisher.Options) *publisher.Publisher {
	t.Helper()
	opts.Socket = srv.SocketPath()
	pub, err := publisher.New(ctx, topic, opts)
	require.NoError(t, err)
	t.Cleanup(func() { pub.Close() })
	return pub
}

// newPair opens an honest subscriber and then an honest publisher of topic.
func newPair(t *testing.T, ctx context.Context, srv *roudi.Server, topic string) (*subscriber.Subscriber, *publisher.Publisher) {
	t.Helper()
	sub := newSub(t, ctx, srv, topic, subscriber.Options{})
	return sub, newPub(t, ctx, srv, topic, publisher.Options{})
}

// expectTake takes the next sample from sub and requires it to be want.
func expectTake(t *testing.T, sub *subscriber.Subscriber, want string) {
	t.Helper()
	x, err := sub.TakeTimeout(5 * time.Second)
	require.NoError(t, err, "take %q", want)
	require.Equal(t, want, string(x.Bytes()))
	require.NoError(t, x.Release())
}

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// closeAllAndAudit closes each of cs, requiring no error, then
// requireAliveAndFree.
func closeAllAndAudit(t *testing.T, srv *roudi.Server, cs ...io.Closer) {
	t.Helper()
	for _, c := range cs {
		require.NoError(t, c.Close())
	}
	requireAliveAndFree(t, srv)
}

// requireAliveAndFree checks the router still answers and, once every
// client is gone, that no memory is left in use: in the owned model no
// publisher data segment (live or tombstone) remains; in the shared model
// every pool is 100% free (the idle sweep repairs what hostile peers left).
func requireAliveAndFree(t *testing.T, srv *roudi.Server) {
	t.Helper()
	ctx := ctx10s(t)
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: "probe"})
	require.NoError(t, err, "router must still accept clients")
	_, _, err = c.Request(ctx, &wire.Ping{}, nil)
	require.NoError(t, err, "router must still answer")
	require.NoError(t, c.Close())
	waitFor(t, "no publisher segment left", func() bool {
		in, err := srv.Introspect(ctx)
		require.NoError(t, err)
		return len(in.PublisherSegments) == 0
	})
}
