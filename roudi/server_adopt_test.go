package roudi

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// TestAdoptChecks: the checks a restarted router runs on a handed-back
// fd (server_adopt.go) accept the segments as the router granted them and
// refuse a read-only fd, a layout other than claimed, and a segment named
// for another publisher or connection.
func TestAdoptChecks(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := startOwnedServer(t)
	pc := dialGrants(t, ctx, srv, "pub")
	sc := dialGrants(t, ctx, srv, "sub")
	typ := wire.TypeInfo{Name: "T", Size: 64, Align: 8}
	pc.request(t, ctx, &wire.CreatePublisher{Topic: "a", Type: typ})
	sc.request(t, ctx, &wire.CreateSubscriber{Topic: "a", Type: typ})
	pc.await(t, ctx, 1, 1)
	sc.await(t, ctx, 1, 1)
	pd, pconns := pc.grants()
	sd, _ := sc.grants()
	require.Len(t, sd, 1)
	ino := func(g interface{ Fd() uintptr }) uint64 {
		var st syscall.Stat_t
		require.NoError(t, syscall.Fstat(int(g.Fd()), &st))
		return st.Ino
	}
	data, conn := pd[0], pconns[0]
	require.NoError(t, srv.checkAdoptData(data.f, data.desc, ino(data.f)))
	require.NoError(t, srv.checkAdoptConn(conn.f, conn.desc, ino(conn.f)))

	// The subscriber's read-only fd of the same segment.
	require.ErrorIs(t, srv.checkAdoptData(sd[0].f, data.desc, ino(sd[0].f)), errAdoptAccess)
	// Another layout than the router made (same size).
	d := data.desc
	d.Count--
	require.ErrorIs(t, srv.checkAdoptData(data.f, d, ino(data.f)), parallax.ErrCorrupt)
	// Named for another publisher, another connection; a data segment as
	// a connection segment.
	d = data.desc
	d.PubID++
	require.ErrorIs(t, srv.checkAdoptData(data.f, d, ino(data.f)), errAdoptName)
	c := conn.desc
	c.ConnID++
	require.ErrorIs(t, srv.checkAdoptConn(conn.f, c, ino(conn.f)), errAdoptName)
	c = conn.desc
	c.Size = data.desc.Size
	require.ErrorIs(t, srv.checkAdoptConn(data.f, c, ino(data.f)), errAdoptName)
	// Size or inode other than claimed.
	d = data.desc
	d.Size += 4096
	require.ErrorIs(t, srv.checkAdoptData(data.f, d, ino(data.f)), errAdoptSize)
	require.ErrorIs(t, srv.checkAdoptData(data.f, data.desc, ino(conn.f)), errAdoptInode)
}
