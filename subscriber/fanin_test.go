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
func TestFanIn(t *testing.T) { routertest.ForModels(t, testFanIn) }

func testFanIn(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "fanin", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 64, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	const pubs, n = 3, 3000
	errs := make(chan error, pubs)
	for range pubs {
		go func() {
			errs <- func() error {
				pub, err := publisher.New(ctx, "fanin", publisher.Options{Socket: srv.SocketPath(), BlockTimeout: 10 * time.Second})
				if err != nil {
					return err
				}
				defer pub.Close()
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
