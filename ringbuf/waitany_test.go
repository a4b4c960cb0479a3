package ringbuf

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

func TestWaiterWokenByAnyNotifier(t *testing.T) {
	t.Parallel()
	const n = 3
	var ns []*Notifier
	for range n {
		nt, err := FormatNotifier(make([]byte, NotifierSize))
		require.NoError(t, err)
		ns = append(ns, nt)
	}
	w, err := NewWaiter(ns...)
	require.NoError(t, err)
	for target := range n {
		var flag atomic.Bool
		errc := make(chan error, 1)
		go func() {
			errc <- w.Wait(context.Background(), flag.Load, WaitOptions{Spin: -1, Timeout: 10 * time.Second})
		}()
		// Notify the target once the waiter announced that it sleeps on it.
		waitUntil(t, ns[target].Sleeping)
		select {
		case err := <-errc:
			t.Fatalf("wait returned early: %v", err)
		default:
		}
		flag.Store(true)
		require.NoError(t, ns[target].Notify())
		require.NoError(t, <-errc)
		require.Equal(t, uint64(1), ns[target].Stats().Wakes)
		ns[target].wakes.Store(0)
	}
}

func TestWaiterTimeoutCancelClose(t *testing.T) {
	t.Parallel()
	a, err := FormatNotifier(make([]byte, NotifierSize))
	require.NoError(t, err)
	b, err := FormatNotifier(make([]byte, NotifierSize))
	require.NoError(t, err)
	w, err := NewWaiter(a, b)
	require.NoError(t, err)
	never := func() bool { return false }
	require.ErrorIs(t, w.Wait(context.Background(), never, WaitOptions{Timeout: 20 * time.Millisecond}), parallax.ErrTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitUntil(t, a.Sleeping)
		cancel()
	}()
	require.ErrorIs(t, w.Wait(ctx, never, WaitOptions{}), context.Canceled)
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	require.ErrorIs(t, w.Wait(context.Background(), never, WaitOptions{Timeout: time.Second}), errNotifierClosed)
	_, err = NewWaiter()
	require.ErrorIs(t, err, ErrInvalidArgument)
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Error("condition not reached within 10s")
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// The context registration a Waiter keeps between sleeps still ends a later
// sleep under the same context, does not end a sleep under another one,
// and Release drops it.
func TestWaiterKeptContextRegistration(t *testing.T) {
	t.Parallel()
	a, err := FormatNotifier(make([]byte, NotifierSize))
	require.NoError(t, err)
	w, err := NewWaiter(a)
	require.NoError(t, err)
	never := func() bool { return false }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Two sleeps end by their timeout: the second reuses the registration.
	for range 2 {
		require.ErrorIs(t, w.Wait(ctx, never, WaitOptions{Spin: -1, Timeout: 5 * time.Millisecond}), parallax.ErrTimeout)
	}
	done := w.watch.done
	require.NotNil(t, done, "the registration is kept after the wait")
	// A sleep under another context is not ended by the first one's cancel.
	other, cancelOther := context.WithCancel(context.Background())
	defer cancelOther()
	require.ErrorIs(t, w.Wait(other, never, WaitOptions{Spin: -1, Timeout: 5 * time.Millisecond}), parallax.ErrTimeout)
	require.NotEqual(t, done, w.watch.done, "a new context replaces the registration")
	// Back under ctx: its cancel ends the sleep at once (no timeout set).
	sleeps := a.Stats().Sleeps
	errc := make(chan error, 1)
	go func() { errc <- w.Wait(ctx, never, WaitOptions{Spin: -1}) }()
	waitUntil(t, func() bool { return a.Stats().Sleeps > sleeps })
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	w.Release()
	require.Nil(t, w.watch.done)
	require.ErrorIs(t, w.Wait(other, never, WaitOptions{Spin: -1, Timeout: 5 * time.Millisecond}), parallax.ErrTimeout)
}
