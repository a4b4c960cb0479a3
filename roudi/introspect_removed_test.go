package roudi_test

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// TestRemovedListPoolsRefused: ListPools (type 72), the router-wide pools'
// introspection, is gone from the protocol (its type reserved). A peer that
// still sends it, after a normal handshake, gets a protocol error naming
// the removed type, and the router goes on serving others.
func TestRemovedListPoolsRefused(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: srv.SocketPath(), Net: "unixpacket"})
	require.NoError(t, err)
	fc := discovery.NewConn(uc)
	defer fc.Close()
	require.NoError(t, fc.Send(1, &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, PID: int32(os.Getpid()), Name: "old-cli"}, nil))
	env, files, err := fc.Recv()
	require.NoError(t, err)
	for _, f := range files {
		f.Close()
	}
	require.IsType(t, &wire.Welcome{}, env.Msg)

	// [type 72, request id 5, ListPools{Offset: 0}], as a version 3 CLI
	// encoded it; this build has no type to encode it with.
	_, err = uc.Write([]byte{0x93, 72, 5, 0x91, 0})
	require.NoError(t, err)
	require.NoError(t, uc.SetReadDeadline(time.Now().Add(20*time.Second)))
	env, files, err = fc.Recv()
	require.NoError(t, err)
	for _, f := range files {
		f.Close()
	}
	e, ok := env.Msg.(*wire.Error)
	require.True(t, ok, "got %T %+v, want an Error", env.Msg, env.Msg)
	require.ErrorIs(t, e.Err(), parallax.ErrProtocol)
	require.Contains(t, e.Message, "unknown message type 72: ListPools was removed")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := srv.Introspect(ctx)
	require.NoError(t, err, "the router goes on serving")
	require.NotNil(t, in)
}
