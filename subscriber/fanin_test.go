package subscriber_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Three publishers stream into one block-producer subscriber: every
// sample of each arrives, in order.
func TestFanIn(t *testing.T) {
	t.Parallel()
	testFanIn(t, routertest.Small)
}

func testFanIn(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "fanin", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 64, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	const pubs, n = 3, 3000
	errs := make(chan error, pubs)
	for i := range pubs {
		// One after the other: concurrent publisher.New calls in one
		// process fail in the shared model ("router granted 0 segments",
		// a separate defect), and the one started late gives the owned
		// take a connection added while it may sleep.
		pub, err := publisher.New(ctx, "fanin", publisher.Options{Socket: srv.SocketPath(), BlockTimeout: 10 * time.Second})
		require.NoError(t, err)
		defer pub.Close()
		go func() {
			if i == pubs-1 {
				time.Sleep(50 * time.Millisecond) // not a wait for a condition: the take should be asleep by then (it must not matter)
			}
			errs <- func() error {
				if err := pub.WaitForSubscribers(ctx, 1); err != nil {
					return err
				}
				var b [8]byte
				for i := 1; i <= n; i++ {
					binary.LittleEndian.PutUint64(b[:], uint64(i))
					if err := pub.Send(b[:]); err != nil {
						return fmt.Errorf("send %d: %w", i, err)
					}
				}
				return nil
			}()
		}()
	}
	last := map[uint32]uint64{}
	for i := range pubs * n {
		s, err := sub.TakeTimeout(5 * time.Second)
		if err != nil {
			select {
			case perr := <-errs:
				require.NoError(t, perr, "a publisher failed")
			default:
			}
		}
		require.NoError(t, err, "take %d: %s", i, subscriber.DebugOwned(sub))
		id, seq := s.Header().PublisherID, binary.LittleEndian.Uint64(s.Bytes())
		require.Equal(t, last[id]+1, seq, "publisher %d", id)
		last[id] = seq
		require.NoError(t, s.Release())
	}
	for range pubs {
		require.NoError(t, <-errs)
	}
}

// A Take asleep on its connections wakes for a publisher that connects
// while it sleeps.
func TestTakeWakesForLaterPublisher(t *testing.T) {
	t.Parallel()
	testTakeWakesForLaterPublisher(t, routertest.Small)
}

func testTakeWakesForLaterPublisher(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	sub, err := subscriber.New(ctx, "later", subscriber.Options{Socket: sock, Spin: -1})
	require.NoError(t, err)
	defer sub.Close()
	pub1, err := publisher.New(ctx, "later", publisher.Options{Socket: sock})
	require.NoError(t, err)
	defer pub1.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	slept := sub.WakeStats().Sleeps
	got := make(chan error, 1)
	go func() {
		s, err := sub.TakeTimeout(10 * time.Second)
		if err == nil {
			if string(s.Bytes()) != "late" {
				err = fmt.Errorf("got %q", s.Bytes())
			}
			_ = s.Release()
		}
		got <- err
	}()
	for sub.WakeStats().Sleeps == slept { // the take sleeps on pub1's connection
		require.NoError(t, ctx.Err(), "the take never slept")
		time.Sleep(time.Millisecond)
	}
	pub2, err := publisher.New(ctx, "later", publisher.Options{Socket: sock})
	require.NoError(t, err)
	defer pub2.Close()
	require.NoError(t, pub2.Send([]byte("late")))
	require.NoError(t, <-got, "the sleeping take missed the later publisher's sample")
}
