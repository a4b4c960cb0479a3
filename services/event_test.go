package services_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/event"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/services"
)

// nextOf returns w's next event about service name of kind k, skipping
// the others.
func nextOf(t *testing.T, w *services.Watcher, name string, k services.Kind) services.Event {
	t.Helper()
	for {
		if ev := next(t, w); ev.Service.Name == name && ev.Service.Kind == k {
			return ev
		}
	}
}

// TestEventListed: an event service is listed and watched as its own kind
// beside a topic of the same name, with its notifiers (publishers) and
// listeners (subscribers); it appears with its first endpoint, changes as
// endpoints come and go and disappears with its last, for a watcher that
// was there before and for one that starts while it exists.
func TestEventListed(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	opts := services.Options{Socket: sock}
	pub, err := publisher.New(ctx, "frame", publisher.Options{Socket: sock})
	require.NoError(t, err)
	defer pub.Close()
	w, err := services.Watch(ctx, opts)
	require.NoError(t, err)
	defer w.Close()

	eopts := event.Options{Socket: sock}
	l1, err := event.NewListener(ctx, "frame", eopts)
	require.NoError(t, err)
	defer l1.Close()
	ev := nextOf(t, w, "frame", services.KindEvent)
	require.Equal(t, services.Appeared, ev.Kind)
	require.Equal(t, "event", ev.Service.Kind.String())
	require.Len(t, ev.Service.Subscribers, 1, "one listener")
	require.Empty(t, ev.Service.Publishers, "no notifier yet")

	n, err := event.NewNotifier(ctx, "frame", eopts)
	require.NoError(t, err)
	defer n.Close()
	l2, err := event.NewListener(ctx, "frame", eopts)
	require.NoError(t, err)
	defer l2.Close()
	require.NoError(t, n.WaitForListeners(ctx, 2))
	for ev = nextOf(t, w, "frame", services.KindEvent); len(ev.Service.Publishers) != 1 || len(ev.Service.Subscribers) != 2; ev = nextOf(t, w, "frame", services.KindEvent) {
		require.Equal(t, services.Changed, ev.Kind)
	}
	require.Equal(t, services.Changed, ev.Kind)

	list, err := services.List(ctx, opts)
	require.NoError(t, err)
	require.Len(t, list, 2, "%+v", list)
	require.Equal(t, services.KindTopic, list[0].Kind)
	es := list[1]
	require.Equal(t, "frame", es.Name)
	require.Equal(t, services.KindEvent, es.Kind)
	require.Len(t, es.Publishers, 1, "one notifier")
	require.Len(t, es.Subscribers, 2, "two listeners")
	require.True(t, es.CanPublish, "may notify")
	require.True(t, es.CanSubscribe, "may listen")

	// A watcher that starts now gets the event service in its snapshot.
	w2, err := services.Watch(ctx, opts)
	require.NoError(t, err)
	defer w2.Close()
	ev = nextOf(t, w2, "frame", services.KindEvent)
	require.Equal(t, services.Appeared, ev.Kind)
	require.Len(t, ev.Service.Publishers, 1)
	require.Len(t, ev.Service.Subscribers, 2)

	require.NoError(t, n.Close())
	require.NoError(t, l1.Close())
	require.NoError(t, l2.Close())
	for _, w := range []*services.Watcher{w, w2} {
		for {
			ev := nextOf(t, w, "frame", services.KindEvent)
			if ev.Kind == services.Disappeared {
				require.Empty(t, ev.Service.Publishers)
				require.Empty(t, ev.Service.Subscribers)
				break
			}
			require.Equal(t, services.Changed, ev.Kind)
		}
	}
	list, err = services.List(ctx, opts)
	require.NoError(t, err)
	require.Len(t, list, 1, "only the topic is left: %+v", list)
}
