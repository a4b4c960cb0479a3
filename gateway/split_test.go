package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// bigPools has chunks for 16 MiB messages besides small ones.
const bigPools = `
`

// TestSplitAcrossNATSReconnect: 16 MiB samples (16+ parts at NATS's
// default max payload of 1 MiB) cross while the NATS server restarts.
// Every sample the subscriber gets is whole and byte-exact; every sample
// it does not get is counted as lost by a gateway.
func TestSplitAcrossNATSReconnect(t *testing.T) {
	t.Parallel()
	forImportPaths(t, func(t *testing.T) { testSplitAcrossNATSReconnect(t, routertest.Small) })
}

func testSplitAcrossNATSReconnect(t *testing.T, cfg string) {
	const size = 16 << 20
	ns := startNATS(t, -1, 0)
	port := ns.Addr().(*net.TCPAddr).Port
	ra, rb := newRouterTOML(t, withModel(bigPools, cfg)), newRouterTOML(t, withModel(bigPools, cfg))
	topic := []gateway.Topic{{Name: "big", Type: &gateway.Type{Name: "blob"}}}
	ga, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.cfg.Socket, Export: topic, QueueCapacity: 2})
	gb, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: rb.cfg.Socket, Import: topic, MaxPayload: size})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "big", subscriber.Options{Socket: rb.cfg.Socket, TypeName: "blob", QueueCapacity: 2, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	pub, err := publisher.New(ctx, "big", publisher.Options{Socket: ra.cfg.Socket, TypeName: "blob", MaxPayload: size})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	// want is sample seq: its sequence number, then a pattern of it.
	want := func(seq uint64) []byte {
		b := make([]byte, size)
		binary.LittleEndian.PutUint64(b, seq)
		for i := 8; i < size; i += 4096 {
			b[i] = byte(seq)
		}
		return b
	}
	var sent atomic.Uint64
	send := func() {
		seq := sent.Load() + 1
		c, err := pub.Loan(size)
		require.NoError(t, err)
		copy(c.Bytes(), want(seq))
		require.NoError(t, pub.Publish(c))
		sent.Store(seq)
	}
	var got []uint64
	receive := func() {
		t.Helper()
		s, err := sub.TakeTimeout(30 * time.Second)
		require.NoError(t, err, "A %v; B %v", ga.Stats(), gb.Stats())
		seq := binary.LittleEndian.Uint64(s.Bytes())
		require.Equal(t, size, len(s.Bytes()), "sample %d has a wrong size", seq)
		require.True(t, bytes.Equal(want(seq), s.Bytes()), "sample %d is not the one sent", seq)
		require.NoError(t, s.Release())
		if len(got) > 0 {
			require.Greater(t, seq, got[len(got)-1], "order")
		}
		got = append(got, seq)
	}
	// Before: two whole messages.
	for range 2 {
		send()
		receive()
	}
	// During: the server goes away while parts are on their way.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			send()
		}
	}()
	eventually(t, "the exporter sending", func() bool { return sent.Load() >= 3 })
	ns.Shutdown()
	ns.WaitForShutdown()
	startNATS(t, port, 0)
	eventually(t, "both gateways reconnecting", func() bool { return ga.Stats().Reconnects >= 1 && gb.Stats().Reconnects >= 1 })
	// After: the flow resumes; whatever arrives in between is whole. Wait
	// for the latest sample sent: every loss before it is then visible.
	deadline := time.Now().Add(60 * time.Second)
	<-done
	send() // the final sample; sent again if it was lost
	for {
		s, err := sub.TakeTimeout(2 * time.Second)
		if err != nil {
			require.True(t, time.Now().Before(deadline), "no sample after the reconnect; got %v; A %v; B %v", got, ga.Stats(), gb.Stats())
			send()
			continue
		}
		seq := binary.LittleEndian.Uint64(s.Bytes())
		require.Equal(t, size, len(s.Bytes()))
		require.True(t, bytes.Equal(want(seq), s.Bytes()), "sample %d is not the one sent", seq)
		require.NoError(t, s.Release())
		require.Greater(t, seq, got[len(got)-1], "order")
		got = append(got, seq)
		if seq == sent.Load() {
			break
		}
	}
	last := got[len(got)-1]
	eventually(t, "the importer counting its last message", func() bool { return gb.Stats().Imported == uint64(len(got)) })
	sa, sb := ga.Stats(), gb.Stats()
	lost := last - uint64(len(got))
	counted := sa.Dropped + sb.Dropped + sb.Gaps
	require.GreaterOrEqual(t, counted, lost, "every sample not delivered is counted; got %v; A %v; B %v", got, sa, sb)
	require.Zero(t, sb.Refused, "B %v", sb)
	t.Logf("sent %d, delivered %v; A %v; B %v", last, got, sa, sb)
}

// TestSplitHostileParts: parts that do not fit together, or announce
// more than MaxMessageSize, never reach a local subscriber and are
// counted.
func TestSplitHostileParts(t *testing.T) {
	t.Parallel()
	testSplitHostileParts(t, routertest.Small)
}

func testSplitHostileParts(t *testing.T, cfg string) {
	ns := startNATS(t, -1, 0)
	rb := newRouterTOML(t, cfg)
	topic := []gateway.Topic{{Name: "h", Type: &gateway.Type{}}}
	gb, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: rb.cfg.Socket, Import: topic,
		MaxMessageSize: 64 << 10, MaxPartial: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "h", subscriber.Options{Socket: rb.cfg.Socket, QueueCapacity: 16})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	m := gateway.Meta{Seq: 1, Publisher: 1, Gateway: "evil"}
	part := func(seq uint64, pub uint32, total uint64, idx, count uint32, off uint64, data []byte) {
		t.Helper()
		m.Seq, m.Publisher = seq, pub
		b, err := gateway.AppendPart(nil, m, total, idx, count, off, data)
		require.NoError(t, err)
		require.NoError(t, nc.Publish(gateway.DefaultPrefix+"h", b))
	}
	chunk := bytes.Repeat([]byte{7}, 1000)
	part(1, 1, 2000, 0, 2, 0, chunk)          // message 1, part 0
	part(2, 1, 2000, 1, 2, 1000, chunk)       // a part of another message: 1 dropped
	part(3, 1, 1<<30, 0, 2, 0, chunk)         // over MaxMessageSize: refused
	part(4, 1, 3000, 0, 3, 0, chunk)          // message 4 ...
	part(4, 1, 3000, 2, 3, 2000, chunk)       // ... skips part 1: dropped
	part(5, 1, 3000, 0, 3, 0, chunk)          // message 5 ...
	part(5, 1, 3000, 1, 3, 999, chunk)        // ... at the wrong offset: dropped
	part(6, 2, 2000, 0, 2, 0, chunk)          // three origins, MaxPartial 2:
	part(6, 3, 2000, 0, 2, 0, chunk)          //
	part(6, 4, 2000, 0, 2, 0, chunk)          // the oldest (publisher 2) dropped
	part(7, 1, 2000, 1, 2, 1000, chunk[:999]) // last part short of the total: malformed, refused
	part(8, 1, 2000, 0, 2, 0, chunk)          // a good one passes (evicting publisher 3's)
	part(8, 1, 2000, 1, 2, 1000, chunk)
	require.NoError(t, nc.Flush())
	s, err := sub.TakeTimeout(20 * time.Second)
	require.NoError(t, err, "B %v", gb.Stats())
	require.Equal(t, bytes.Repeat([]byte{7}, 2000), s.Bytes())
	require.NoError(t, s.Release())
	_, err = sub.TryTake()
	require.ErrorIs(t, err, subscriber.ErrNoData, "nothing else delivered")
	eventually(t, "the importer counting", func() bool { return gb.Stats().Imported == 1 })
	sb := gb.Stats()
	require.Equal(t, uint64(5), sb.Dropped, "%v", sb)
	require.Equal(t, uint64(2), sb.Refused, "%v", sb)
}
