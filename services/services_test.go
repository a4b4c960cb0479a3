package services_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/services"
	"github.com/parallax-ipc/parallax/subscriber"
)

// next returns the watcher's next event, failing after a deadline.
func next(t *testing.T, w *services.Watcher) services.Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		require.True(t, ok, "events closed: %v", w.Err())
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return services.Event{}
}

// A watcher gets the snapshot, then each change, with the endpoints'
// details and the caller's access.
func TestWatch(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := services.Options{Socket: srv.SocketPath()}

	pa, err := publisher.New(ctx, "a", publisher.Options{Socket: srv.SocketPath(), TypeName: "A", TypeSize: 16, TypeAlign: 8, History: 2})
	require.NoError(t, err)
	defer pa.Close()

	w, err := services.Watch(ctx, opts)
	require.NoError(t, err)
	defer w.Close()

	ev := next(t, w)
	require.Equal(t, services.Appeared, ev.Kind)
	s := ev.Service
	require.Equal(t, "a", s.Name)
	require.Equal(t, services.KindTopic, s.Kind)
	require.Equal(t, services.Type{Name: "A", Size: 16, Align: 8}, s.Type)
	require.True(t, s.CanPublish)
	require.True(t, s.CanSubscribe)
	require.Len(t, s.Publishers, 1)
	require.Equal(t, int32(os.Getpid()), s.Publishers[0].PID)
	require.Equal(t, 2, s.Publishers[0].History)
	require.NotZero(t, s.Publishers[0].ClientID)
	require.Empty(t, s.Subscribers)

	sa, err := subscriber.New(ctx, "a", subscriber.Options{Socket: srv.SocketPath(), TypeName: "A", TypeSize: 16, TypeAlign: 8,
		QueueCapacity: 8, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	ev = next(t, w)
	require.Equal(t, services.Changed, ev.Kind)
	require.Len(t, ev.Service.Subscribers, 1)
	sub := ev.Service.Subscribers[0]
	require.Equal(t, parallax.BlockProducer, sub.Policy)
	require.Equal(t, 8, sub.QueueCapacity)
	require.Equal(t, int32(os.Getpid()), sub.PID)

	pb, err := publisher.New(ctx, "b", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	ev = next(t, w)
	require.Equal(t, services.Appeared, ev.Kind)
	require.Equal(t, "b", ev.Service.Name)

	list, err := services.List(ctx, opts)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "a", list[0].Name)
	require.Equal(t, "b", list[1].Name)
	require.Len(t, list[0].Subscribers, 1)
	require.Equal(t, list, w.Services())

	require.NoError(t, pb.Close())
	ev = next(t, w)
	require.Equal(t, services.Disappeared, ev.Kind)
	require.Equal(t, "b", ev.Service.Name)
	require.Empty(t, ev.Service.Publishers)

	require.NoError(t, sa.Close())
	ev = next(t, w)
	require.Equal(t, services.Changed, ev.Kind)
	require.Empty(t, ev.Service.Subscribers)

	require.NoError(t, w.Close())
	_, ok := <-w.Events()
	require.False(t, ok, "events must be closed after Close")
	require.ErrorIs(t, w.Err(), os.ErrClosed)
}

// The access flags apply the router's rules to the caller.
func TestWatchAccess(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Small+`
[[access]]
topic = "secret/*"
publish_uids = [4000000000]
`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := subscriber.New(ctx, "secret/x", subscriber.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer s.Close()
	list, err := services.List(ctx, services.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.False(t, list[0].CanPublish)
	require.True(t, list[0].CanSubscribe)
}

// WaitForPublisher returns once a publisher exists, and honours its
// context.
func TestWaitFor(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := services.Options{Socket: srv.SocketPath()}

	// A subscriber alone does not satisfy it.
	s, err := subscriber.New(ctx, "w", subscriber.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer s.Close()

	type result struct {
		s   services.Service
		err error
	}
	got := make(chan result, 1)
	waiting, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		sv, err := services.WaitForPublisher(waiting, opts, "w")
		got <- result{sv, err}
	}()
	// The watch shares this process's control connection (the
	// subscriber's): the publisher below reaches it either in its
	// snapshot or as a change, and both must satisfy it.
	select {
	case r := <-got:
		t.Fatalf("WaitForPublisher returned before any publisher: %+v %v", r.s, r.err)
	default:
	}
	p, err := publisher.New(ctx, "w", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer p.Close()
	r := <-got
	require.NoError(t, r.err)
	require.Len(t, r.s.Publishers, 1)
	require.Len(t, r.s.Subscribers, 1)

	// Cancellation.
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := services.WaitFor(cctx, opts, "never", nil)
		done <- err
	}()
	ccancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("WaitFor ignored its context")
	}
}

func TestNoRouter(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := services.List(ctx, services.Options{Socket: filepath.Join(t.TempDir(), "none.sock")})
	require.ErrorIs(t, err, parallax.ErrDaemonUnavailable)
	_, err = services.WaitForPublisher(ctx, services.Options{Socket: filepath.Join(t.TempDir(), "none.sock")}, "x")
	require.True(t, errors.Is(err, parallax.ErrDaemonUnavailable), "%v", err)
}
