package subscriber_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

func TestPublishSubscribeInProcess(t *testing.T) {
	t.Parallel()
	testPublishSubscribeInProcess(t, routertest.Small)
}

func testPublishSubscribeInProcess(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()

	sub, err := subscriber.New(ctx, "numbers", subscriber.Options{Socket: sock, QueueCapacity: 64, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "numbers", publisher.Options{Socket: sock})
	require.NoError(t, err)
	defer pub.Close()

	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, sub.WaitForPublishers(ctx, 1))

	const n = 5000
	go func() {
		for i := 1; i <= n; i++ {
			c, err := pub.Loan(8)
			if err != nil {
				t.Errorf("loan %d: %v", i, err)
				return
			}
			binary.LittleEndian.PutUint64(c.Bytes(), uint64(i))
			if err := pub.Publish(c); err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
		}
	}()
	for i := 1; i <= n; i++ {
		s, err := sub.Take(ctx)
		require.NoError(t, err, "take %d", i)
		require.Equal(t, uint64(i), binary.LittleEndian.Uint64(s.Bytes()))
		require.Equal(t, uint64(i), s.Header().Seq)
		require.Equal(t, pub.ID(), s.Header().PublisherID)
		require.NoError(t, s.Release())
	}
	_, err = sub.TryTake()
	require.True(t, errors.Is(err, subscriber.ErrNoData), "got %v", err)
}

func TestIncompatibleType(t *testing.T) {
	t.Parallel()
	testIncompatibleType(t, routertest.Small)
}

func testIncompatibleType(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "typed", publisher.Options{Socket: srv.SocketPath(), TypeName: "Point", TypeSize: 16, TypeAlign: 8})
	require.NoError(t, err)
	defer pub.Close()
	_, err = subscriber.New(ctx, "typed", subscriber.Options{Socket: srv.SocketPath(), TypeName: "Point3", TypeSize: 24, TypeAlign: 8})
	require.ErrorIs(t, err, parallax.ErrIncompatibleType)
}

type pose struct {
	X, Y, Z float64
	Frame   uint32
	_       uint32
}

func TestTyped(t *testing.T) {
	t.Parallel()
	testTyped(t, routertest.Small)
}

func testTyped(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 16}
	sub, err := subscriber.NewTyped[pose](ctx, "pose", opts)
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.NewTyped[pose](ctx, "pose", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.Publisher().WaitForSubscribers(ctx, 1))

	c, err := pub.Loan()
	require.NoError(t, err)
	c.Value().X, c.Value().Frame = 3.25, 7
	require.NoError(t, pub.Publish(c))
	require.NoError(t, pub.Send(pose{Y: 1, Frame: 8}))

	s, err := sub.Take(ctx)
	require.NoError(t, err)
	require.Equal(t, pose{X: 3.25, Frame: 7}, s.Copy())
	require.NoError(t, s.Release())
	s, err = sub.Take(ctx)
	require.NoError(t, err)
	require.Equal(t, uint32(8), s.Value().Frame)
	require.NoError(t, s.Release())

	// A subscriber of another type with the same name is refused.
	_, err = subscriber.New(ctx, "pose", subscriber.Options{Socket: srv.SocketPath(), TypeName: publisher.TypeName[pose](), TypeSize: 8})
	require.ErrorIs(t, err, parallax.ErrIncompatibleType)
}

func TestTakeTimeoutAndNoAllocs(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses parallel tests.
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "quiet", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 8})
	require.NoError(t, err)
	defer sub.Close()
	_, err = sub.TakeTimeout(20 * time.Millisecond)
	require.ErrorIs(t, err, parallax.ErrTimeout)

	pub, err := publisher.New(ctx, "quiet", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	allocs := testing.AllocsPerRun(200, func() {
		c, err := pub.Loan(64)
		if err != nil {
			panic(err)
		}
		if err := pub.Publish(c); err != nil {
			panic(err)
		}
		s, err := sub.TakeTimeout(time.Second)
		if err != nil {
			panic(err)
		}
		if err := s.Release(); err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs, "loan+publish+take+release must not allocate")
}

// A publisher (or subscriber) is wired to every peer that existed when New
// returned: the first sample sent right away is not lost.
func TestNewReturnsWired(t *testing.T) {
	t.Parallel()
	testNewReturnsWired(t, routertest.Small)
}

func testNewReturnsWired(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 30 {
		topic := fmt.Sprintf("wired/%d", i)
		sub, err := subscriber.New(ctx, topic, subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 4})
		require.NoError(t, err)
		pub, err := publisher.New(ctx, topic, publisher.Options{Socket: srv.SocketPath()})
		require.NoError(t, err)
		require.Equal(t, 1, pub.Subscribers(), "publisher.New returned before its connection was attached")
		require.NoError(t, pub.Send([]byte("first")))
		s, err := sub.TakeTimeout(10 * time.Second)
		require.NoError(t, err, "iteration %d: first sample lost", i)
		require.Equal(t, "first", string(s.Bytes()))
		require.NoError(t, s.Release())

		// And the other way round: a late subscriber sees the publisher at once.
		sub2, err := subscriber.New(ctx, topic, subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 4})
		require.NoError(t, err)
		require.Equal(t, 1, sub2.Publishers(), "subscriber.New returned before its connection was attached")
		require.NoError(t, sub2.Close())
		require.NoError(t, pub.Close())
		require.NoError(t, sub.Close())
	}
}

func TestWaitSet(t *testing.T) {
	t.Parallel()
	testWaitSet(t, routertest.Small)
}

func testWaitSet(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	var subs []*subscriber.Subscriber
	var pubs []*publisher.Publisher
	for i := range 3 {
		s, err := subscriber.New(ctx, fmt.Sprintf("ws/%d", i), subscriber.Options{Socket: sock, QueueCapacity: 8, Spin: -1})
		require.NoError(t, err)
		defer s.Close()
		subs = append(subs, s)
		p, err := publisher.New(ctx, fmt.Sprintf("ws/%d", i), publisher.Options{Socket: sock})
		require.NoError(t, err)
		defer p.Close()
		pubs = append(pubs, p)
	}
	ws, err := subscriber.NewWaitSet(subs...)
	require.NoError(t, err)

	tctx, tcancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = ws.Wait(tctx)
	tcancel()
	require.ErrorIs(t, err, parallax.ErrTimeout, "nothing published yet")

	for _, i := range []int{2, 0, 1} {
		done := make(chan []*subscriber.Subscriber, 1)
		go func() {
			ready, err := ws.Wait(ctx)
			if err != nil {
				t.Error(err)
			}
			done <- append([]*subscriber.Subscriber(nil), ready...)
		}()
		require.NoError(t, pubs[i].Send([]byte{byte(i)}))
		ready := <-done
		require.Equal(t, []*subscriber.Subscriber{subs[i]}, ready, "only topic %d has data", i)
		smp, err := ready[0].TryTake()
		require.NoError(t, err)
		require.Equal(t, []byte{byte(i)}, smp.Bytes())
		require.NoError(t, smp.Release())
	}
}

// Samples taken before Close stay readable until released, even when the
// subscriber was the process's last endpoint (its runtime, and with it the
// mappings, must wait for them).
func TestSampleOutlivesClose(t *testing.T) {
	t.Parallel()
	testSampleOutlivesClose(t, routertest.Small)
}

func testSampleOutlivesClose(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "outlive", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 8})
	require.NoError(t, err)
	pub, err := publisher.New(ctx, "outlive", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	require.NoError(t, pub.Send(bytes.Repeat([]byte{0xab}, 3000)))
	s, err := sub.TakeTimeout(10 * time.Second)
	require.NoError(t, err)
	require.NoError(t, pub.Close())
	require.NoError(t, sub.Close()) // the last endpoint of this process's runtime
	require.Equal(t, bytes.Repeat([]byte{0xab}, 3000), s.Bytes(), "sample unreadable after Close")
	require.NoError(t, s.Release())
	// The runtime is gone with that last release: a second one is an
	// error, not a fault on unmapped memory.
	require.ErrorIs(t, s.Release(), os.ErrClosed)
}

// A publisher and a subscriber of one process created at the same time are
// both wired when their New returns (a push naming two local endpoints that
// register at different times reaches both).
func TestConcurrentNewSameProcess(t *testing.T) {
	t.Parallel()
	testConcurrentNewSameProcess(t, routertest.Small)
}

func testConcurrentNewSameProcess(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 40 {
		topic := fmt.Sprintf("conc/%d", i)
		var (
			sub    *subscriber.Subscriber
			subErr error
			done   = make(chan struct{})
		)
		go func() {
			defer close(done)
			sub, subErr = subscriber.New(ctx, topic, subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 4})
		}()
		pub, err := publisher.New(ctx, topic, publisher.Options{Socket: srv.SocketPath()})
		require.NoError(t, err)
		<-done
		require.NoError(t, subErr)
		// Whichever was created second saw the other at once; the first
		// learns of the second through a push: wait for that, bounded.
		require.NoError(t, pub.WaitForSubscribers(ctx, 1), "iteration %d", i)
		require.NoError(t, sub.WaitForPublishers(ctx, 1), "iteration %d", i)
		require.NoError(t, pub.Close())
		require.NoError(t, sub.Close())
	}
}

// Close while another goroutine takes: the taker gets os.ErrClosed, never
// a fault on rings or segments Close let go.
func TestCloseWhileTaking(t *testing.T) {
	t.Parallel()
	testCloseWhileTaking(t, routertest.Small)
}

func testCloseWhileTaking(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, blocking := range []bool{false, true} {
		topic := fmt.Sprintf("closing/%v", blocking)
		sub, err := subscriber.New(ctx, topic, subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 1024})
		require.NoError(t, err)
		pub, err := publisher.New(ctx, topic, publisher.Options{Socket: srv.SocketPath()})
		require.NoError(t, err)
		require.NoError(t, pub.Send([]byte("x")))
		errc := make(chan error, 1)
		took := make(chan struct{})
		go func() {
			first := true
			for {
				var s subscriber.Sample
				var err error
				if blocking {
					s, err = sub.Take(context.Background())
				} else {
					s, err = sub.TryTake()
				}
				if err == nil {
					_ = s.Release()
				}
				if first {
					first = false
					close(took)
				}
				if err != nil && !errors.Is(err, subscriber.ErrNoData) {
					errc <- err
					return
				}
			}
		}()
		<-took
		// The subscriber's Close lets go of the process's last share of
		// the runtime: its mappings go away.
		require.NoError(t, pub.Close())
		require.NoError(t, sub.Close())
		select {
		case err := <-errc:
			require.ErrorIs(t, err, os.ErrClosed)
		case <-ctx.Done():
			t.Fatal("taker did not return after Close")
		}
		_, err = sub.TryTake()
		require.ErrorIs(t, err, os.ErrClosed)
	}
}
