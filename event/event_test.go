package event_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/event"
	"github.com/parallax-ipc/parallax/internal/routertest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// collect waits on l until every id of want was received (or ctx ends),
// checking each wake's set: sorted, no id twice, only ids that were sent.
func collect(t *testing.T, ctx context.Context, l *event.Listener, want map[uint64]bool) (got map[uint64]bool, wakes int) {
	t.Helper()
	got = map[uint64]bool{}
	for len(got) < len(want) {
		ids, err := l.Wait(ctx)
		require.NoError(t, err, "received %d of %d ids", len(got), len(want))
		wakes++
		for i, id := range ids {
			require.True(t, want[id], "id %d was never signalled", id)
			if i > 0 {
				require.Less(t, ids[i-1], id, "a wake's set is sorted and holds each id once")
			}
			got[id] = true
		}
	}
	return got, wakes
}

// A flood of 100k signals from 4 notifiers over 97 ids reaches two
// listeners coalesced and whole: each wake reports a set (each id once),
// and the union is exactly the set sent.
func TestFloodCoalesced(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	opts := event.Options{Socket: srv.SocketPath()}
	var ls []*event.Listener
	for range 2 {
		l, err := event.NewListener(ctx, "frames", opts)
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		ls = append(ls, l)
	}
	const notifiers, signals, ids = 4, 100_000, 97
	var ns []*event.Notifier
	for range notifiers {
		n, err := event.NewNotifier(ctx, "frames", opts)
		require.NoError(t, err)
		t.Cleanup(func() { _ = n.Close() })
		require.NoError(t, n.WaitForListeners(ctx, 2))
		ns = append(ns, n)
	}
	for _, l := range ls {
		require.NoError(t, l.WaitForNotifiers(ctx, notifiers))
	}
	want := map[uint64]bool{}
	for i := range ids {
		want[uint64(i)*1_000_003] = true // spread over the id space
	}
	var wg sync.WaitGroup
	for k, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range signals / notifiers {
				id := uint64((i*7+k)%ids) * 1_000_003
				if err := n.Signal(id); err != nil {
					t.Errorf("signal %d: %v", id, err)
					return
				}
			}
		}()
	}
	type res struct {
		got   map[uint64]bool
		wakes int
	}
	out := make([]res, len(ls))
	var lw sync.WaitGroup
	for i, l := range ls {
		lw.Add(1)
		go func() {
			defer lw.Done()
			g, w := collect(t, ctx, l, want)
			out[i] = res{g, w}
		}()
	}
	wg.Wait()
	lw.Wait()
	for i, r := range out {
		require.Equal(t, want, r.got, "listener %d", i)
		t.Logf("listener %d: %d ids in %d wakes for %d signals", i, len(r.got), r.wakes, signals)
	}
	// After the flood: a fresh signal of one id is one wake with that id.
	require.NoError(t, ns[0].Signal(5))
	for _, l := range ls {
		ids, err := l.Wait(ctx)
		require.NoError(t, err)
		require.Contains(t, ids, uint64(5))
	}
}

// More distinct ids than a listener's ring holds: the notifier waits for
// room (the listener drains meanwhile) and no id is lost.
func TestMoreIDsThanCapacity(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	opts := event.Options{Socket: srv.SocketPath(), Capacity: 8}
	l, err := event.NewListener(ctx, "doors", opts)
	require.NoError(t, err)
	defer l.Close()
	n, err := event.NewNotifier(ctx, "doors", opts)
	require.NoError(t, err)
	defer n.Close()
	require.NoError(t, n.WaitForListeners(ctx, 1))
	want := map[uint64]bool{}
	for i := range 1000 {
		want[uint64(i)] = true
	}
	done := make(chan error, 1)
	go func() {
		for i := range 1000 {
			if err := n.Signal(uint64(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	got, _ := collect(t, ctx, l, want)
	require.NoError(t, <-done)
	require.Equal(t, want, got)
}

// Notifying needs the publish side of the service's access rule,
// listening the subscribe side.
func TestAccessRefused(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned+`
[[access]]
topic = "guarded"
publish_uids = [4242]
subscribe_uids = [4242]
`)
	ctx := testCtx(t)
	opts := event.Options{Socket: srv.SocketPath()}
	_, err := event.NewNotifier(ctx, "guarded", opts)
	require.ErrorIs(t, err, parallax.ErrPermissionDenied)
	require.ErrorContains(t, err, `may not notify "guarded"`)
	_, err = event.NewListener(ctx, "guarded", opts)
	require.ErrorIs(t, err, parallax.ErrPermissionDenied)
	require.ErrorContains(t, err, `may not listen to "guarded"`)
}

// Events need the owned model.
func TestSharedModelRefused(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Shared) // shared model: deleted in step 14
	ctx := testCtx(t)
	_, err := event.NewNotifier(ctx, "x", event.Options{Socket: srv.SocketPath()})
	require.ErrorIs(t, err, parallax.ErrNotSupported)
	_, err = event.NewListener(ctx, "x", event.Options{Socket: srv.SocketPath()})
	require.ErrorIs(t, err, parallax.ErrNotSupported)
}

// A listener that goes away is dropped by the notifier (the router
// removes its connection) while the other listener is signalled on; a
// notifier that goes away after signalling still has its ids read, and
// the listener forgets it.
func TestEndpointGoneCleanedUp(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	opts := event.Options{Socket: srv.SocketPath()}
	n, err := event.NewNotifier(ctx, "bell", opts)
	require.NoError(t, err)
	defer n.Close()
	a, err := event.NewListener(ctx, "bell", opts)
	require.NoError(t, err)
	defer a.Close()
	b, err := event.NewListener(ctx, "bell", opts)
	require.NoError(t, err)
	require.NoError(t, n.WaitForListeners(ctx, 2))
	require.NoError(t, n.Signal(1))
	require.NoError(t, b.Close())
	require.Eventually(t, func() bool { return n.Listeners() == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, n.Signal(2))
	ids, err := a.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2}, ids)

	n2, err := event.NewNotifier(ctx, "bell", opts)
	require.NoError(t, err)
	require.NoError(t, a.WaitForNotifiers(ctx, 2))
	require.NoError(t, n2.WaitForListeners(ctx, 1))
	require.NoError(t, n2.Signal(42))
	require.NoError(t, n2.Close())
	require.Eventually(t, func() bool { return a.Notifiers() == 1 }, 10*time.Second, time.Millisecond)
	ids, err = a.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, []uint64{42}, ids, "a closed notifier's last signal is read")
}

// Options.Spin < 0 means "sleep at once" (no spin), as for subscribers and
// wait sets; it used to be refused as out of range.
func TestNoSpin(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx := testCtx(t)
	opts := event.Options{Socket: srv.SocketPath(), Spin: -1}
	l, err := event.NewListener(ctx, "nospin", opts)
	require.NoError(t, err)
	defer l.Close()
	n, err := event.NewNotifier(ctx, "nospin", opts)
	require.NoError(t, err)
	defer n.Close()
	require.NoError(t, n.WaitForListeners(ctx, 1))
	done := make(chan error, 1)
	go func() { done <- n.Signal(42) }()
	got, _ := collect(t, ctx, l, map[uint64]bool{42: true})
	require.Equal(t, map[uint64]bool{42: true}, got)
	require.NoError(t, <-done)
}
