package ringbuf_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/ringbuf"
)

func newNotifier(t testing.TB) *ringbuf.Notifier {
	t.Helper()
	n, err := ringbuf.FormatNotifier(make([]byte, ringbuf.NotifierSize))
	require.NoError(t, err)
	return n
}

func TestNotifierFormatAttach(t *testing.T) {
	t.Parallel()
	mem := make([]byte, ringbuf.NotifierSize+8)
	_, err := ringbuf.FormatNotifier(mem[:ringbuf.NotifierSize-1])
	require.ErrorIs(t, err, ringbuf.ErrInvalidArgument)
	_, err = ringbuf.FormatNotifier(mem[4:])
	require.ErrorIs(t, err, ringbuf.ErrInvalidArgument)
	_, err = ringbuf.AttachNotifier(mem)
	require.ErrorIs(t, err, parallax.ErrCorrupt)
	_, err = ringbuf.FormatNotifier(mem)
	require.NoError(t, err)
	_, err = ringbuf.AttachNotifier(mem)
	require.NoError(t, err)
	mem[8] = ringbuf.LayoutVersion + 1 // version
	_, err = ringbuf.AttachNotifier(mem)
	require.ErrorIs(t, err, parallax.ErrCorrupt)
	_, err = ringbuf.AttachNotifier(mem[:ringbuf.NotifierSize-1])
	require.ErrorIs(t, err, parallax.ErrCorrupt)
}

func TestNotifyWithoutSleeperMakesNoSyscall(t *testing.T) {
	t.Parallel()
	n := newNotifier(t)
	for range 1000 {
		require.NoError(t, n.Notify())
	}
	require.Equal(t, ringbuf.NotifierStats{}, n.Stats())
	// A ready consumer does not sleep either.
	require.NoError(t, n.Wait(context.Background(), func() bool { return true }, ringbuf.WaitOptions{}))
	require.Equal(t, ringbuf.NotifierStats{}, n.Stats())
	require.False(t, n.Sleeping())
}

func TestWaitNoSleepPathAllocatesNothing(t *testing.T) {
	// Not parallel: AllocsPerRun measures process-wide allocations.
	n := newNotifier(t)
	r := newRing(t, 8, ringbuf.DiscardOldest)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := func() bool { return r.Len() > 0 }
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := r.TryPush(ref(1)); err != nil {
			panic(err)
		}
		if err := n.Notify(); err != nil {
			panic(err)
		}
		if err := n.Wait(ctx, ready, ringbuf.WaitOptions{}); err != nil {
			panic(err)
		}
		if _, ok := popOK(r.TryPop()); !ok {
			panic("empty")
		}
	})
	require.Zero(t, allocs)
	// Ready only on the third check: the spinning path allocates nothing.
	calls := 0
	spinReady := func() bool { calls++; return calls%3 == 0 }
	allocs = testing.AllocsPerRun(100, func() {
		if err := n.Wait(ctx, spinReady, ringbuf.WaitOptions{Spin: time.Hour}); err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs)
	require.Zero(t, n.Stats().Sleeps)
}

func TestSleepingConsumerIsWoken(t *testing.T) {
	t.Parallel()
	n := newNotifier(t)
	r := newRing(t, 8, ringbuf.DiscardOldest)
	done := make(chan error, 1)
	go func() {
		done <- n.Wait(context.Background(), func() bool { return r.Len() > 0 }, ringbuf.WaitOptions{Spin: -1})
	}()
	waitFor(t, n.Sleeping)
	_, err := r.TryPush(ref(1))
	require.NoError(t, err)
	require.NoError(t, n.Notify())
	require.NoError(t, <-done)
	st := n.Stats()
	require.Equal(t, uint64(1), st.Wakes)
	require.False(t, n.Sleeping())
	// A second notify after the consumer woke makes no syscall.
	require.NoError(t, n.Notify())
	require.Equal(t, uint64(1), n.Stats().Wakes)
}

func TestWaitSetAcrossRings(t *testing.T) {
	t.Parallel()
	n := newNotifier(t)
	rings := []*ringbuf.Ring{newRing(t, 4, ringbuf.DiscardOldest), newRing(t, 4, ringbuf.BlockProducer), newRing(t, 4, ringbuf.DiscardOldest)}
	ready := func() bool {
		for _, r := range rings {
			if r.Len() > 0 {
				return true
			}
		}
		return false
	}
	for i, r := range rings {
		done := make(chan error, 1)
		go func() { done <- n.Wait(context.Background(), ready, ringbuf.WaitOptions{Spin: -1}) }()
		waitFor(t, n.Sleeping)
		_, err := r.TryPush(ref(i + 1))
		require.NoError(t, err)
		require.NoError(t, n.Notify())
		require.NoError(t, <-done)
		v, ok := popOK(r.TryPop())
		require.True(t, ok)
		require.Equal(t, ref(i+1), v)
	}
}

func TestWaitEnds(t *testing.T) {
	t.Parallel()
	never := func() bool { return false }
	t.Run("cancel wakes sleeper", func(t *testing.T) {
		t.Parallel()
		n := newNotifier(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Wait(ctx, never, ringbuf.WaitOptions{Spin: -1}) }()
		waitFor(t, n.Sleeping)
		cancel()
		err := <-done
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, parallax.ErrTimeout)
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		n := newNotifier(t)
		err := n.Wait(context.Background(), never, ringbuf.WaitOptions{Timeout: 10 * time.Millisecond})
		require.ErrorIs(t, err, parallax.ErrTimeout)
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		n := newNotifier(t)
		err := n.Wait(context.Background(), never, ringbuf.WaitOptions{Deadline: time.Now().Add(10 * time.Millisecond)})
		require.ErrorIs(t, err, parallax.ErrTimeout)
	})
	t.Run("context deadline", func(t *testing.T) {
		t.Parallel()
		n := newNotifier(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		err := n.Wait(ctx, never, ringbuf.WaitOptions{})
		require.ErrorIs(t, err, parallax.ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("close wakes sleeper", func(t *testing.T) {
		t.Parallel()
		n := newNotifier(t)
		done := make(chan error, 1)
		go func() { done <- n.Wait(context.Background(), never, ringbuf.WaitOptions{Spin: -1}) }()
		waitFor(t, n.Sleeping)
		require.NoError(t, n.Close())
		require.NoError(t, n.Close())
		require.ErrorIs(t, <-done, os.ErrClosed)
		require.True(t, n.Closed())
		require.ErrorIs(t, n.Wait(context.Background(), never, ringbuf.WaitOptions{}), os.ErrClosed)
	})
	t.Run("busy poll ready", func(t *testing.T) {
		t.Parallel()
		n := newNotifier(t)
		var flag atomic.Bool
		done := make(chan error, 1)
		go func() { done <- n.Wait(context.Background(), flag.Load, ringbuf.WaitOptions{BusyPoll: true}) }()
		flag.Store(true)
		require.NoError(t, <-done)
		require.Equal(t, ringbuf.NotifierStats{}, n.Stats(), "busy poll never sleeps")
	})
	t.Run("busy poll cancel", func(t *testing.T) {
		t.Parallel()
		n := newNotifier(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Wait(ctx, never, ringbuf.WaitOptions{BusyPoll: true}) }()
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	t.Run("busy poll timeout", func(t *testing.T) {
		t.Parallel()
		n := newNotifier(t)
		err := n.Wait(context.Background(), never, ringbuf.WaitOptions{BusyPoll: true, Timeout: 5 * time.Millisecond})
		require.ErrorIs(t, err, parallax.ErrTimeout)
		require.Zero(t, n.Stats().Sleeps)
	})
	t.Run("busy poll close", func(t *testing.T) {
		t.Parallel()
		n := newNotifier(t)
		require.NoError(t, n.Close())
		require.ErrorIs(t, n.Wait(context.Background(), never, ringbuf.WaitOptions{BusyPoll: true}), os.ErrClosed)
	})
}

// The spin budget is a duration: a spin of a millisecond ends and the wait
// sleeps; a spin far longer than the wait's timeout, deadline or context
// ends with it (a count of looks would spin on regardless); a cancelled
// context ends a long spin.
func TestWaitSpinBudget(t *testing.T) {
	t.Parallel()
	never := func() bool { return false }
	// result runs wait in a goroutine and returns its error, failing the
	// test if it does not return (a spin that ignores its bounds).
	result := func(t *testing.T, wait func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("wait did not end: the spin ignored its bounds")
			return nil
		}
	}
	// Each subtest waits on a new notifier or waiter: one whose last yield
	// was slow (a loaded machine) would skip the spin (spinPlan).
	type waitFn = func(ctx context.Context, ready func() bool, opts ringbuf.WaitOptions) error
	for _, w := range []struct {
		name string
		new  func() waitFn
	}{
		{"notifier", func() waitFn { return newNotifier(t).Wait }},
		{"waiter", func() waitFn {
			ws, err := ringbuf.NewWaiter(newNotifier(t), newNotifier(t))
			require.NoError(t, err)
			return ws.Wait
		}},
	} {
		t.Run(w.name+"/spin then sleep", func(t *testing.T) {
			wait := w.new()
			err := result(t, func() error {
				return wait(context.Background(), never, ringbuf.WaitOptions{Spin: time.Millisecond, Timeout: 50 * time.Millisecond})
			})
			require.ErrorIs(t, err, parallax.ErrTimeout)
		})
		t.Run(w.name+"/timeout cuts the spin", func(t *testing.T) {
			wait := w.new()
			err := result(t, func() error {
				return wait(context.Background(), never, ringbuf.WaitOptions{Spin: time.Hour, Timeout: 10 * time.Millisecond})
			})
			require.ErrorIs(t, err, parallax.ErrTimeout)
		})
		t.Run(w.name+"/context deadline cuts the spin", func(t *testing.T) {
			wait := w.new()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			err := result(t, func() error { return wait(ctx, never, ringbuf.WaitOptions{Spin: time.Hour}) })
			require.ErrorIs(t, err, context.DeadlineExceeded)
		})
		t.Run(w.name+"/cancel ends the spin", func(t *testing.T) {
			wait := w.new()
			ctx, cancel := context.WithCancel(context.Background())
			looks := atomic.Int64{}
			ready := func() bool {
				if looks.Add(1) == 1000 {
					cancel()
				}
				return false
			}
			err := result(t, func() error { return wait(ctx, ready, ringbuf.WaitOptions{Spin: time.Hour}) })
			require.ErrorIs(t, err, context.Canceled)
		})
	}
}

// A spinning wait that times out then sleeps on the futex (its sleep is
// counted), and a negative Spin sleeps after one look.
func TestWaitSpinThenSleeps(t *testing.T) {
	t.Parallel()
	for _, spin := range []time.Duration{-1, 0, 100 * time.Microsecond} {
		n := newNotifier(t)
		looks := 0
		err := n.Wait(context.Background(), func() bool { looks++; return false }, ringbuf.WaitOptions{Spin: spin, Timeout: 20 * time.Millisecond})
		require.ErrorIs(t, err, parallax.ErrTimeout)
		require.NotZero(t, n.Stats().Sleeps, "spin %v: the wait slept on the futex", spin)
		if spin < 0 {
			// One look before announcing the sleep, one after each
			// announcement (at least one sleep): no spinning look.
			require.LessOrEqual(t, looks, 1+int(n.Stats().Sleeps)+1, "spin %v: looks without sleeping", spin)
		}
	}
}

// TestSpinThenYield: after a spin that did not see readiness, the wait
// yields the processor once and looks again (a producer that ran during the
// yield is seen without a sleep); without a spin budget it neither looks
// nor yields.
func TestSpinThenYield(t *testing.T) {
	t.Parallel()
	var clock int64
	now := func() int64 { return clock }
	yields := 0
	yield := func() { yields++ } // a quick yield: the clock does not move
	var p ringbuf.SpinPlan
	readyAfterYield := func() bool { return yields > 0 }
	require.True(t, p.SpinThenYieldWith(yield, now, time.Microsecond, nil, readyAfterYield), "the look after the yield")
	require.Equal(t, 1, yields)

	yields = 0
	require.False(t, p.SpinThenYieldWith(yield, now, time.Microsecond, nil, func() bool { return false }))
	require.Equal(t, 1, yields, "one yield per wait")

	yields = 0
	looks := 0
	require.False(t, p.SpinThenYieldWith(yield, now, 0, nil, func() bool { looks++; return true }), "no budget: no look")
	require.False(t, p.SpinThenYieldWith(yield, now, -time.Second, nil, func() bool { looks++; return true }))
	require.Zero(t, looks)
	require.Zero(t, yields)

	looks = 0
	require.True(t, p.SpinThenYieldWith(yield, now, time.Hour, nil, func() bool { looks++; return looks == 3 }), "seen while spinning")
	require.Zero(t, yields, "no yield when the spin saw it")
	require.False(t, p.Crowded())
}

// TestSpinPlanCrowded: a yield that takes long (the processor went to
// another thread) makes the next wait yield first, without spinning, and
// sleep when the yield brings nothing; a quick yield restores the spin
// within the same wait.
func TestSpinPlanCrowded(t *testing.T) {
	t.Parallel()
	var clock int64
	now := func() int64 { return clock }
	yields := 0
	slowYield := func() { yields++; clock += int64(time.Millisecond) }
	quickYield := func() { yields++; clock += int64(time.Microsecond) }
	var p ringbuf.SpinPlan
	looks := 0
	never := func() bool { looks++; return false }

	require.False(t, p.SpinThenYieldWith(slowYield, now, time.Microsecond, nil, never))
	require.True(t, p.Crowded(), "a yield of 1 ms gave the processor away")
	require.Greater(t, looks, 1, "the first wait spun")

	// Crowded: one yield, one look, no spin.
	looks, yields = 0, 0
	require.False(t, p.SpinThenYieldWith(slowYield, now, time.Hour, nil, never), "an hour's budget: returns only if it does not spin")
	require.Equal(t, 1, yields)
	require.Equal(t, 1, looks, "crowded: the look after the yield only")
	require.True(t, p.Crowded())

	// Crowded, and the yield finds the producer's entry.
	looks, yields = 0, 0
	require.True(t, p.SpinThenYieldWith(slowYield, now, time.Hour, nil, func() bool { looks++; return yields > 0 }))
	require.Equal(t, 1, looks)

	// A quick yield: the processor is ours, so the same wait spins.
	looks, yields = 0, 0
	require.True(t, p.SpinThenYieldWith(quickYield, now, time.Hour, nil, func() bool { looks++; return looks == 5 }), "spun after a quick yield")
	require.Equal(t, 1, yields)
	require.False(t, p.Crowded())

	// Uncrowded again: the next wait spins before it yields.
	looks, yields = 0, 0
	require.True(t, p.SpinThenYieldWith(quickYield, now, time.Hour, nil, func() bool { looks++; return looks == 3 }))
	require.Zero(t, yields)
}
