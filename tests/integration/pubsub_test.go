//go:build integration

package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Each scenario runs against the router r it is given, on its own topic,
// and leaves no client behind, so the in-process variant
// (TestInProcessRouterPoolsFree) can audit the pools after it.

// requireDelivered checks that sub received exactly what pub published.
func requireDelivered(t *testing.T, pub pubResult, sub subReport, from uint64) {
	t.Helper()
	got, ok := sub.Pubs[pub.ID]
	require.True(t, ok, "subscriber got nothing from publisher %d (report %+v)", pub.ID, sub)
	require.Equal(t, pub.Count-from+1, got.Count, "samples from publisher %d", pub.ID)
	require.Equal(t, from, got.First, "first seq from publisher %d", pub.ID)
	require.Equal(t, pub.Count, got.Last, "last seq from publisher %d", pub.ID)
	if from == 1 {
		require.Equal(t, pub.CRC, got.CRC, "checksum of publisher %d's payloads", pub.ID)
	}
}

func sockArg(r *router) string { return "-socket=" + r.Socket }

// streamScenario: one publisher streams n samples of size bytes to one
// block-producer subscriber, which verifies every byte and the order.
// pubArgs go to the publisher child (for example -max-payload).
func streamScenario(t *testing.T, r *router, topic string, n, size int, pubArgs ...string) {
	sub := spawn(t, "subscriber", "sub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(n), "-qcap=64", "-policy=block")
	sub.expect("ready")
	pub := spawn(t, "publisher", "pub", append([]string{sockArg(r), "-topic=" + topic, "-n=" + strconv.Itoa(n), "-size=" + strconv.Itoa(size), "-subs=1"}, pubArgs...)...)
	res := parsePubResult(t, pub.expect("result "))
	pub.wait()
	rep := parseSubReport(t, sub.wait())
	require.Equal(t, uint64(n), rep.Total)
	require.Len(t, rep.Pubs, 1)
	requireDelivered(t, res, rep, 1)
	require.Zero(t, rep.Dropped, "block-producer subscriber dropped samples")
}

// TestStream1GiB streams 1 GiB (64 KiB x 16384) from one process to
// another with the block-producer policy.
func TestStream1GiB(t *testing.T) {
	t.Parallel()
	r := startRouter(t)
	start := time.Now()
	streamScenario(t, r, "stream", 16384, 64<<10)
	el := time.Since(start)
	t.Logf("1 GiB in %v (%.0f MiB/s, with -race and verification)", el, 1024/el.Seconds())
	r.requirePoolsFree(t)
}

// fanOutScenario: one publisher, subs subscriber processes, each receives
// every sample.
func fanOutScenario(t *testing.T, r *router, topic string, subs, n, size int) {
	var ps []*proc
	for i := range subs {
		p := spawn(t, fmt.Sprintf("subscriber %d", i), "sub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(n), "-qcap=64", "-policy=block")
		ps = append(ps, p)
	}
	for _, p := range ps {
		p.expect("ready")
	}
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(n), "-size="+strconv.Itoa(size), "-subs="+strconv.Itoa(subs))
	res := parsePubResult(t, pub.expect("result "))
	require.Equal(t, subs, res.Subscribers)
	pub.wait()
	for _, p := range ps {
		rep := parseSubReport(t, p.wait())
		require.Equal(t, uint64(n), rep.Total, p.name)
		requireDelivered(t, res, rep, 1)
	}
}

// TestFanOut8 publishes to 8 subscriber processes.
func TestFanOut8(t *testing.T) {
	t.Parallel()
	r := startRouter(t)
	fanOutScenario(t, r, "fanout", 8, 2000, 4096)
	r.requirePoolsFree(t)
}

// fanInScenario: pubs publisher processes, one subscriber; each
// publisher's order is kept and everything arrives.
func fanInScenario(t *testing.T, r *router, topic string, pubs, n, size int) {
	sub := spawn(t, "subscriber", "sub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(pubs*n), "-qcap=64", "-policy=block")
	sub.expect("ready")
	var ps []*proc
	for i := range pubs {
		ps = append(ps, spawn(t, fmt.Sprintf("publisher %d", i), "pub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(n), "-size="+strconv.Itoa(size), "-subs=1"))
	}
	var results []pubResult
	for _, p := range ps {
		results = append(results, parsePubResult(t, p.expect("result ")))
		p.wait()
	}
	rep := parseSubReport(t, sub.wait())
	require.Equal(t, uint64(pubs*n), rep.Total)
	require.Len(t, rep.Pubs, pubs)
	for _, res := range results {
		requireDelivered(t, res, rep, 1)
	}
}

// TestThreePublishersOneSubscriber fans in from 3 processes.
func TestThreePublishersOneSubscriber(t *testing.T) {
	t.Parallel()
	r := startRouter(t)
	fanInScenario(t, r, "fanin", 3, 3000, 256)
	r.requirePoolsFree(t)
}

// historyScenario: a publisher with history h publishes m > h samples to
// nobody; a subscriber joining later with history h receives exactly the
// last h, in order.
func historyScenario(t *testing.T, r *router, topic string, h, m int) {
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(m), "-size=512", "-history="+strconv.Itoa(h), "-hold")
	res := parsePubResult(t, pub.expect("result "))
	require.Zero(t, res.Subscribers)
	from := m - h + 1
	sub := spawn(t, "late subscriber", "sub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(h), "-history="+strconv.Itoa(h),
		"-first="+strconv.Itoa(from), "-exact", "-qcap=64")
	rep := parseSubReport(t, sub.wait())
	pub.wait()
	require.Equal(t, uint64(h), rep.Total)
	requireDelivered(t, res, rep, uint64(from))
}

// TestLateJoinerHistory checks history replay to a late subscriber.
func TestLateJoinerHistory(t *testing.T) {
	t.Parallel()
	r := startRouter(t)
	historyScenario(t, r, "history", 16, 100)
	r.requirePoolsFree(t)
}

// discardScenario: a subscriber with a queue of qcap that does not take
// while the publisher sends m samples gets a strictly increasing run ending
// with the last one, and what it got plus what it was told it lost is m.
func discardScenario(t *testing.T, r *router, topic string, qcap, m int) {
	sub := spawn(t, "slow subscriber", "sub", sockArg(r), "-topic="+topic, "-qcap="+strconv.Itoa(qcap), "-policy=discard",
		"-wait-pubs=1", "-gate", "-drain", "-lossy")
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(m), "-size=200", "-subs=1", "-hold")
	sub.expect("connected")
	res := parsePubResult(t, pub.expect("result "))
	sub.send("go")
	rep := parseSubReport(t, sub.wait())
	pub.wait()
	got, ok := rep.Pubs[res.ID]
	require.True(t, ok, "slow subscriber received nothing: %+v", rep)
	require.Equal(t, uint64(m), got.Last, "the newest sample must survive")
	require.Equal(t, uint64(m), rep.Total+rep.Dropped, "received %d + dropped %d", rep.Total, rep.Dropped)
	require.LessOrEqual(t, rep.Total, uint64(qcap), "received more than the queue holds")
	require.Equal(t, uint64(m)-got.Count+1, got.First, "what survives is the newest run")
}

// TestDiscardOldestSlowSubscriber checks the discard-oldest policy.
func TestDiscardOldestSlowSubscriber(t *testing.T) {
	t.Parallel()
	r := startRouter(t)
	discardScenario(t, r, "discard", 8, 2000)
	r.requirePoolsFree(t)
}

// TestTypeMismatchRefused: a subscriber in another process asking for a
// different payload type is refused with ErrIncompatibleType.
func TestTypeMismatchRefused(t *testing.T) {
	t.Parallel()
	r := startRouter(t)
	pub := spawn(t, "typed publisher", "pub", sockArg(r), "-topic=typed", "-type=Point", "-type-size=16", "-type-align=8", "-hold")
	pub.expect("ready")
	sub := spawn(t, "mismatched subscriber", "sub", sockArg(r), "-topic=typed", "-type=Point3", "-type-size=24", "-type-align=8", "-expect-incompatible")
	out := sub.wait()
	require.NotEmpty(t, out)
	require.True(t, strings.HasPrefix(out[0], "incompatible "), "%q", out)
	pub.wait()
	r.requirePoolsFree(t)
}

// garbageScenario: while a publisher/subscriber pair is mid-stream, raw
// clients send garbage (as the first message, and after a valid Hello);
// each gets an Error{CodeProtocol} reply and is disconnected, and the
// pair keeps flowing.
func garbageScenario(t *testing.T, r *router, topic string) {
	const n = 4000
	sub := spawn(t, "subscriber", "sub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(n), "-qcap=64", "-policy=block")
	sub.expect("ready")
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(n), "-size=256", "-subs=1", "-pause-at="+strconv.Itoa(n/2))
	pub.expect("paused")

	t.Run("garbage-first", func(t *testing.T) {
		c := dialRaw(t, r.Socket)
		_, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		require.NoError(t, err)
		requireProtocolError(t, c)
		requireDisconnected(t, c)
	})
	t.Run("garbage-after-hello", func(t *testing.T) {
		c := dialRaw(t, r.Socket)
		hello, err := wire.Encode(1, &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, PID: int32(os.Getpid()), Name: "garbage"})
		require.NoError(t, err)
		_, err = c.Write(hello)
		require.NoError(t, err)
		env := readRaw(t, c)
		require.IsType(t, &wire.Welcome{}, env.Msg, "reply to Hello")
		_, err = c.Write([]byte{0xc1, 0xc1, 0xc1, 0x93})
		require.NoError(t, err)
		requireProtocolError(t, c)
		requireDisconnected(t, c)
	})

	pub.send("go")
	res := parsePubResult(t, pub.expect("result "))
	pub.wait()
	rep := parseSubReport(t, sub.wait())
	requireDelivered(t, res, rep, 1)
}

// TestGarbageClientDisconnected checks that a misbehaving raw client is
// answered and dropped without disturbing real clients.
func TestGarbageClientDisconnected(t *testing.T) {
	t.Parallel()
	r := startRouter(t)
	garbageScenario(t, r, "garbage")
	r.requirePoolsFree(t)
}

func dialRaw(t *testing.T, sock string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
	require.NoError(t, err, "dial %s", sock)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	return c
}

// readRaw reads and decodes one datagram, closing any fds that came with it.
func readRaw(t *testing.T, c *net.UnixConn) wire.Envelope {
	t.Helper()
	buf := make([]byte, wire.MaxMessageSize)
	oob := make([]byte, 1024)
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	require.NoError(t, err, "read reply")
	closeRights(t, oob[:oobn])
	env, err := wire.Decode(buf[:n])
	require.NoError(t, err, "decode reply")
	return env
}

func closeRights(t *testing.T, oob []byte) {
	t.Helper()
	if len(oob) == 0 {
		return
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	require.NoError(t, err)
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		require.NoError(t, err)
		for _, fd := range fds {
			_ = syscall.Close(fd)
		}
	}
}

func requireProtocolError(t *testing.T, c *net.UnixConn) {
	t.Helper()
	env := readRaw(t, c)
	e, ok := env.Msg.(*wire.Error)
	require.True(t, ok, "reply is %T, want *wire.Error", env.Msg)
	require.Equal(t, wire.CodeProtocol, e.Code, "error reply %q", e.Message)
	require.ErrorIs(t, e.Err(), parallax.ErrProtocol)
}

func requireDisconnected(t *testing.T, c *net.UnixConn) {
	t.Helper()
	n, err := c.Read(make([]byte, 64))
	if err == nil && n == 0 {
		err = io.EOF // a zero-length datagram read is EOF on SOCK_SEQPACKET
	}
	require.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "router kept the connection: read %d bytes, %v", n, err)
}

// TestDomainsIsolated: a publisher in domain A and a subscriber on the same
// topic in domain B never meet.
func TestDomainsIsolated(t *testing.T) {
	t.Parallel()
	a, b := startRouter(t), startRouter(t)
	require.NotEqual(t, a.Domain, b.Domain)
	require.NotEqual(t, a.Socket, b.Socket)
	subB := spawn(t, "subscriber in B", "sub", sockArg(b), "-topic=shared", "-gate", "-drain", "-lossy")
	subB.expect("ready")
	pubA := spawn(t, "publisher in A", "pub", sockArg(a), "-topic=shared", "-n=500", "-size=256", "-hold")
	res := parsePubResult(t, pubA.expect("result "))
	require.Zero(t, res.Subscribers, "publisher in A saw a subscriber")
	subB.send("go")
	rep := parseSubReport(t, subB.wait())
	require.Zero(t, rep.Total, "subscriber in B received domain A's samples")
	require.Zero(t, rep.Publishers, "subscriber in B saw a publisher")
	pubA.wait()
	a.requirePoolsFree(t)
	b.requirePoolsFree(t)
}

// zeroCopyScenario: the subscriber's sample bytes live in a mapping of
// the same memfd inode, at the same file offset, as the publisher's
// loaned chunk: nothing was copied.
func zeroCopyScenario(t *testing.T, r *router, topic string, size int) {
	const n = 8
	sub := spawn(t, "subscriber", "sub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(n), "-maps", "-qcap=16")
	sub.expect("ready")
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(n), "-size="+strconv.Itoa(size), "-subs=1", "-maps")
	pubMaps := parseMaps(t, pub.wait())
	rep := parseSubReport(t, sub.wait())
	require.Len(t, pubMaps, n)
	require.Len(t, rep.Maps, n)
	t.Logf("seq 1: publisher chunk at %s; subscriber sample at %s", pubMaps[1], rep.Maps[1])
	for seq := uint64(1); seq <= n; seq++ {
		pm, sm := strings.Fields(pubMaps[seq]), strings.Fields(rep.Maps[seq])
		require.GreaterOrEqual(t, len(pm), 4, "publisher mapping of seq %d: %q", seq, pubMaps[seq])
		require.GreaterOrEqual(t, len(sm), 4, "subscriber mapping of seq %d: %q", seq, rep.Maps[seq])
		require.Contains(t, pm[3], "memfd:parallax", "publisher's chunk of seq %d is not in a parallax memfd", seq)
		require.Equal(t, pm[:3], sm[:3], "seq %d: publisher (dev inode offset) %v, subscriber %v", seq, pm[:3], sm[:3])
	}
}

// TestZeroCopySameMemfd checks zero copy across processes for a few pool
// sizes.
func TestZeroCopySameMemfd(t *testing.T) {
	t.Parallel()
	r := startRouter(t)
	for _, size := range []int{200, 4000, 60000, 1 << 20} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			zeroCopyScenario(t, r, fmt.Sprintf("zc%d", size), size)
		})
	}
	r.requirePoolsFree(t)
}

// TestZeroCopyHugepages is the zero-copy check with the payload on 2 MiB
// hugepages (required, no fallback): both processes map the same hugetlb
// memfd at the same offset. In the shared model (deleted in step 14) the
// router-wide pools are on hugepages, in the owned model every publisher
// data segment ([publishers] hugepages = "always").
func TestZeroCopyHugepages(t *testing.T) {
	testutil.MustHaveHugepages(t, 4)
	t.Parallel()
	for _, m := range []struct{ name, config string }{
		{"owned", `
[publishers]
hugepages = "always"
`},
	} {
		t.Run(m.name, func(t *testing.T) {
			r := startRouterWith(t, m.config)
			for _, size := range []int{4000, 60000} {
				t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
					zeroCopyScenario(t, r, fmt.Sprintf("zc%d", size), size)
				})
			}
			r.requirePoolsFree(t)
		})
	}
}

// TestInProcessRouterPoolsFree runs the scenarios, with children as
// clients, against an in-process router and audits its memory after each:
// in the shared model (deleted in step 14) every pool chunk must be back,
// consistently free; in the owned model no publisher segment may be left.
func TestInProcessRouterPoolsFree(t *testing.T) {
	t.Parallel()
	for _, m := range []struct{ name, config string }{{"owned", ownedConfig}} {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			inProcessScenarios(t, startInProcessRouter(t, m.config))
		})
	}
}

func inProcessScenarios(t *testing.T, r *router) {
	check := func(name string, fn func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			fn(t)
			r.requirePoolsFree(t)
		})
	}
	check("stream", func(t *testing.T) { streamScenario(t, r, "stream", 1024, 64<<10) })
	check("fanout", func(t *testing.T) { fanOutScenario(t, r, "fanout", 4, 500, 4096) })
	check("fanin", func(t *testing.T) { fanInScenario(t, r, "fanin", 3, 500, 256) })
	check("history", func(t *testing.T) { historyScenario(t, r, "history", 16, 100) })
	check("discard", func(t *testing.T) { discardScenario(t, r, "discard", 8, 500) })
	check("garbage", func(t *testing.T) { garbageScenario(t, r, "garbage") })
	check("zerocopy", func(t *testing.T) { zeroCopyScenario(t, r, "zc", 4000) })
}
