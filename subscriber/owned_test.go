package subscriber_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/clientrt"
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

// In the owned model a process unmaps what it no longer uses while its
// runtime lives on: two subscribers of one publisher share one read-only
// view of its data segment; a closed subscriber's connection segment goes
// at once, and when the publisher (in this process) closes, the last
// connection segment, the read-only view and the publisher's own mapping go.
func TestOwnedMappingsReleased(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	rt, err := clientrt.Acquire(ctx, clientrt.Options{Socket: sock}) // this process's runtime, kept alive
	require.NoError(t, err)
	defer rt.Release()

	sub, err := subscriber.New(ctx, "maps", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	defer sub.Close()
	sub2, err := subscriber.New(ctx, "maps", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	defer sub2.Close()
	// Declared: an undeclared publisher would add a small-class segment
	// for its 1-byte sample (§8.23), a mapping more to count.
	pub, err := publisher.New(ctx, "maps", publisher.Options{Socket: sock, MaxPayload: 64})
	require.NoError(t, err)
	require.NoError(t, pub.Send([]byte("x")))
	for _, sb := range []*subscriber.Subscriber{sub, sub2} {
		s, err := sb.TakeTimeout(10 * time.Second)
		require.NoError(t, err)
		require.NoError(t, s.Release())
	}
	own, ro, conns := rt.OwnedMappings()
	require.Equal(t, []int{1, 1, 2}, []int{own, ro, conns}, "own data, one read-only view shared by both subscribers, two connections")

	require.NoError(t, sub2.Close())
	require.NoError(t, waitUntil(ctx, func() bool { _, _, conns = rt.OwnedMappings(); return conns == 1 }), "conns %d", conns)
	own, ro, _ = rt.OwnedMappings()
	require.Equal(t, []int{1, 1}, []int{own, ro}, "the other subscriber still uses the read-only view")

	require.NoError(t, pub.Close())
	require.NoError(t, waitUntil(ctx, func() bool {
		own, ro, conns = rt.OwnedMappings()
		return own+ro+conns == 0
	}), "mappings left after the publisher closed: own %d, ro %d, conns %d", own, ro, conns)
}

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// The owned-model sizing options reach the router and bound the endpoints:
// MaxPayload (a larger loan fails), MaxLoans (a loan beyond fails with
// ErrLimit), MaxHeld (a take beyond fails with ErrLimit, nothing lost).
func TestOwnedLimits(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	sub, err := subscriber.New(ctx, "limits", subscriber.Options{Socket: sock, MaxHeld: 2, QueueCapacity: 8})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "limits", publisher.Options{Socket: sock, MaxPayload: 128, MaxLoans: 2})
	require.NoError(t, err)
	defer pub.Close()

	_, err = pub.Loan(4 << 20)
	require.ErrorIs(t, err, parallax.ErrLimit, "a loan above max_message_size (loans above MaxPayload get a dedicated segment)")
	a, err := pub.Loan(128)
	require.NoError(t, err)
	b, err := pub.Loan(1)
	require.NoError(t, err)
	_, err = pub.Loan(1)
	require.ErrorIs(t, err, parallax.ErrLimit, "a third loan with MaxLoans 2")
	require.NoError(t, pub.Release(a))
	require.NoError(t, pub.Release(b))

	for i := range 3 {
		require.NoError(t, pub.Send([]byte{byte(i)}))
	}
	x0, err := sub.TakeTimeout(10 * time.Second)
	require.NoError(t, err)
	x1, err := sub.TakeTimeout(10 * time.Second)
	require.NoError(t, err)
	_, err = sub.TryTake()
	require.ErrorIs(t, err, parallax.ErrLimit, "a third held sample with MaxHeld 2")
	require.NoError(t, x0.Release())
	x2, err := sub.TakeTimeout(10 * time.Second)
	require.NoError(t, err)
	require.Equal(t, []byte{2}, x2.Bytes(), "the sample held back is delivered after a release")
	require.NoError(t, x1.Release())
	require.NoError(t, x2.Release())
}
