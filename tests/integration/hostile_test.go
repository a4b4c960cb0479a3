//go:build integration

package integration

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Hostile children (see the roudi package's trust model in server_guard.go):
//
//	flood:        handshakes by hand, then sends Pings as fast as it can
//	              without reading; prints "disconnected <sent>" when the
//	              router has closed the connection.
func init() {
	childRoles["flood"] = floodMain
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
