package services_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/services"
)

// fakeRouter accepts one client, answers its handshake, and answers its
// WatchServices with pushes, then an Ack. It returns the socket path.
func fakeRouter(t *testing.T, pushes ...wire.Message) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	require.NoError(t, err)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		uc, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		sc, err := discovery.NewServerConn(uc)
		if err != nil {
			uc.Close()
			return
		}
		defer sc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		id, _, err := sc.ReadHello(ctx)
		if err != nil {
			return
		}
		if sc.Reply(id, &wire.Welcome{Version: wire.Version, ClientID: 1, Domain: "fake"}, nil) != nil {
			return
		}
		env, _, err := sc.ReadRequest()
		if err != nil {
			return
		}
		for _, m := range pushes {
			if sc.Push(m, nil) != nil {
				return
			}
		}
		if sc.Reply(env.ReqID, &wire.Ack{}, nil) != nil {
			return
		}
		_, _, _ = sc.ReadRequest() // until the client leaves
	}()
	return sock
}

func update(change uint8, more bool, name string, pubs ...uint32) *wire.ServiceUpdate {
	m := &wire.ServiceUpdate{Change: change, More: more, Service: wire.ServiceDesc{Name: name, Kind: wire.ServiceTopic}}
	for _, id := range pubs {
		m.Service.Publishers = append(m.Service.Publishers, wire.EndpointDesc{ID: id, ClientID: 2, PID: 100})
	}
	return m
}

// A service split over several updates (More) is joined.
func TestWatchJoinsParts(t *testing.T) {
	t.Parallel()
	sock := fakeRouter(t,
		update(wire.ChangeAppeared, true, "big", 1, 2),
		update(wire.ChangeAppeared, false, "big", 3),
		&wire.ServicesSynced{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := services.List(ctx, services.Options{Socket: sock})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Len(t, list[0].Publishers, 3)
	require.Equal(t, uint32(3), list[0].Publishers[2].ID)
}

// A router that breaks the watch protocol is an error wrapping
// parallax.ErrProtocol, naming what was wrong. (A change before the
// snapshot ends is no error: the watch shares the process's control
// connection, where changes for an earlier watch of the process may come
// first.)
func TestWatchRejectsBadStreams(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		pushes []wire.Message
		want   string
	}{
		{"continuation of another service", []wire.Message{update(wire.ChangeAppeared, true, "a", 1), update(wire.ChangeAppeared, false, "b", 2), &wire.ServicesSynced{}}, "continuation"},
		{"synced in the middle of a service", []wire.Message{update(wire.ChangeAppeared, true, "a", 1), &wire.ServicesSynced{}}, "ServicesSynced"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sock := fakeRouter(t, c.pushes...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := services.Watch(ctx, services.Options{Socket: sock})
			require.ErrorIs(t, err, parallax.ErrProtocol)
			require.ErrorContains(t, err, c.want)
		})
	}
}
