package publisher_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Options.Spin is a duration bounded by BlockTimeout: a publisher that
// spins an hour on a full block-producer queue still gives up after
// BlockTimeout, and so does one that does not spin at all.
func TestPublishSpinIsBounded(t *testing.T) {
	t.Parallel()
	testPublishSpinIsBounded(t, routertest.Small)
}

func testPublishSpinIsBounded(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, spin := range []time.Duration{-1, 0, time.Hour} {
		topic := "pubspin/" + spin.String()
		sub, err := subscriber.New(ctx, topic, subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 1, Policy: subscriber.BlockProducer})
		require.NoError(t, err)
		defer sub.Close()
		pub, err := publisher.New(ctx, topic, publisher.Options{Socket: srv.SocketPath(), Spin: spin, BlockTimeout: 20 * time.Millisecond})
		require.NoError(t, err)
		defer pub.Close()
		require.NoError(t, pub.WaitForSubscribers(ctx, 1))
		done := make(chan error, 1)
		go func() {
			// Fill the queue (its capacity is rounded up); the first
			// error is the publish that found it full.
			for range 64 {
				if err := pub.Send([]byte("sample")); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			require.ErrorIs(t, err, parallax.ErrTimeout, "spin %v", spin)
		case <-time.After(20 * time.Second):
			t.Fatalf("spin %v: publish on a full queue did not give up after BlockTimeout", spin)
		}
	}
}
