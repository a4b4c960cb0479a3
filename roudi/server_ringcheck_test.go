package roudi_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// heapGuard panics (failing the whole test binary, on purpose: nothing
// else stops a drain that allocates without bound) if this process's heap
// grows by more than limit before stop is called.
func heapGuard(limit uint64) (stop func()) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	done := make(chan struct{})
	go func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base+limit {
				panic(fmt.Sprintf("heap grew by %d MiB (limit %d MiB): a drain buffers what a corrupt ring claims to hold", (ms.HeapAlloc-base)>>20, limit>>20))
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// TestCorruptRingTailThenClose: a publisher writes a tail 4e9 ahead of
// head into its ring and closes. The subscriber's drain on
// ConnectionRemoved must not buffer 4e9 entries: its memory stays bounded,
// it counts that one connection corrupt, and it keeps receiving its honest
// publisher with 0 loss, as does another stream on the same router. The
// router, draining the freed ring, stops at the corruption and counts it.
//
// Shared model: deleted in step 14 (hostile writers of arena rings).
// Owned-model counterparts: ringbuf TestConnCorruptIndices,
// internal/ownedsub TestForgedRefsBothRings, tests/shm TestOwnedForgedReturns.
func TestCorruptRingTailThenClose(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Shared)
	ctx := ctx10s(t)
	const topic, other = "ringcheck/tail", "ringcheck/other"
	sub, pub := newPair(t, ctx, srv, topic)
	sub2, pub2 := newPair(t, ctx, srv, other)
	require.NoError(t, pub2.WaitForSubscribers(ctx, 1))

	h := dialHostile(t, srv)
	reply, added := h.create(t, ctx, &wire.CreatePublisher{Topic: topic})
	require.NoError(t, sub.WaitForPublishers(ctx, 2))
	sendTake(t, pub, sub, "before", 10)

	stop := heapGuard(256 << 20)
	defer stop()
	h.addToTail(added, 4_000_000_000)
	_, _, err := h.c.Request(ctx, &wire.ClosePublisher{PubID: reply.(*wire.PublisherCreated).PubID}, nil)
	require.NoError(t, err)

	waitFor(t, "the corrupt connection removed", func() bool { return sub.Publishers() == 1 })
	require.Equal(t, uint64(1), sub.CorruptConnections(), "exactly the hostile connection is counted corrupt")
	sendTake(t, pub, sub, "after", 50)
	sendTake(t, pub2, sub2, "other", 50)
	require.Zero(t, sub2.CorruptConnections())
	waitFor(t, "the router to count the corrupt ring", func() bool { return srv.GuardStats().CorruptRings >= 1 })
	closeAllAndAudit(t, srv, pub, sub, pub2, sub2)
}

// TestCorruptRingLiveCut: a publisher corrupts its ring's tail while
// connected. The subscriber's take finds it, stops using the ring and
// reports it; the router verifies, cuts that connection and disconnects the
// publisher (head is as honest pops left it, so the tail is the bad word:
// the producer's). The honest publisher's stream loses nothing.
//
// Shared model: deleted in step 14 (hostile writers of arena rings).
// Owned-model counterparts: ringbuf TestConnCorruptIndices,
// internal/ownedsub TestForgedRefsBothRings, tests/shm TestOwnedForgedReturns.
func TestCorruptRingLiveCut(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Shared)
	ctx := ctx10s(t)
	const topic = "ringcheck/live"
	sub, pub := newPair(t, ctx, srv, topic)
	h := dialHostile(t, srv)
	_, added := h.create(t, ctx, &wire.CreatePublisher{Topic: topic})
	require.NoError(t, sub.WaitForPublishers(ctx, 2))

	stop := heapGuard(256 << 20)
	defer stop()
	h.addToTail(added, 4_000_000_000)
	sendTake(t, pub, sub, "honest", 50)
	h.awaitDisconnected(t, ctx, srv)
	st := srv.GuardStats()
	require.Equal(t, uint64(1), st.CorruptRingDisconnects)
	require.GreaterOrEqual(t, st.CorruptRings, uint64(1))
	require.Equal(t, uint64(1), sub.CorruptConnections())
	waitFor(t, "the cut connection removed", func() bool { return sub.Publishers() == 1 })
	sendTake(t, pub, sub, "after", 50)
	closeAllAndAudit(t, srv, pub, sub)
}

// TestCorruptRingReclaimResponsive: a subscriber client writes a head 4e9
// behind tail into its ring and dies (closes its control connection). The
// router reclaims it, draining its rings on the Serve goroutine: the drain
// must stop at the corruption, so the router still answers a Ping and
// admits a new client, and the publisher's other subscriber is unaffected.
//
// Shared model: deleted in step 14 (hostile writers of arena rings).
// Owned-model counterparts: ringbuf TestConnCorruptIndices,
// internal/ownedsub TestForgedRefsBothRings, tests/shm TestOwnedForgedReturns.
func TestCorruptRingReclaimResponsive(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Shared)
	ctx := ctx10s(t)
	const topic = "ringcheck/reclaim"
	pub := newPub(t, ctx, srv, topic, publisher.Options{})
	sub := newSub(t, ctx, srv, topic, subscriber.Options{})
	h := dialHostile(t, srv)
	_, added := h.create(t, ctx, &wire.CreateSubscriber{Topic: topic})
	require.NoError(t, pub.WaitForSubscribers(ctx, 2))
	sendTake(t, pub, sub, "before", 5) // the hostile's ring now holds 5 entries

	head := h.word(added, ringHeadOff)
	hw := binary.LittleEndian.Uint64(head)
	binary.LittleEndian.PutUint64(head, hw&^0xffffffff|uint64(uint32(hw)-4_000_000_000))
	require.NoError(t, h.c.Close())

	waitFor(t, "the router to count the corrupt ring", func() bool { return srv.GuardStats().CorruptRings >= 1 })
	ctx2, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	probe, err := discovery.Dial(ctx2, discovery.DialOptions{Socket: srv.SocketPath(), Name: "probe"})
	require.NoError(t, err, "the router must admit a new client after the reclaim")
	_, _, err = probe.Request(ctx2, &wire.Ping{}, nil)
	require.NoError(t, err, "the router must answer a Ping after the reclaim")
	require.NoError(t, probe.Close())
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	sendTake(t, pub, sub, "after", 50)
	closeAllAndAudit(t, srv, pub, sub)
}

// TestCorruptRingConsumerHead: a block-producer subscriber writes a head
// past its ring's tail. The publisher's push notices when it reads head
// (its view says full) and returns an error for that subscriber only, no
// loop, no wait; its other subscriber receives every sample. The router
// cuts the connection and disconnects the subscriber: on a block-producer
// ring only the consumer writes head, and the head word disagrees with its
// own pop count.
//
// Shared model: deleted in step 14 (hostile writers of arena rings).
// Owned-model counterparts: ringbuf TestConnCorruptIndices,
// internal/ownedsub TestForgedRefsBothRings, tests/shm TestOwnedForgedReturns.
func TestCorruptRingConsumerHead(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Shared)
	ctx := ctx10s(t)
	const topic = "ringcheck/head"
	pub := newPub(t, ctx, srv, topic, publisher.Options{BlockTimeout: 10 * time.Second})
	sub := newSub(t, ctx, srv, topic, subscriber.Options{})
	h := dialHostile(t, srv)
	const capacity = 8
	_, added := h.create(t, ctx, &wire.CreateSubscriber{Topic: topic, QueueCapacity: capacity, Policy: wire.PolicyBlockProducer})
	require.NoError(t, pub.WaitForSubscribers(ctx, 2))
	head := h.word(added, ringHeadOff)
	binary.LittleEndian.PutUint64(head, 100) // position 100, 0 pops: past tail 0

	var failed int
	for i := range 3 * capacity {
		err := pub.Send(fmt.Appendf(nil, "s %d", i))
		if err != nil {
			require.ErrorIs(t, err, parallax.ErrCorrupt, "sample %d", i)
			failed++
		}
		expectTake(t, sub, fmt.Sprintf("s %d", i))
	}
	require.Equal(t, 1, failed, "one publish reports the corrupt ring, then the connection is dropped")
	require.Equal(t, uint64(1), pub.CorruptConnections())
	h.awaitDisconnected(t, ctx, srv)
	require.Equal(t, uint64(1), srv.GuardStats().CorruptRingDisconnects)
	waitFor(t, "the cut connection removed", func() bool { return pub.Subscribers() == 1 })
	sendTake(t, pub, sub, "after", 20)
	closeAllAndAudit(t, srv, pub, sub)
}
