package rpc_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/rpc"
)

// A server that closes while clients keep calling fails their calls with
// ErrServerGone or ErrNoServer only: a call whose server goes between its
// choice and the send is one of them too.
func TestStartServerGoneRace(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	opts := rpc.Options{Socket: srv.SocketPath()}
	stable, err := rpc.NewServer(ctx, "race", opts)
	require.NoError(t, err)
	defer stable.Close()
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	waits := []func(){serve(t, sctx, stable, echo(stable, 0))}
	c, err := rpc.NewClient(ctx, "race", opts)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.WaitForServers(ctx, 1))

	var stop atomic.Bool
	var bad atomic.Value
	var ok, gone atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				r, err := c.Call(ctx, []byte("ping"))
				switch {
				case err == nil:
					_ = r.Release()
					ok.Add(1)
				case errors.Is(err, rpc.ErrServerGone), errors.Is(err, rpc.ErrNoServer):
					gone.Add(1)
				default:
					bad.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for i := 0; i < 40 && bad.Load() == nil; i++ {
		v, err := rpc.NewServer(ctx, "race", opts)
		require.NoError(t, err)
		vctx, vcancel := context.WithCancel(ctx)
		w := serve(t, vctx, v, echo(v, 1))
		require.NoError(t, c.WaitForServers(ctx, 2))
		require.NoError(t, v.Close())
		vcancel()
		w()
	}
	stop.Store(true)
	wg.Wait()
	scancel()
	for _, w := range waits {
		w()
	}
	t.Logf("ok %d gone %d", ok.Load(), gone.Load())
	if e := bad.Load(); e != nil {
		t.Fatalf("a call failed with neither ErrServerGone nor ErrNoServer: %v", e)
	}
}
