//go:build integration

package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/segment"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Hostile children (see the roudi package's trust model in server_guard.go):
//
//	hostile-ring: creates a publisher with a raw control client, maps the
//	              management segment, writes -n garbage refs (and one raw
//	              zero) into its ring, prints "pushed <n>", then waits for
//	              the router to close its control connection and prints
//	              "disconnected".
//	flood:        handshakes by hand, then sends Pings as fast as it can
//	              without reading; prints "disconnected <sent>" when the
//	              router has closed the connection.
func init() {
	childRoles["hostile-ring"] = hostileRingMain
	childRoles["flood"] = floodMain
}

func hostileRingMain(args []string) int {
	fs := flag.NewFlagSet("hostile-ring", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	topic := fs.String("topic", "", "topic")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: *socket, Name: "hostile-ring"})
	if err != nil {
		return childFail("hostile-ring", "dial: %v", err)
	}
	defer c.Close()
	added := make(chan *wire.ConnectionAdded, 8)
	c.OnPush(func(m wire.Message, files []*os.File) {
		for _, f := range files {
			f.Close()
		}
		if a, ok := m.(*wire.ConnectionAdded); ok {
			select {
			case added <- a:
			default:
			}
		}
	})
	if _, _, err := c.Request(ctx, &wire.CreatePublisher{Topic: *topic}, nil); err != nil {
		return childFail("hostile-ring", "create publisher: %v", err)
	}
	var a *wire.ConnectionAdded
	select {
	case a = <-added:
	case <-ctx.Done():
		return childFail("hostile-ring", "no subscriber connected")
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", c.Mgmt().Fd()), os.O_RDWR, 0)
	if err != nil {
		return childFail("hostile-ring", "reopen management segment: %v", err)
	}
	mgmt, err := segment.Open(f, segment.OpenOptions{})
	if err != nil {
		f.Close()
		return childFail("hostile-ring", "map management segment: %v", err)
	}
	defer mgmt.Close()
	ringMem := mgmt.Bytes()[a.RingOffset : a.RingOffset+a.RingSize]
	ring, err := ringbuf.Attach(ringMem)
	if err != nil {
		return childFail("hostile-ring", "attach ring: %v", err)
	}
	garbage := []parallax.ChunkRef{
		parallax.MakeRef(999, 0, 1), parallax.MakeRef(0, parallax.MaxSlots-1, 1),
		parallax.MakeRef(0, 3, 77), parallax.ChunkRef(^uint64(0)), parallax.MakeRef(998, 0, 1),
	}
	for _, g := range garbage {
		if _, err := ring.TryPush(g); err != nil {
			return childFail("hostile-ring", "push: %v", err)
		}
	}
	// The last one becomes a raw zero before anyone looks (the test waits
	// for "pushed" before letting the subscriber take).
	slot := (ring.Tail() - 1) & uint32(ring.Cap()-1)
	binary.LittleEndian.PutUint64(ringMem[ringbuf.HeaderSize+8*int(slot):], 0)
	fmt.Printf("pushed %d\n", len(garbage))
	select {
	case <-c.Done():
		fmt.Println("disconnected")
		return 0
	case <-ctx.Done():
		return childFail("hostile-ring", "never disconnected")
	}
}

func floodMain(args []string) int {
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: *socket, Net: "unixpacket"})
	if err != nil {
		return childFail("flood", "dial: %v", err)
	}
	fc := discovery.NewConn(uc)
	defer fc.Close()
	if err := fc.Send(1, &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, PID: int32(os.Getpid()), Name: "flood"}, nil); err != nil {
		return childFail("flood", "hello: %v", err)
	}
	_, files, err := fc.Recv()
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		return childFail("flood", "welcome: %v", err)
	}
	fmt.Println("ready")
	// Drain replies so that only the rate limit, not a full socket buffer,
	// decides when the router gives up.
	go func() {
		for {
			_, files, err := fc.Recv()
			for _, f := range files {
				f.Close()
			}
			if err != nil {
				return
			}
		}
	}()
	sent := 0
	deadline := time.Now().Add(time.Minute)
	for id := uint32(2); time.Now().Before(deadline); id++ {
		if err := fc.Send(id, &wire.Ping{}, nil); err != nil {
			fmt.Printf("disconnected %d\n", sent)
			return 0
		}
		sent++
	}
	return childFail("flood", "still connected after %d pings", sent)
}

// TestHostileRingWriter: a separate process writes garbage into its ring.
// The subscriber gets an error per garbage entry and keeps receiving the
// honest publisher; the router, told by the subscriber, disconnects the
// hostile process; the pools end 100% free.
//
// Shared model: deleted in step 14 (a hostile writer of arena rings; the
// pools audited). Owned-model counterpart: TestOwnedHostileCut
// (hostile_owned_test.go).
func TestHostileRingWriter(t *testing.T) {
	t.Parallel()
	r := startInProcessRouter(t, sharedConfig)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const topic = "hostile/ring"
	sub, err := subscriber.New(ctx, topic, subscriber.Options{Socket: r.Socket})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, topic, publisher.Options{Socket: r.Socket})
	require.NoError(t, err)
	defer pub.Close()

	h := spawn(t, "hostile", "hostile-ring", sockArg(r), "-topic="+topic)
	n := int(atoi(t, h.expect("pushed ")[0]))
	require.NoError(t, sub.WaitForPublishers(ctx, 2))
	const honest = 50
	for i := range honest {
		require.NoError(t, pub.Send(fmt.Appendf(nil, "honest %d", i)))
	}
	// Every garbage entry surfaces as exactly one error, whether it is
	// taken from the live ring or, once the router has cut the offender
	// off, from the subscriber's backlog of the removed connection.
	var got, bad int
	for got < honest || bad < n {
		x, err := sub.TakeTimeout(10 * time.Second)
		if err != nil {
			require.False(t, errors.Is(err, parallax.ErrTimeout), "take timed out after %d samples, %d errors", got, bad)
			require.True(t, errors.Is(err, parallax.ErrInvalidRef) || errors.Is(err, parallax.ErrStaleRef) || errors.Is(err, parallax.ErrNotHeld), "unexpected: %v", err)
			bad++
			continue
		}
		require.Equal(t, fmt.Sprintf("honest %d", got), string(x.Bytes()))
		require.NoError(t, x.Release())
		got++
	}
	require.Equal(t, n, bad, "one error per garbage entry")
	h.expect("disconnected")
	h.wait()
	require.Equal(t, uint64(1), r.srv.GuardStats().ReportDisconnects)

	require.NoError(t, pub.Send([]byte("after")))
	x, err := sub.TakeTimeout(10 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "after", string(x.Bytes()))
	require.NoError(t, x.Release())
	require.NoError(t, pub.Close())
	require.NoError(t, sub.Close())
	requireRouterAlive(t, r)
	r.requirePoolsFree(t)
}

// TestHostileFlood: a process flooding the control socket with Pings is
// refused and disconnected by the real router while a publisher and a
// subscriber (separate processes) keep streaming and another client is
// served.
func TestHostileFlood(t *testing.T) {
	t.Parallel()
	r := startRouterWith(t, testConfig+"max_requests_per_second = 1000\nrequest_burst = 100\n")
	const topic = "hostile/flood"
	const n = 2000
	sub := spawn(t, "sub", "sub", sockArg(r), "-topic="+topic, fmt.Sprintf("-n=%d", n), "-qcap=64", "-policy=block")
	sub.expect("ready")
	f := spawn(t, "flood", "flood", sockArg(r))
	f.expect("ready")
	pub := spawn(t, "pub", "pub", sockArg(r), "-topic="+topic, fmt.Sprintf("-n=%d", n), "-size=1024", "-subs=1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	other, err := discovery.Dial(ctx, discovery.DialOptions{Socket: r.Socket, Name: "other"})
	require.NoError(t, err)
	for range 20 {
		_, _, err := other.Request(ctx, &wire.Ping{}, nil)
		require.NoError(t, err, "another client is served during the flood")
	}
	require.NoError(t, other.Close())
	sent := atoi(t, f.expect("disconnected ")[0])
	t.Logf("flooder sent %d pings before the router dropped it", sent)
	f.wait()
	res := parsePubResult(t, pub.expect("result "))
	pub.wait()
	rep := parseSubReport(t, sub.wait())
	requireDelivered(t, res, rep, 1)
	requireRouterAlive(t, r)
	r.requirePoolsFree(t)
}

// requireRouterAlive checks that the router still accepts and answers.
func requireRouterAlive(t *testing.T, r *router) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: r.Socket, Name: "probe"})
	require.NoError(t, err, "router must still accept clients")
	_, _, err = c.Request(ctx, &wire.Ping{}, nil)
	require.NoError(t, err, "router must still answer")
	require.NoError(t, c.Close())
}
