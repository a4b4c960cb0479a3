package subscriber_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/subscriber"
)

// returns runs f in a goroutine and returns its error, failing the test if
// f has not returned after 20 s (a spin that ignores its bounds).
func returns(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the take did not return: its spin ignored the time it was given")
		return nil
	}
}

// Options.Spin is a duration: a Take on an empty queue spins that long,
// then sleeps on the futex until its deadline; a spin longer than the
// Take's deadline ends with it; a negative Spin sleeps at once.
func TestSpinIsADuration(t *testing.T) {
	t.Parallel()
	testSpinIsADuration(t, routertest.Small)
}

func testSpinIsADuration(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub := func(t *testing.T, spin time.Duration) *subscriber.Subscriber {
		s, err := subscriber.New(ctx, "spin/"+t.Name(), subscriber.Options{Socket: srv.SocketPath(), Spin: spin})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}

	t.Run("spin then sleep", func(t *testing.T) {
		for _, spin := range []time.Duration{-1, 0, time.Millisecond} {
			s := sub(t, spin)
			err := returns(t, func() error { _, err := s.TakeTimeout(200 * time.Millisecond); return err })
			require.ErrorIs(t, err, parallax.ErrTimeout, "spin %v", spin)
			if cfg != routertest.Owned { // owned: no connection, no futex word to sleep on (see TestWakeStats)
				require.NotZero(t, s.WakeStats().Sleeps, "spin %v: the take went to sleep after spinning", spin)
			}
		}
	})
	t.Run("timeout cuts a long spin", func(t *testing.T) {
		s := sub(t, time.Hour)
		err := returns(t, func() error { _, err := s.TakeTimeout(20 * time.Millisecond); return err })
		require.ErrorIs(t, err, parallax.ErrTimeout)
	})
	t.Run("context deadline cuts a long spin", func(t *testing.T) {
		s := sub(t, time.Hour)
		tctx, tcancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer tcancel()
		err := returns(t, func() error { _, err := s.Take(tctx); return err })
		require.ErrorIs(t, err, context.DeadlineExceeded, "%v", err)
		require.ErrorIs(t, err, parallax.ErrTimeout, "%v", err)
	})
	t.Run("wait set", func(t *testing.T) {
		ws, err := subscriber.NewWaitSet(sub(t, time.Hour), sub(t, time.Hour))
		require.NoError(t, err)
		tctx, tcancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer tcancel()
		err = returns(t, func() error { _, err := ws.Wait(tctx); return err })
		require.ErrorIs(t, err, parallax.ErrTimeout)
	})
}
