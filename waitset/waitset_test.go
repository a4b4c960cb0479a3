package waitset_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/event"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/rpc"
	"github.com/parallax-ipc/parallax/subscriber"
	"github.com/parallax-ipc/parallax/waitset"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newSet(t *testing.T) *waitset.WaitSet {
	t.Helper()
	ws, err := waitset.New(waitset.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// waitFor waits (bounded) and checks that exactly want fired.
func waitFor(t *testing.T, ws *waitset.WaitSet, want ...int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := ws.Wait(ctx)
	require.NoError(t, err, "waiting for %v", want)
	require.Equal(t, want, keys)
}

// quiet checks that nothing fires within d (the Wait ends at its ctx's
// deadline with parallax.ErrTimeout).
func quiet(t *testing.T, ws *waitset.WaitSet, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	keys, err := ws.Wait(ctx)
	require.ErrorIs(t, err, parallax.ErrTimeout, "fired: %v", keys)
}

// pipe returns a pipe and the read end's descriptor.
func pipe(t *testing.T) (r, w *os.File, fd int) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = r.Close(), w.Close() })
	rc, err := r.SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(u uintptr) { fd = int(u) }))
	return r, w, fd
}

const (
	kSub = iota + 1
	kServer
	kClient
	kListener
	kFd
	kDeadline
)

// A set over a subscriber, an rpc server, an rpc client, an event
// listener, a pipe and a deadline reports each, alone, when it fires.
func TestEverySourceKind(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	sock := srv.SocketPath()

	pub, err := publisher.New(ctx, "topic", publisher.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	sub, err := subscriber.New(ctx, "topic", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, sub.WaitForPublishers(ctx, 1))

	rs, err := rpc.NewServer(ctx, "svc", rpc.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rs.Close() })
	rc, err := rpc.NewClient(ctx, "svc", rpc.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	require.NoError(t, rc.WaitForServers(ctx, 1))

	lis, err := event.NewListener(ctx, "ev", event.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = lis.Close() })
	nt, err := event.NewNotifier(ctx, "ev", event.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = nt.Close() })
	require.NoError(t, lis.WaitForNotifiers(ctx, 1))
	require.NoError(t, nt.WaitForListeners(ctx, 1))
	ids, err := lis.TryWait() // takes in the connection change
	require.NoError(t, err)
	require.Empty(t, ids)

	r, w, fd := pipe(t)

	ws := newSet(t)
	require.NoError(t, ws.Add(sub, kSub))
	require.NoError(t, ws.Add(rs, kServer))
	require.NoError(t, ws.Add(rc, kClient))
	require.NoError(t, ws.Add(lis, kListener))
	require.NoError(t, ws.AddFd(fd, kFd))
	quiet(t, ws, 30*time.Millisecond)

	require.NoError(t, pub.Send([]byte("sample")))
	waitFor(t, ws, kSub)
	s, err := sub.TryTake()
	require.NoError(t, err)
	require.Equal(t, "sample", string(s.Bytes()))
	require.NoError(t, s.Release())

	ch, err := rc.Loan(3)
	require.NoError(t, err)
	copy(ch.Bytes(), "req")
	stream, err := rc.Start(ctx, &ch)
	require.NoError(t, err)
	waitFor(t, ws, kServer)
	req, err := rs.Receive(ctx)
	require.NoError(t, err)
	require.Equal(t, "req", string(req.Bytes()))
	require.NoError(t, rs.Respond(ctx, req, []byte("resp")))
	require.NoError(t, req.Release())
	waitFor(t, ws, kClient)
	resp, err := stream.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "resp", string(resp.Bytes()))
	require.NoError(t, resp.Release())

	require.NoError(t, nt.Signal(7))
	waitFor(t, ws, kListener)
	ids, err = lis.TryWait()
	require.NoError(t, err)
	require.Equal(t, []uint64{7}, ids)

	_, err = w.Write([]byte("x"))
	require.NoError(t, err)
	waitFor(t, ws, kFd)
	waitFor(t, ws, kFd) // level-triggered: still readable
	_, err = r.Read(make([]byte, 8))
	require.NoError(t, err)

	require.NoError(t, ws.AddDeadline(time.Now(), kDeadline))
	waitFor(t, ws, kDeadline)
	quiet(t, ws, 30*time.Millisecond) // everything consumed; the deadline fired once

	// Two at once: both reported by one Wait, in the order added.
	require.NoError(t, pub.Send([]byte("again")))
	require.NoError(t, nt.Signal(8))
	waitFor(t, ws, kSub, kListener)
}

// A deadline fires once, not before its time; an interval fires every
// period, never early.
func TestDeadlineAndInterval(t *testing.T) {
	t.Parallel()
	ws := newSet(t)
	start := time.Now()
	at := start.Add(30 * time.Millisecond)
	require.NoError(t, ws.AddDeadline(at, 1))
	waitFor(t, ws, 1)
	require.False(t, time.Now().Before(at), "the deadline fired early")
	quiet(t, ws, 30*time.Millisecond)

	iv := newSet(t)
	const period = 15 * time.Millisecond
	start = time.Now()
	require.NoError(t, iv.AddInterval(period, 2))
	for i := 1; i <= 3; i++ {
		waitFor(t, iv, 2)
		require.GreaterOrEqual(t, time.Since(start), time.Duration(i)*period, "tick %d came early", i)
	}
	require.ErrorIs(t, iv.AddInterval(0, 3), waitset.ErrInvalidSource)
}

// fake is a Source of the test's own: a ready flag and a process-local
// notifier, as any endpoint kind outside Parallax's packages would join.
type fake struct {
	n     *ringbuf.Notifier
	ready atomic.Bool
}

func newFake(t *testing.T) *fake {
	t.Helper()
	n, err := ringbuf.FormatNotifier(make([]byte, ringbuf.NotifierSize))
	require.NoError(t, err)
	return &fake{n: n}
}

func (f *fake) Ready() bool { return f.ready.Load() }
func (f *fake) AppendNotifiers(dst []*ringbuf.Notifier) ([]*ringbuf.Notifier, uint64) {
	return append(dst, f.n), 0
}
func (f *fake) fire() { f.ready.Store(true); _ = f.n.Notify() }

// A sleeping Wait is woken by a source's Notify and by a pipe.
func TestWakesFromSleep(t *testing.T) {
	t.Parallel()
	ws := newSet(t)
	f := newFake(t)
	require.NoError(t, ws.Add(f, 1))
	r, w, fd := pipe(t)
	require.NoError(t, ws.AddFd(fd, 2))

	type result struct {
		keys []int
		err  error
	}
	wait := func() chan result {
		ch := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			k, err := ws.Wait(ctx)
			ch <- result{append([]int(nil), k...), err}
		}()
		return ch
	}
	sleeping := func() {
		require.Eventually(t, f.n.Sleeping, 10*time.Second, 100*time.Microsecond, "the wait set never slept")
	}

	ch := wait()
	sleeping()
	f.fire()
	res := <-ch
	require.NoError(t, res.err)
	require.Equal(t, []int{1}, res.keys)
	f.ready.Store(false)

	ch = wait()
	sleeping()
	_, err := w.Write([]byte("x"))
	require.NoError(t, err)
	res = <-ch
	require.NoError(t, res.err)
	require.Equal(t, []int{2}, res.keys)

	// Close ends a sleeping Wait (the pipe drained first, so it sleeps).
	_, err = r.Read(make([]byte, 8))
	require.NoError(t, err)
	ch = wait()
	sleeping()
	require.NoError(t, ws.Close())
	res = <-ch
	require.ErrorIs(t, res.err, waitset.ErrClosed)
}

// More than 128 words: the set still reports each source (1 ms slices).
func TestMoreThan128Words(t *testing.T) {
	t.Parallel()
	ws := newSet(t)
	fs := make([]*fake, 200)
	for i := range fs {
		fs[i] = newFake(t)
		require.NoError(t, ws.Add(fs[i], i))
	}
	quiet(t, ws, 20*time.Millisecond)
	for _, i := range []int{0, 127, 128, 199} {
		fs[i].fire()
		waitFor(t, ws, i)
		fs[i].ready.Store(false)
	}
	// A sleeping Wait notices a source within its slice.
	done := make(chan []int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		k, _ := ws.Wait(ctx)
		done <- append([]int(nil), k...)
	}()
	fs[150].fire()
	require.Equal(t, []int{150}, <-done)
}

// Wait allocates nothing when a source is ready.
func TestWaitAllocsNothingWhenReady(t *testing.T) {
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	sock := srv.SocketPath()
	pub, err := publisher.New(ctx, "topic", publisher.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	sub, err := subscriber.New(ctx, "topic", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	lis, err := event.NewListener(ctx, "ev", event.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = lis.Close() })

	ws := newSet(t)
	require.NoError(t, ws.Add(lis, 1))
	require.NoError(t, ws.Add(sub, 2))
	require.NoError(t, ws.AddInterval(time.Hour, 3))
	_, _, fd := pipe(t)
	require.NoError(t, ws.AddFd(fd, 4))
	require.NoError(t, pub.Send([]byte("stays queued")))
	bg := context.Background()
	keys, err := ws.Wait(bg)
	require.NoError(t, err)
	require.Contains(t, keys, 2)
	allocs := testing.AllocsPerRun(200, func() {
		keys, err := ws.Wait(bg)
		if err != nil || len(keys) == 0 {
			panic(err)
		}
	})
	require.Zero(t, allocs)
}

// Errors: an empty set, a nil source, a negative fd, a closed set.
func TestErrors(t *testing.T) {
	t.Parallel()
	ws := newSet(t)
	_, err := ws.Wait(context.Background())
	require.ErrorIs(t, err, waitset.ErrEmpty)
	require.ErrorIs(t, ws.Add(nil, 1), waitset.ErrInvalidSource)
	require.ErrorIs(t, ws.AddFd(-1, 1), waitset.ErrInvalidSource)
	require.NoError(t, ws.AddDeadline(time.Now().Add(time.Hour), 1))
	require.NoError(t, ws.Close())
	_, err = ws.Wait(context.Background())
	require.True(t, errors.Is(err, waitset.ErrClosed))
	require.ErrorIs(t, ws.Add(newFake(t), 2), waitset.ErrClosed)
}

// A set sleeping on an owned subscriber's connection word survives that
// connection's removal (the publisher closes, the segment is unmapped):
// it leaves the word before the unmap, and still reports the subscriber
// for the next publisher's sample.
func TestConnectionGoneWhileSleeping(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	sock := srv.SocketPath()
	sub, err := subscriber.New(ctx, "topic", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	ws := newSet(t)
	f := newFake(t)
	require.NoError(t, ws.Add(sub, 1))
	require.NoError(t, ws.Add(f, 2))
	for round := range 5 {
		pub, err := publisher.New(ctx, "topic", publisher.Options{Socket: sock})
		require.NoError(t, err)
		require.NoError(t, sub.WaitForPublishers(ctx, 1))
		done := make(chan error, 1)
		go func() {
			wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			keys, err := ws.Wait(wctx)
			if err == nil && (len(keys) != 1 || keys[0] != 2) {
				err = errors.New("woken by something else than the fake source")
			}
			done <- err
		}()
		require.Eventually(t, f.n.Sleeping, 10*time.Second, 100*time.Microsecond, "round %d: the set never slept", round)
		require.NoError(t, pub.Close()) // the connection goes while the set sleeps on its word
		require.NoError(t, waitForNoPublishers(ctx, sub))
		f.fire()
		require.NoError(t, <-done, "round %d", round)
		f.ready.Store(false)
	}
	pub, err := publisher.New(ctx, "topic", publisher.Options{Socket: sock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, pub.Send([]byte("after")))
	waitFor(t, ws, 1)
}

// waitForNoPublishers waits until sub has no publisher connected.
func waitForNoPublishers(ctx context.Context, sub *subscriber.Subscriber) error {
	for sub.Publishers() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}
