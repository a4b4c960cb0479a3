//go:build linux

package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
)

// TestExample runs the example's server and client against an owned
// router: every call gets its planned path.
func TestExample(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- runServer(sctx, srv.SocketPath(), ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	}
	var out bytes.Buffer
	require.NoError(t, runClient(ctx, srv.SocketPath(), 3, &out))
	require.Equal(t, "call 0: 16 waypoints, ends at [10 0]\ncall 1: 16 waypoints, ends at [20 1]\ncall 2: 16 waypoints, ends at [30 2]\n", out.String())
	stop()
	require.ErrorIs(t, <-done, context.Canceled)
}
