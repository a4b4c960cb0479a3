package subscriber_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// A WaitSet sleeping on an owned connection's word survives the
// connection's removal (its publisher closes and the subscriber unmaps
// the segment): the removal waits for the set to leave the word.
func TestWaitSetConnectionGoneWhileSleeping(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	a, err := subscriber.New(ctx, "a", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	defer a.Close()
	b, err := subscriber.New(ctx, "b", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	defer b.Close()
	pb, err := publisher.New(ctx, "b", publisher.Options{Socket: sock})
	require.NoError(t, err)
	defer pb.Close()
	require.NoError(t, pb.WaitForSubscribers(ctx, 1))
	ws, err := subscriber.NewWaitSet(a, b)
	require.NoError(t, err)
	for round := range 5 {
		pa, err := publisher.New(ctx, "a", publisher.Options{Socket: sock})
		require.NoError(t, err)
		require.NoError(t, a.WaitForPublishers(ctx, 1))
		before := a.WakeStats().Sleeps
		done := make(chan error, 1)
		go func() {
			ready, err := ws.Wait(ctx)
			if err == nil && (len(ready) != 1 || ready[0] != b) {
				err = errors.New("woken by something else than b")
			}
			done <- err
		}()
		require.Eventually(t, func() bool { return a.WakeStats().Sleeps > before }, 10*time.Second, 100*time.Microsecond, "round %d: the set never slept", round)
		require.NoError(t, pa.Close())
		require.Eventually(t, func() bool { return a.Publishers() == 0 }, 10*time.Second, 100*time.Microsecond)
		require.NoError(t, pb.Send([]byte("wake")))
		require.NoError(t, <-done, "round %d", round)
		s, err := b.TryTake()
		require.NoError(t, err)
		require.NoError(t, s.Release())
	}
}
