package services_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/rpc"
	"github.com/parallax-ipc/parallax/services"
)

// TestRequestResponseListed: a request/response service is listed and
// watched as its own kind beside a topic of the same name, with its
// request and response types, clients (publishers) and servers
// (subscribers); a server leaving is a change, the last endpoint leaving
// makes it disappear with its kind.
func TestRequestResponseListed(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	opts := services.Options{Socket: sock}

	pub, err := publisher.New(ctx, "plan", publisher.Options{Socket: sock})
	require.NoError(t, err)
	defer pub.Close()
	ropts := rpc.Options{Socket: sock, Request: rpc.Type{Name: "Goal", Size: 16, Align: 8}, Response: rpc.Type{Name: "Path", Size: 64, Align: 8}}
	s, err := rpc.NewServer(ctx, "plan", ropts)
	require.NoError(t, err)
	c, err := rpc.NewClient(ctx, "plan", ropts)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.WaitForServers(ctx, 1))

	list, err := services.List(ctx, opts)
	require.NoError(t, err)
	require.Len(t, list, 2, "%+v", list)
	require.Equal(t, services.KindTopic, list[0].Kind)
	require.Len(t, list[0].Publishers, 1)
	rr := list[1]
	require.Equal(t, "plan", rr.Name)
	require.Equal(t, services.KindRequestResponse, rr.Kind)
	require.Equal(t, "request-response", rr.Kind.String())
	require.Equal(t, services.Type{Name: "Goal", Size: 16, Align: 8}, rr.Type)
	require.Equal(t, services.Type{Name: "Path", Size: 64, Align: 8}, rr.ResponseType)
	require.Len(t, rr.Publishers, 1, "one client")
	require.Len(t, rr.Subscribers, 1, "one server")
	require.True(t, rr.CanPublish, "may call")
	require.True(t, rr.CanSubscribe, "may serve")

	w, err := services.Watch(ctx, opts)
	require.NoError(t, err)
	defer w.Close()
	seen := map[services.Kind]bool{}
	for range 2 {
		ev := next(t, w)
		require.Equal(t, services.Appeared, ev.Kind)
		seen[ev.Service.Kind] = true
	}
	require.Equal(t, map[services.Kind]bool{services.KindTopic: true, services.KindRequestResponse: true}, seen)

	require.NoError(t, s.Close())
	for {
		ev := next(t, w)
		require.Equal(t, services.KindRequestResponse, ev.Service.Kind, "only the service changes")
		require.Equal(t, services.Changed, ev.Kind)
		if len(ev.Service.Subscribers) == 0 {
			require.Len(t, ev.Service.Publishers, 1)
			break
		}
	}
	require.NoError(t, c.Close())
	for {
		ev := next(t, w)
		require.Equal(t, services.KindRequestResponse, ev.Service.Kind)
		if ev.Kind == services.Disappeared {
			require.Equal(t, services.Type{Name: "Goal", Size: 16, Align: 8}, ev.Service.Type)
			break
		}
		require.Equal(t, services.Changed, ev.Kind)
	}
}
