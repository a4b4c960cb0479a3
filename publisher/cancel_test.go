package publisher_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// An endpoint whose New gives up before the router's reply (its context
// ended) leaves nothing at the router while the process lives on: the
// router created the endpoint before the reply, so the process closes it
// when the reply comes. Otherwise a phantom publisher keeps its data
// segment and shows as a publisher of the topic, and a phantom subscriber
// takes a queue's worth of every sample its publishers send, for as long
// as the process runs. The context is ended before New, so the reply
// always comes after the wait gave up; the process keeps one subscriber
// and one publisher attached throughout, so its connection (and whatever
// the router frees with it) stays.
func TestNewGivenUpLeavesNothing(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Small)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	sub, err := subscriber.New(ctx, "given-up", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "given-up", publisher.Options{Socket: sock, MaxPayload: 64})
	require.NoError(t, err)
	defer pub.Close()

	gone, stop := context.WithCancel(ctx)
	stop()
	const tries = 20
	for range tries {
		p, err := publisher.New(gone, "given-up", publisher.Options{Socket: sock, MaxPayload: 64})
		if err == nil { // the reply won the race with the ended context
			require.NoError(t, p.Close())
		} else {
			require.ErrorIs(t, err, context.Canceled)
		}
		s, err := subscriber.New(gone, "given-up", subscriber.Options{Socket: sock})
		if err == nil {
			require.NoError(t, s.Close())
		} else {
			require.ErrorIs(t, err, context.Canceled)
		}
	}

	// The router serves a client's requests in order: once this one is
	// answered, every endpoint given up on exists there (or was closed).
	sync, err := publisher.New(ctx, "given-up-sync", publisher.Options{Socket: sock, MaxPayload: 64})
	require.NoError(t, err)
	require.NoError(t, sync.Close())
	// The router ends with this process's two live endpoints only, and
	// they are connected to each other only.
	var last roudi.ClientInfo
	ok := waitClient(ctx, t, srv, func(c roudi.ClientInfo) bool {
		last = c
		return slices.Equal(c.Publishers, []uint32{pub.ID()}) && slices.Equal(c.Subscribers, []uint32{sub.ID()})
	})
	require.True(t, ok, "the router still holds endpoints New gave up on: publishers %v (live %d), subscribers %v (live %d)",
		last.Publishers, pub.ID(), last.Subscribers, sub.ID())
	// The router removed the other connections; the pushes that say so
	// may still be on their way.
	require.True(t, waitCond(ctx, func() bool { return pub.Subscribers() == 1 && sub.Publishers() == 1 }),
		"pub has %d subscribers, sub %d publishers", pub.Subscribers(), sub.Publishers())
	// Each subscriber of the loop, given up on or closed, was connected to
	// pub, and each connection is gone, not left closing: a given-up
	// subscriber's connections are released after its close, as its own
	// Close would. (Left closing, they would hold pub's chunks delivered
	// on them until this process exits.)
	require.True(t, waitCond(ctx, func() bool { return pub.Stats().Removed == tries }),
		"pub saw %d of its %d connections to subscribers given up on or closed removed", pub.Stats().Removed, tries)
	requireOnlyConn(ctx, t, srv, pub.ID(), sub.ID())
	require.NoError(t, pub.Send([]byte("still flows")))
	smp, err := sub.Take(ctx)
	require.NoError(t, err)
	require.Equal(t, "still flows", string(smp.Bytes()))
	require.NoError(t, smp.Release())
}

// waitClient waits until cond holds for this process's entry in srv's
// registry, or 5 s or ctx end (false).
func waitClient(ctx context.Context, t *testing.T, srv *roudi.Server, cond func(roudi.ClientInfo) bool) bool {
	t.Helper()
	return waitCond(ctx, func() bool {
		snap, err := srv.Snapshot(ctx)
		if err != nil {
			return false
		}
		return slices.ContainsFunc(snap.Clients, func(c roudi.ClientInfo) bool { return c.PID == int32(os.Getpid()) && cond(c) })
	})
}

// waitCond waits until cond holds, or 5 s or ctx end (false).
func waitCond(ctx context.Context, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Millisecond):
		}
	}
	return true
}

// requireOnlyConn requires srv's connections to be one, from publisher
// pub to subscriber sub.
func requireOnlyConn(ctx context.Context, t *testing.T, srv *roudi.Server, pub, sub uint32) {
	t.Helper()
	snap, err := srv.Snapshot(ctx)
	require.NoError(t, err)
	var conns []string
	for _, c := range snap.Connections {
		conns = append(conns, fmt.Sprintf("%d: %d->%d", c.ID, c.Pub, c.Sub))
	}
	require.Len(t, snap.Connections, 1, "connections at the router: %v", conns)
	require.Equal(t, [2]uint32{pub, sub}, [2]uint32{snap.Connections[0].Pub, snap.Connections[0].Sub})
}

// Given-up subscriber.News over a runtime of their own (another path to
// the socket) whose only other endpoint closes right after them: each
// subscriber is closed and its connection released, and the runtime then
// disconnects. Whether an undo still runs when that endpoint closes
// depends on timing; internal/clientrt TestGivenUpCreateKeepsRuntimeForItsUndo
// holds that case deterministically.
func TestNewGivenUpLastReference(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Small)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	pub, err := publisher.New(ctx, "given-up-last", publisher.Options{Socket: sock, MaxPayload: 64})
	require.NoError(t, err)
	defer pub.Close()
	sub, err := subscriber.New(ctx, "given-up-last", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	defer sub.Close()
	// Another path to the same socket: a runtime, and a control
	// connection, that nothing else of this process holds.
	alias := filepath.Join(t.TempDir(), "alias.sock")
	require.NoError(t, os.Symlink(sock, alias))

	// The alias's runtime is up (a New with an ended context cannot dial)
	// while its only endpoint closes right after the given-up News: their
	// replies come in before its close's answer, their undos after.
	holder, err := publisher.New(ctx, "given-up-last-holder", publisher.Options{Socket: alias, MaxPayload: 64})
	require.NoError(t, err)

	gone, stop := context.WithCancel(ctx)
	stop()
	const tries = 10
	for range tries {
		s, err := subscriber.New(gone, "given-up-last", subscriber.Options{Socket: alias})
		if err == nil {
			require.NoError(t, s.Close())
			continue
		}
		require.ErrorIs(t, err, context.Canceled)
	}
	require.NoError(t, holder.Close())
	require.True(t, waitCond(ctx, func() bool { return pub.Stats().Removed == tries }),
		"pub saw %d of its %d connections to subscribers given up on or closed removed", pub.Stats().Removed, tries)
	requireOnlyConn(ctx, t, srv, pub.ID(), sub.ID())
	// Once done, the alias's control connection goes: this process is
	// one client again.
	require.True(t, waitCond(ctx, func() bool {
		snap, err := srv.Snapshot(ctx)
		return err == nil && len(snap.Clients) == 1
	}), "the given-up requests' runtime stays connected")
}

// A LoanWait whose context ended while it asked the router for a segment
// (here: an oversized loan with a context ended before the call) leaves no
// segment at the router: the one added after the wait gave up is retired
// when the reply comes. Otherwise each such loan would keep a dedicated
// segment of the loan's size, counted against the domain's limits and
// granted to every subscriber, until the publisher closes.
func TestLoanWaitGivenUpLeavesNoSegment(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Small)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	pub, err := publisher.New(ctx, "grow-given-up", publisher.Options{Socket: sock, MaxPayload: 64})
	require.NoError(t, err)
	defer pub.Close()
	sub, err := subscriber.New(ctx, "grow-given-up", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	defer sub.Close()
	segments := func() (n int, bytes uint64) {
		in, err := srv.Introspect(ctx)
		require.NoError(t, err)
		for _, s := range in.PublisherSegments {
			if s.PubID == pub.ID() {
				n++
				bytes += s.Bytes
			}
		}
		return n, bytes
	}
	n0, b0 := segments()

	gone, stop := context.WithCancel(ctx)
	stop()
	const tries = 10
	for range tries {
		c, err := pub.LoanWait(gone, 256<<10)
		if err == nil { // the reply won the race with the ended context
			require.NoError(t, pub.Release(c))
			continue
		}
		require.ErrorIs(t, err, context.Canceled)
	}
	// Requests are served in order: after this one, every segment given
	// up on was added (or already retired).
	sync, err := publisher.New(ctx, "grow-given-up-sync", publisher.Options{Socket: sock, MaxPayload: 64})
	require.NoError(t, err)
	require.NoError(t, sync.Close())

	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	var n int
	var b uint64
	for n, b = segments(); n > n0 && wctx.Err() == nil; n, b = segments() {
		select {
		case <-wctx.Done():
		case <-time.After(time.Millisecond):
		}
	}
	require.Equal(t, n0, n, "the router keeps %d bytes of segments the publisher never mapped (it had %d bytes in %d)", b-b0, b0, n0)

	// The publisher still grows when it waits for the answer.
	c, err := pub.LoanWait(ctx, 256<<10)
	require.NoError(t, err)
	require.NoError(t, pub.Publish(c))
	smp, err := sub.Take(ctx)
	require.NoError(t, err)
	require.Len(t, smp.Bytes(), 256<<10)
	require.NoError(t, smp.Release())
}
