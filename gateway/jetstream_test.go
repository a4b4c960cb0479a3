package gateway_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// TestJetStreamCatchUp: with a stream, samples published while the
// importing domain (router and gateway) is down are delivered, in order,
// when it is back.
func TestJetStreamCatchUp(t *testing.T) {
	t.Parallel()
	testJetStreamCatchUp(t, routertest.Small)
}

func testJetStreamCatchUp(t *testing.T, cfg string) {
	ns := startNATSOpts(t, &server.Options{Port: -1, JetStream: true, StoreDir: t.TempDir()})
	ra, rb := newRouterTOML(t, cfg), newRouterTOML(t, cfg)
	topic := []gateway.Topic{{Name: "js", Type: &gateway.Type{Name: "persist"}}}
	ga, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.cfg.Socket, Export: topic,
		Stream: "PARALLAX", Policy: gateway.PolicyBlock})
	optsB := gateway.Options{NATSURL: ns.ClientURL(), Socket: rb.cfg.Socket, Import: topic,
		Stream: "PARALLAX", Durable: "domain-b", ID: "gw-b"}
	gb, _, stopB := startGateway(t, optsB)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := publisher.New(ctx, "js", publisher.Options{Socket: ra.cfg.Socket, TypeName: "persist"})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	newSub := func() *subscriber.Subscriber {
		sub, err := subscriber.New(ctx, "js", subscriber.Options{Socket: rb.cfg.Socket, TypeName: "persist", QueueCapacity: 256, Policy: subscriber.BlockProducer})
		require.NoError(t, err)
		return sub
	}
	receive := func(sub *subscriber.Subscriber, from, to uint64) {
		t.Helper()
		for seq := from; seq <= to; seq++ {
			s, err := sub.TakeTimeout(20 * time.Second)
			require.NoError(t, err, "sample %d; A %v; B %v", seq, ga.Stats(), gb.Stats())
			require.Equal(t, seq, binary.LittleEndian.Uint64(s.Bytes()), "order, no loss")
			require.NoError(t, s.Release())
		}
	}
	const n = 100
	sub := newSub()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	for i := uint64(1); i <= n; i++ {
		require.NoError(t, pub.Send(payload(i, 128)))
	}
	receive(sub, 1, n)
	eventually(t, "B counting its imports", func() bool { return gb.Stats().Imported == n })

	// Domain B goes down: gateway, subscriber and router.
	stopB()
	require.NoError(t, sub.Close())
	rb.stop()
	for i := uint64(n + 1); i <= 2*n; i++ {
		require.NoError(t, pub.Send(payload(i, 128)))
	}
	eventually(t, "A exporting while B is down", func() bool { return ga.Stats().Exported == 2*n })

	// Back: the subscriber first, then the gateway with the same durable.
	rb.start()
	sub = newSub()
	defer sub.Close()
	gb, _, _ = startGateway(t, optsB)
	receive(sub, n+1, 2*n)
	_, err = sub.TakeTimeout(50 * time.Millisecond)
	require.Error(t, err, "nothing delivered twice")
	sa := ga.Stats()
	require.Zero(t, sa.Dropped+sa.Gaps, "A %v", sa)
}
