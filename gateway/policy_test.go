package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// TestLosslessFlatOut: with PolicyBlock a publisher in domain A that
// publishes as fast as it can is slowed to the bridge's pace: every sample
// reaches the subscriber in domain B, in order, and no counter shows a
// loss. (With the default policy the same publisher loses most of its
// samples at the exporter's queue.)
func TestLosslessFlatOut(t *testing.T) {
	t.Parallel()
	forImportPaths(t, func(t *testing.T) { testLosslessFlatOut(t, routertest.Small) })
}

func testLosslessFlatOut(t *testing.T, cfg string) {
	n := 20000
	if testing.Short() {
		n = 3000
	}
	t.Run("size=1KiB", func(t *testing.T) { t.Parallel(); losslessFlatOut(t, cfg, 1<<10, n, 64) })
	// 64 KiB: the exporter's queue (16) leaves the publisher chunks of
	// the 64 in its pool; in B the subscriber's queue (64) takes the whole
	// pool, and the importer waits for chunks instead of dropping.
	t.Run("size=64KiB", func(t *testing.T) { t.Parallel(); losslessFlatOut(t, cfg, 64<<10, n/10, 16) })
}

func losslessFlatOut(t *testing.T, cfg string, size, n, exportQueue int) {
	ns := startNATS(t, -1, 0)
	ra, rb := newRouterTOML(t, cfg), newRouterTOML(t, cfg)
	typ := &gateway.Type{Name: "flat"}
	topic := []gateway.Topic{{Name: "flat", Type: typ}}
	ga, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.cfg.Socket, Export: topic,
		Policy: gateway.PolicyBlock, QueueCapacity: exportQueue})
	gb, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: rb.cfg.Socket, Import: topic,
		Policy: gateway.PolicyBlock, MaxPayload: size})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "flat", subscriber.Options{Socket: rb.cfg.Socket, TypeName: "flat", QueueCapacity: 64, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	pub, err := publisher.New(ctx, "flat", publisher.Options{Socket: ra.cfg.Socket, TypeName: "flat", BlockTimeout: time.Minute, MaxPayload: size})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	res := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			s, err := sub.TakeTimeout(20 * time.Second)
			if err != nil {
				res <- fmt.Errorf("message %d of %d: %w", i, n, err)
				return
			}
			got := binary.LittleEndian.Uint64(s.Bytes())
			_ = s.Release()
			if got != uint64(i) {
				res <- fmt.Errorf("message %d of %d carries %d: lost or out of order", i, n, got)
				return
			}
		}
		res <- nil
	}()
	b := make([]byte, size)
	for i := 1; i <= n; i++ { // flat out: no pacing at all
		binary.LittleEndian.PutUint64(b, uint64(i))
		require.NoError(t, pub.Send(b))
	}
	require.NoError(t, <-res, "A %v; B %v", ga.Stats(), gb.Stats())
	require.Zero(t, pub.Dropped(), "the local publisher gave up on no sample")
	eventually(t, "the importer counting the last message", func() bool { return gb.Stats().Imported == uint64(n) })
	sa, sb := ga.Stats(), gb.Stats()
	require.Equal(t, uint64(n), sa.Exported, "%v", sa)
	require.Zero(t, sa.Dropped+sa.Gaps+sa.Refused, "A %v", sa)
	require.Zero(t, sb.Dropped+sb.Gaps+sb.Reordered+sb.Refused, "B %v", sb)
	ts := gb.TopicStats()
	require.Len(t, ts, 1)
	require.Equal(t, gateway.TopicStats{Topic: "flat", Forwarded: uint64(n)}, ts[0])
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	for _, p := range []gateway.Policy{gateway.PolicyDiscard, gateway.PolicyBlock} {
		got, err := gateway.ParsePolicy(p.String())
		require.NoError(t, err)
		require.Equal(t, p, got)
	}
	_, err := gateway.ParsePolicy("lossy")
	require.ErrorIs(t, err, gateway.ErrInvalidArgument)
	_, err = gateway.New(gateway.Options{Policy: 7, Import: []gateway.Topic{{Name: "a"}}})
	require.ErrorIs(t, err, gateway.ErrInvalidArgument)
}

// TestLosslessMixedSizesInOrder: with PolicyBlock, small samples (batched
// by the exporter), samples split into parts and samples too large to
// batch, published flat out and interleaved, all arrive byte-exact and in
// publishing order.
func TestLosslessMixedSizesInOrder(t *testing.T) {
	t.Parallel()
	testLosslessMixedSizesInOrder(t, routertest.Small)
}

func testLosslessMixedSizesInOrder(t *testing.T, cfg string) {
	n := 3000
	if testing.Short() {
		n = 600
	}
	// NATS's max payload of 8 KiB splits the 12000- and 40000-byte samples
	// into parts; 40000 bytes is also beyond what the exporter stages.
	sizes := []int{100, 3000, 12000, 200, 1000, 40000, 64, 5000}
	ns := startNATS(t, -1, 8<<10)
	ra, rb := newRouterTOML(t, cfg), newRouterTOML(t, cfg)
	topic := []gateway.Topic{{Name: "mixed", Type: &gateway.Type{Name: "mixed"}}}
	ga, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.cfg.Socket, Export: topic,
		Policy: gateway.PolicyBlock, QueueCapacity: 16})
	gb, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: rb.cfg.Socket, Import: topic,
		Policy: gateway.PolicyBlock, MaxPayload: 40 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "mixed", subscriber.Options{Socket: rb.cfg.Socket, TypeName: "mixed", QueueCapacity: 16, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	pub, err := publisher.New(ctx, "mixed", publisher.Options{Socket: ra.cfg.Socket, TypeName: "mixed", BlockTimeout: time.Minute, MaxPayload: 40 << 10})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	res := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			s, err := sub.TakeTimeout(20 * time.Second)
			if err != nil {
				res <- fmt.Errorf("message %d of %d: %w", i, n, err)
				return
			}
			ok := bytes.Equal(s.Bytes(), payload(uint64(i), sizes[i%len(sizes)]))
			got, size := binary.LittleEndian.Uint64(s.Bytes()), len(s.Bytes())
			_ = s.Release()
			if !ok {
				res <- fmt.Errorf("message %d of %d: got %d bytes carrying %d: lost, out of order or corrupt", i, n, size, got)
				return
			}
		}
		res <- nil
	}()
	for i := 1; i <= n; i++ { // flat out
		require.NoError(t, pub.Send(payload(uint64(i), sizes[i%len(sizes)])))
	}
	require.NoError(t, <-res, "A %v; B %v", ga.Stats(), gb.Stats())
	sa, sb := ga.Stats(), gb.Stats()
	require.Zero(t, sa.Dropped+sa.Gaps+sa.Refused, "A %v", sa)
	require.Zero(t, sb.Dropped+sb.Gaps+sb.Reordered+sb.Refused, "B %v", sb)
}
