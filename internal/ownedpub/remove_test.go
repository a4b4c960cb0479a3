package ownedpub_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// TestRemoveConnWhileBlockedThenPublish: a connection removed while a
// Publish waits on it (its subscriber died) is skipped by the Publish
// calls queued behind the blocked one, whichever of them and RemoveConn
// gets the engine first once the wait ends: none of them fails on its
// closed ring, and the other connection gets every message. Repeated,
// since the order is the scheduler's.
func TestRemoveConnWhileBlockedThenPublish(t *testing.T) {
	t.Parallel()
	for i := range 100 {
		r := newRig(t, ownedpub.Options{BlockTimeout: time.Minute, DrainEvery: -1}, 64, 16)
		_, other := r.conn(t, 1, ringbuf.DiscardOldest, 8, 8, 0)
		victim, _ := r.conn(t, 2, ringbuf.BlockProducer, 2, 3, 0)
		require.NoError(t, r.publish(t, 64, 1))
		require.NoError(t, r.publish(t, 64, 2))
		done := make(chan error, 3)
		go func() { done <- r.publish(t, 64, 3) }()
		require.Eventually(t, func() bool { return victim.Stats().Outstanding == 3 }, 5*time.Second, 10*time.Microsecond)
		go func() { done <- r.publish(t, 64, 4) }() // queued behind the blocked one
		go func() { done <- r.publish(t, 64, 5) }()
		_, err := r.e.RemoveConn(victim)
		require.NoError(t, err)
		for range 3 {
			select {
			case err := <-done:
				require.NoError(t, err, "round %d", i)
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: publish still blocked", i)
			}
		}
		require.Len(t, other.popAll(), 5, "round %d: the other connection got every message", i)
		require.Zero(t, r.e.Stats().Failed, "round %d", i)
	}
}
