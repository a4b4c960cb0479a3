package rpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/rpc"
)

// TestStartHonoursCtx: a server that takes no requests fills its request
// queue; Start then waits for room only as long as its ctx lets it (a
// cancelled ctx: at once, with context.Canceled; a deadline: with
// parallax.ErrTimeout), the request is not sent, its slot is free again,
// and the calls sent before are all answered once the server takes them.
func TestStartHonoursCtx(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	s, err := rpc.NewServer(ctx, "stuck", rpc.Options{Socket: srv.SocketPath(), MaxInFlight: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	c, err := rpc.NewClient(ctx, "stuck", rpc.Options{Socket: srv.SocketPath(), MaxInFlight: 256})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.WaitForServers(ctx, 1))

	var sent []rpc.Stream
	for {
		require.Less(t, len(sent), 200, "the server's request queue never filled")
		ch, err := c.Loan(8)
		require.NoError(t, err)
		dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		st, err := c.Start(dctx, &ch)
		cancel()
		if err != nil {
			require.ErrorIs(t, err, parallax.ErrTimeout)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			break
		}
		sent = append(sent, st)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ch, err := c.Loan(8)
	require.NoError(t, err)
	_, err = c.Start(cctx, &ch)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, parallax.ErrTimeout)

	// The server takes the queued requests: every sent call is answered,
	// and nothing of the refused ones arrives.
	sctx, stop := context.WithCancel(ctx)
	wait := serve(t, sctx, s, echo(s, 1))
	for _, st := range sent {
		r, err := st.Next(ctx)
		require.NoError(t, err)
		require.True(t, r.End())
		require.NoError(t, r.Release())
	}
	resp, err := c.Call(ctx, []byte("after"))
	require.NoError(t, err)
	require.Equal(t, []byte("after\x01"), resp.Bytes())
	require.NoError(t, resp.Release())
	stop()
	wait()
	st := c.Stats()
	require.Zero(t, st.Loans, "no loan left behind by the refused calls: %+v", st)
}
