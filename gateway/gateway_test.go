package gateway_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

func TestParseTopic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want gateway.Topic
		err  string
	}{
		{in: "frames", want: gateway.Topic{Name: "frames"}},
		{in: "frames:", want: gateway.Topic{Name: "frames", Type: &gateway.Type{}}},
		{in: "cam/left:acme.com/cam.Frame,64,8", want: gateway.Topic{Name: "cam/left", Type: &gateway.Type{Name: "acme.com/cam.Frame", Size: 64, Align: 8}}},
		{in: "frames:raw,16", want: gateway.Topic{Name: "frames", Type: &gateway.Type{Name: "raw", Size: 16}}},
		{in: "bad topic", err: "topic \"bad topic\""},
		{in: "frames:raw,x", err: `type size "x" is not a decimal number`},
		{in: "frames:raw,1,2,3", err: "want name:type[,size[,align]]"},
	} {
		got, err := gateway.ParseTopic(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			require.ErrorIs(t, err, gateway.ErrInvalidArgument)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
		back, err := gateway.ParseTopic(got.String())
		require.NoError(t, err)
		require.Equal(t, got, back)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"/0/0", "a/b/c.T/64/8"} {
		typ, err := gateway.ParseType(s)
		require.NoError(t, err)
		require.Equal(t, s, typ.String())
	}
	_, err := gateway.ParseType("raw/x/1")
	require.ErrorIs(t, err, gateway.ErrInvalidArgument)
	want := gateway.Meta{Seq: 7, Timestamp: -123, Type: gateway.Type{Name: "t", Size: 4, Align: 4}, Publisher: 3, Gateway: "gw1"}
	b, err := gateway.AppendMessage([]byte("keep"), want, []byte("data"))
	require.NoError(t, err)
	require.Equal(t, "keep", string(b[:4]))
	m, p, err := gateway.DecodeMessage(b[4:])
	require.NoError(t, err)
	require.Equal(t, want, m)
	require.Equal(t, "data", string(p))
	// Every truncation, and every corrupted byte of the fixed header but
	// the origin fields, is refused.
	for n := range len(b) - 4 - len("data") {
		_, _, err = gateway.DecodeMessage(b[4 : 4+n])
		require.ErrorIs(t, err, gateway.ErrNotParallax, "truncated to %d bytes", n)
	}
	for _, off := range []int{0, 1, 2, 3, 4, 6, 7} {
		c := append([]byte(nil), b[4:]...)
		c[off] ^= 0x80
		if off == 4 {
			c[off] = 0 // empty gateway id
		}
		_, _, err = gateway.DecodeMessage(c)
		require.ErrorIs(t, err, gateway.ErrNotParallax, "byte %d corrupted", off)
	}
	_, err = gateway.AppendMessage(nil, gateway.Meta{}, nil)
	require.ErrorIs(t, err, gateway.ErrInvalidArgument, "no gateway id")
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := gateway.New(gateway.Options{})
	require.ErrorIs(t, err, gateway.ErrInvalidArgument)
	_, err = gateway.New(gateway.Options{Export: []gateway.Topic{{Name: "a"}, {Name: "a"}}})
	require.ErrorContains(t, err, `topic "a" listed twice in export`)
	_, err = gateway.New(gateway.Options{Prefix: "x..", Import: []gateway.Topic{{Name: "a"}}})
	require.ErrorContains(t, err, "empty token")
	_, err = gateway.New(gateway.Options{ID: "a b", Import: []gateway.Topic{{Name: "a"}}})
	require.ErrorIs(t, err, gateway.ErrInvalidArgument)
	require.ErrorContains(t, err, "gateway: id")
}

// bridge is two routers, a NATS server, gateway A exporting and gateway B
// importing topic.
type bridge struct {
	ra, rb  *router
	natsURL string
	ga, gb  *gateway.Gateway
	stopA   func()
	stopB   func()
	logA    *logBuf
	logB    *logBuf
	optsB   gateway.Options
}

// newBridge starts the bridge; natsMax is the NATS server's max payload
// (0: its default) and chunk gateway B's importer chunk size in the owned
// model (gateway.Options.MaxPayload; 0: the router's default).
func newBridge(t *testing.T, cfg string, natsMax int32, chunk int, exp, imp gateway.Topic) *bridge {
	ns := startNATS(t, -1, natsMax)
	b := &bridge{ra: newRouterTOML(t, cfg), rb: newRouterTOML(t, cfg), natsURL: ns.ClientURL()}
	b.ga, b.logA, b.stopA = startGateway(t, gateway.Options{NATSURL: b.natsURL, Socket: b.ra.cfg.Socket, Export: []gateway.Topic{exp}})
	b.optsB = gateway.Options{NATSURL: b.natsURL, Socket: b.rb.cfg.Socket, Import: []gateway.Topic{imp}, MaxPayload: chunk}
	b.gb, b.logB, b.stopB = startGateway(t, b.optsB)
	return b
}

func TestBridgeOrderAndChecksum(t *testing.T) {
	t.Parallel()
	forImportPaths(t, func(t *testing.T) { testBridgeOrderAndChecksum(t, routertest.Small) })
}

func testBridgeOrderAndChecksum(t *testing.T, cfg string) {
	typ := &gateway.Type{Name: "bytes.v1"}
	b := newBridge(t, cfg, 0, 0, gateway.Topic{Name: "frames", Type: typ}, gateway.Topic{Name: "frames", Type: typ})
	// Bounded: a broken bridge fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "frames", subscriber.Options{Socket: b.rb.cfg.Socket, TypeName: "bytes.v1", QueueCapacity: 128, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	pub, err := publisher.New(ctx, "frames", publisher.Options{Socket: b.ra.cfg.Socket, TypeName: "bytes.v1"})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1)) // gateway A's exporter

	n := 2000
	if testing.Short() {
		n = 200
	}
	var sent uint32
	type result struct {
		crc uint32
		err error
	}
	res := make(chan result, 1)
	go func() { // receive concurrently: B's queue is smaller than n
		var got uint32
		last := uint64(0)
		for i := 1; i <= n; i++ {
			s, err := sub.TakeTimeout(20 * time.Second)
			if err != nil {
				res <- result{err: fmt.Errorf("message %d of %d: %w", i, n, err)}
				return
			}
			if seq := binary.LittleEndian.Uint64(s.Bytes()); seq != last+1 {
				res <- result{err: fmt.Errorf("order per publisher: got seq %d after %d", seq, last)}
				return
			}
			last++
			got = crc32.Update(got, crcTable, s.Bytes())
			if err := s.Release(); err != nil {
				res <- result{err: err}
				return
			}
		}
		res <- result{crc: got}
	}()
	for i := 1; i <= n; i++ {
		p := payload(uint64(i), 8+i%3000)
		sent = crc32.Update(sent, crcTable, p)
		require.NoError(t, pub.Send(p))
		if i%256 == 0 { // stay under the exporter's queue: this test wants no loss
			eventually(t, "exporter catching up", func() bool { return b.ga.Stats().Exported >= uint64(i) })
		}
	}
	r := <-res
	require.NoError(t, r.err, "A %v; B %v", b.ga.Stats(), b.gb.Stats())
	got := r.crc
	require.Equal(t, sent, got, "checksums")
	// The importer counts a message after its local publish returns, so the
	// last count may trail the subscriber's take by an instant.
	eventually(t, "importer counting the last message", func() bool { return b.gb.Stats().Imported >= uint64(n) })
	sa, sb := b.ga.Stats(), b.gb.Stats()
	require.Equal(t, uint64(n), sa.Exported, "%v", sa)
	require.Equal(t, uint64(n), sb.Imported, "%v", sb)
	require.Zero(t, sb.Gaps+sb.Reordered+sb.Refused+sb.Dropped, "%v", sb)

	// The same counters, scraped as Prometheus metrics.
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(b.gb.Collector()))
	families, err := reg.Gather()
	require.NoError(t, err)
	values := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			require.Equal(t, b.gb.ID(), labels["gateway"])
			name := f.GetName()
			if labels["topic"] != "" {
				name += "{" + labels["topic"] + "," + labels["direction"] + "}"
			}
			values[name] = m.GetCounter().GetValue()
		}
	}
	require.Equal(t, float64(n), values["parallax_gateway_imported_total"])
	require.Equal(t, float64(0), values["parallax_gateway_dropped_total"])
	require.Equal(t, float64(n), values["parallax_gateway_topic_forwarded_total{frames,import}"])
	require.Equal(t, float64(0), values["parallax_gateway_topic_dropped_total{frames,import}"])
	require.Len(t, values, 9+4)

	// And as each router sees them: the gateways report to their routers.
	eventually(t, "router B showing gateway B's imports", func() bool {
		c := routerCounters(t, b.rb, b.gb.ID())
		return c["imported"] == uint64(n) && c["forwarded"] == uint64(n)
	})
	eventually(t, "router A showing gateway A's exports", func() bool { return routerCounters(t, b.ra, b.ga.ID())["exported"] == uint64(n) })
	require.Len(t, routerCounters(t, b.ra, b.ga.ID()), 9)
}

func TestTypeFromFirstMessageAndMismatchRefused(t *testing.T) {
	t.Parallel()
	forImportPaths(t, func(t *testing.T) { testTypeFromFirstMessageAndMismatchRefused(t, routertest.Small) })
}

func testTypeFromFirstMessageAndMismatchRefused(t *testing.T, cfg string) {
	// A exports "points" typed pt/16/8; B imports it without a type and
	// has a local subscriber of another type: the importer is refused.
	b := newBridge(t, cfg, 0, 0, gateway.Topic{Name: "points", Type: &gateway.Type{Name: "pt", Size: 16, Align: 8}}, gateway.Topic{Name: "points"})
	// Bounded: a broken bridge fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	other, err := subscriber.New(ctx, "points", subscriber.Options{Socket: b.rb.cfg.Socket, TypeName: "other", TypeSize: 4, TypeAlign: 4})
	require.NoError(t, err)
	pub, err := publisher.New(ctx, "points", publisher.Options{Socket: b.ra.cfg.Socket, TypeName: "pt", TypeSize: 16, TypeAlign: 8})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, pub.Send(make([]byte, 16)))
	eventually(t, "refusal", func() bool { return b.gb.Stats().Refused >= 1 })
	require.Contains(t, b.logB.String(), "incompatible payload type")
	require.Contains(t, b.logB.String(), "pt/16/8")
	_, err = other.TryTake()
	require.ErrorIs(t, err, subscriber.ErrNoData)
	require.NoError(t, other.Close())

	// Once the other type is gone, the type of the next message is taken
	// (after the importer's backoff) and the flow starts.
	sub, err := subscriber.New(ctx, "points", subscriber.Options{Socket: b.rb.cfg.Socket, TypeName: "pt", TypeSize: 16, TypeAlign: 8, QueueCapacity: 64})
	require.NoError(t, err)
	defer sub.Close()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		require.NoError(t, pub.Send(make([]byte, 16)))
		s, err := sub.TakeTimeout(20 * time.Millisecond)
		if err == nil {
			require.Len(t, s.Bytes(), 16)
			require.NoError(t, s.Release())
			break
		}
		require.ErrorIs(t, err, parallax.ErrTimeout)
		require.NoError(t, tctx.Err(), "no message after the conflicting subscriber left; B %v", b.gb.Stats())
	}
}

func TestConfiguredTypeMismatchRefused(t *testing.T) {
	t.Parallel()
	testConfiguredTypeMismatchRefused(t, routertest.Small)
}

func testConfiguredTypeMismatchRefused(t *testing.T, cfg string) {
	b := newBridge(t, cfg, 0, 0, gateway.Topic{Name: "x", Type: &gateway.Type{Name: "a"}}, gateway.Topic{Name: "x", Type: &gateway.Type{Name: "b"}})
	// Bounded: a broken bridge fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := publisher.New(ctx, "x", publisher.Options{Socket: b.ra.cfg.Socket, TypeName: "a"})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, pub.Send([]byte("hello")))
	eventually(t, "refusal", func() bool { return b.gb.Stats().Refused == 1 })
	require.Contains(t, b.logB.String(), "message of type a/0/0 from gateway "+b.ga.ID()+", topic configured as b/0/0")
	require.Zero(t, b.gb.Stats().Imported)
}

// TestLargePayloadSplit: a sample larger than the NATS server's max
// payload crosses in parts and arrives whole, between smaller ones.
func TestLargePayloadSplit(t *testing.T) {
	t.Parallel()
	forImportPaths(t, func(t *testing.T) { testLargePayloadSplit(t, routertest.Small) })
}

func testLargePayloadSplit(t *testing.T, cfg string) {
	b := newBridge(t, cfg, 8<<10, 256<<10, gateway.Topic{Name: "big"}, gateway.Topic{Name: "big", Type: &gateway.Type{}})
	// Bounded: a broken bridge fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "big", subscriber.Options{Socket: b.rb.cfg.Socket, QueueCapacity: 16})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	pub, err := publisher.New(ctx, "big", publisher.Options{Socket: b.ra.cfg.Socket, MaxPayload: 256 << 10})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	sizes := []int{16 << 10, 1 << 10, 8 << 10, 200 << 10}
	for i, n := range sizes {
		require.NoError(t, pub.Send(payload(uint64(i+1), n)))
	}
	for i, n := range sizes {
		s, err := sub.TakeTimeout(20 * time.Second)
		require.NoError(t, err, "A %v; B %v", b.ga.Stats(), b.gb.Stats())
		require.Equal(t, payload(uint64(i+1), n), s.Bytes(), "message %d", i+1)
		require.NoError(t, s.Release())
	}
	sa, sb := b.ga.Stats(), b.gb.Stats()
	require.Equal(t, uint64(len(sizes)), sa.Exported, "%v", sa)
	require.Zero(t, sa.Refused+sa.Dropped+sb.Refused+sb.Dropped+sb.Gaps, "A %v; B %v", sa, sb)
}

func TestLoopPrevention(t *testing.T) {
	t.Parallel()
	testLoopPrevention(t, routertest.Small)
}

func testLoopPrevention(t *testing.T, cfg string) {
	ns := startNATS(t, -1, 0)
	ra, rb := newRouterTOML(t, cfg), newRouterTOML(t, cfg)
	both := []gateway.Topic{{Name: "chat", Type: &gateway.Type{}}}
	ga, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.cfg.Socket, Export: both, Import: both})
	gb, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: rb.cfg.Socket, Export: both, Import: both})
	// Bounded: a broken bridge fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	subA, err := subscriber.New(ctx, "chat", subscriber.Options{Socket: ra.cfg.Socket, QueueCapacity: 64})
	require.NoError(t, err)
	defer subA.Close()
	subB, err := subscriber.New(ctx, "chat", subscriber.Options{Socket: rb.cfg.Socket, QueueCapacity: 64})
	require.NoError(t, err)
	defer subB.Close()
	pub, err := publisher.New(ctx, "chat", publisher.Options{Socket: ra.cfg.Socket})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 2)) // subA + gateway A's exporter
	const n = 10
	for i := 1; i <= n; i++ {
		require.NoError(t, pub.Send(payload(uint64(i), 64)))
	}
	for i := 1; i <= n; i++ {
		s, err := subB.TakeTimeout(20 * time.Second)
		require.NoError(t, err)
		require.Equal(t, uint64(i), binary.LittleEndian.Uint64(s.Bytes()))
		require.NoError(t, s.Release())
	}
	// B's exporter sees its importer's samples and skips them all.
	eventually(t, "B skipping its imports", func() bool { return gb.Stats().Looped == n })
	// A message claiming to come from gateway A is dropped by A's importer.
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	echo, err := gateway.AppendMessage(nil, gateway.Meta{Seq: 1, Timestamp: 1, Publisher: 1, Gateway: ga.ID()}, []byte("echo"))
	require.NoError(t, err)
	require.NoError(t, nc.Publish(gateway.DefaultPrefix+"chat", echo))
	require.NoError(t, nc.Flush())
	eventually(t, "A dropping its own echo", func() bool { return ga.Stats().Looped >= 1 })
	// A's own subscriber saw each sample exactly once.
	for i := 1; i <= n; i++ {
		s, err := subA.TakeTimeout(20 * time.Second)
		require.NoError(t, err)
		require.Equal(t, uint64(i), binary.LittleEndian.Uint64(s.Bytes()))
		require.NoError(t, s.Release())
	}
	_, err = subA.TryTake()
	require.ErrorIs(t, err, subscriber.ErrNoData, "nothing came back to A")
	// Malformed headers are refused.
	require.NoError(t, nc.Publish(gateway.DefaultPrefix+"chat", []byte("not a Parallax message")))
	require.NoError(t, nc.Flush())
	eventually(t, "refusal of a headerless message", func() bool { return ga.Stats().Refused >= 1 && gb.Stats().Refused >= 1 })
}

func TestRouterRestart(t *testing.T) {
	t.Parallel()
	testRouterRestart(t, routertest.Small)
}

func testRouterRestart(t *testing.T, cfg string) {
	typ := &gateway.Type{Name: "r"}
	b := newBridge(t, cfg, 0, 0, gateway.Topic{Name: "t", Type: typ}, gateway.Topic{Name: "t", Type: typ})
	// Bounded: a broken bridge fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := publisher.New(ctx, "t", publisher.Options{Socket: b.ra.cfg.Socket, TypeName: "r"})
	require.NoError(t, err)
	defer func() { pub.Close() }() // pub is replaced below
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	receive := func() {
		sub, err := subscriber.New(ctx, "t", subscriber.Options{Socket: b.rb.cfg.Socket, TypeName: "r", QueueCapacity: 64})
		require.NoError(t, err)
		defer sub.Close()
		require.NoError(t, sub.WaitForPublishers(ctx, 1))
		deadline := time.Now().Add(20 * time.Second)
		for seq := uint64(1); ; seq++ {
			require.NoError(t, pub.Send(payload(seq, 32)))
			s, err := sub.TakeTimeout(10 * time.Millisecond)
			if err == nil {
				require.NoError(t, s.Release())
				return
			}
			require.True(t, time.Now().Before(deadline), "no message after restart; B %v", b.gb.Stats())
		}
	}
	receive()
	// Router B goes away and comes back on the same socket.
	b.rb.stop()
	b.rb.start()
	eventually(t, "gateway B re-creating its publisher", func() bool { return b.gb.Stats().Reconnects >= 1 })
	receive()
	eventually(t, "gateway B reporting to the new router B", func() bool { return routerCounters(t, b.rb, b.gb.ID())["reconnects"] >= 1 })
	// Router A too (the exporter side).
	require.NoError(t, pub.Close())
	b.ra.stop()
	b.ra.start()
	eventually(t, "gateway A re-subscribing", func() bool { return b.ga.Stats().Reconnects >= 1 })
	pub, err = publisher.New(ctx, "t", publisher.Options{Socket: b.ra.cfg.Socket, TypeName: "r"})
	require.NoError(t, err)
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	receive()
}

func TestNATSRestart(t *testing.T) {
	t.Parallel()
	forImportPaths(t, func(t *testing.T) { testNATSRestart(t, routertest.Small) })
}

func testNATSRestart(t *testing.T, cfg string) {
	ns := startNATS(t, -1, 0)
	port := ns.Addr().(*net.TCPAddr).Port
	ra, rb := newRouterTOML(t, cfg), newRouterTOML(t, cfg)
	typ := []gateway.Topic{{Name: "t", Type: &gateway.Type{Name: "n"}}}
	ga, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.cfg.Socket, Export: typ})
	gb, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: rb.cfg.Socket, Import: typ})
	// Bounded: a broken bridge fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := publisher.New(ctx, "t", publisher.Options{Socket: ra.cfg.Socket, TypeName: "n"})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	sub, err := subscriber.New(ctx, "t", subscriber.Options{Socket: rb.cfg.Socket, TypeName: "n", QueueCapacity: 64})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	seq := uint64(0)
	receive := func() {
		deadline := time.Now().Add(20 * time.Second)
		for {
			seq++
			require.NoError(t, pub.Send(payload(seq, 32)))
			s, err := sub.TakeTimeout(10 * time.Millisecond)
			if err == nil {
				require.NoError(t, s.Release())
				return
			}
			require.True(t, time.Now().Before(deadline), "no message; A %v B %v", ga.Stats(), gb.Stats())
		}
	}
	receive()
	ns.Shutdown()
	ns.WaitForShutdown()
	startNATS(t, port, 0)
	eventually(t, "both gateways reconnecting to NATS", func() bool {
		return ga.Stats().Reconnects >= 1 && gb.Stats().Reconnects >= 1
	})
	receive()
}

// routerCounters returns the counters gateway id last reported to r's
// router (nil if it has no report on record).
func routerCounters(t testing.TB, r *router, id string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := r.srv.Introspect(ctx)
	require.NoError(t, err)
	for _, c := range in.Components {
		if c.Component == gateway.ReportComponent && c.Instance == id {
			m := map[string]uint64{}
			for _, ctr := range c.Counters {
				m[ctr.Name] = ctr.Value
			}
			return m
		}
	}
	return nil
}

// TestReportOnStop: the gateway reports at once when its endpoints start
// and once more when Run ends; here a publisher shares the gateway's
// runtime, so the connection (and the final report) outlives the gateway.
func TestReportOnStop(t *testing.T) {
	t.Parallel()
	testReportOnStop(t, routertest.Small)
}

func testReportOnStop(t *testing.T, cfg string) {
	ns := startNATS(t, -1, 0)
	ra := newRouterTOML(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := publisher.New(ctx, "s", publisher.Options{Socket: ra.cfg.Socket})
	require.NoError(t, err)
	defer pub.Close()
	g, _, stop := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.cfg.Socket,
		Export: []gateway.Topic{{Name: "s"}}, ReportInterval: time.Hour, ID: "stop-test"})
	eventually(t, "the first report", func() bool { return routerCounters(t, ra, "stop-test") != nil })
	require.Zero(t, routerCounters(t, ra, "stop-test")["exported"], "an hour before the next periodic report")
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	const n = 5
	for i := range n {
		require.NoError(t, pub.Send(payload(uint64(i+1), 16)))
	}
	eventually(t, "the exports", func() bool { return g.Stats().Exported == n })
	stop()
	require.EqualValues(t, n, routerCounters(t, ra, "stop-test")["exported"], "the final report")
}

// TestReportDisabled: a negative ReportInterval sends no report at all.
func TestReportDisabled(t *testing.T) {
	t.Parallel()
	testReportDisabled(t, routertest.Small)
}

func testReportDisabled(t *testing.T, cfg string) {
	ns := startNATS(t, -1, 0)
	ra := newRouterTOML(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := publisher.New(ctx, "s", publisher.Options{Socket: ra.cfg.Socket})
	require.NoError(t, err)
	defer pub.Close()
	g, _, stop := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.cfg.Socket,
		Export: []gateway.Topic{{Name: "s"}}, ReportInterval: -1})
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, pub.Send(payload(1, 16)))
	eventually(t, "the export", func() bool { return g.Stats().Exported == 1 })
	stop() // Run has returned: any report would have been answered by now
	require.Nil(t, routerCounters(t, ra, g.ID()))
}

// TestCleanStopNoWarning: stopping a gateway logs no warning or error
// (nats.go reports the gateway's own Close as a disconnection without an
// error, on its callback goroutine, before the closed callback).
func TestCleanStopNoWarning(t *testing.T) {
	t.Parallel()
	forImportPaths(t, func(t *testing.T) { testCleanStopNoWarning(t, routertest.Small) })
}

func testCleanStopNoWarning(t *testing.T, cfg string) {
	ns := startNATS(t, -1, 0)
	ra := newRouterTOML(t, cfg)
	closed := make(chan struct{})
	_, logs, stop := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.cfg.Socket,
		Export: []gateway.Topic{{Name: "quiet"}}, Import: []gateway.Topic{{Name: "other"}},
		NATSOptions: []nats.Option{nats.ClosedHandler(func(*nats.Conn) { close(closed) })}})
	stop()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("NATS connection not closed 20 s after the gateway stopped")
	}
	require.NotContains(t, logs.String(), "level=WARN")
	require.NotContains(t, logs.String(), "level=ERROR")
}
