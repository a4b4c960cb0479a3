package subscriber_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// In the owned model every chunk is back on the publisher's free list once
// the subscriber released everything (Stats drains the return ring).
func TestOwnedChunksAllReturned(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
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
	const n = 1000
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
		s, err := sub.TakeTimeout(3 * time.Second)
		require.NoError(t, err, "take %d: %s", i, subscriber.DebugOwned(sub))
		require.Equal(t, uint64(i), binary.LittleEndian.Uint64(s.Bytes()))
		require.Equal(t, uint64(i), s.Header().Seq)
		require.Equal(t, pub.ID(), s.Header().PublisherID)
		require.NoError(t, s.Release())
	}
	st := pub.Stats()
	t.Logf("%+v", st)
	require.Positive(t, st.Memory.Chunks)
	require.Equal(t, st.Memory.Chunks, st.Memory.Free)
}
