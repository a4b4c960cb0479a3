package roudi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/internal/wire"
)

func init() { serverChildRoles["idle-client"] = idleClientChild }

// idleClientChild dials the router at args[0] as an ordinary client, prints
// "ready" and stays until stdin closes or it is killed.
func idleClientChild(args []string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: args[0], Name: "idle"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return 1
	}
	defer c.Close()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// outqConfig lifts the rate limit so that the non-readers below are cut for
// not reading, not for flooding.
const outqConfig = `
[[pools]]
chunk_size = "256B"
count = 64
hugepages = "never"
[limits]
max_connections = 64
max_subscribers = 32
max_requests_per_second = 1000000
request_burst = 1000000
`

// dialNonReader connects to the router and completes the handshake by hand.
func dialNonReader(t testing.TB, sock string) *discovery.Conn {
	t.Helper()
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
	require.NoError(t, err)
	fc := discovery.NewConn(uc)
	t.Cleanup(func() { fc.Close() })
	require.NoError(t, fc.Send(1, &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, PID: int32(os.Getpid()), Name: "non-reader"}, nil))
	env, files, err := fc.Recv()
	require.NoError(t, err)
	closeFiles(files)
	require.IsType(t, &wire.Welcome{}, env.Msg)
	return fc
}

// startIdleClient starts a client process and waits until the router has
// registered it.
func startIdleClient(t testing.TB, srv *Server) *exec.Cmd {
	t.Helper()
	cmd := testutil.ChildCommand(t, "idle-client", nil, srv.SocketPath())
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
	return cmd
}

// TestServerNonReadersDoNotStallOthers: eight clients send requests and
// never read their replies. Another client's request is still answered,
// a client process that dies meanwhile is reclaimed, and the non-readers
// are cut (EOF on their sockets) and counted.
func TestServerNonReadersDoNotStallOthers(t *testing.T) {
	t.Parallel()
	reclaims := make(chan Reclaim, 64)
	srv := startServerConfig(t, outqConfig, Options{OnReclaim: func(r Reclaim) {
		select {
		case reclaims <- r:
		default:
		}
	}})
	ctx := context.Background()
	honest, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: "honest"})
	require.NoError(t, err)
	defer honest.Close()
	child := startIdleClient(t, srv)
	pid := int32(child.Process.Pid)
	waitFor(t, "the child to be registered", func() bool { return hasClient(t, srv, pid) })

	// The non-readers send Pings and never read the Pongs, until the
	// router cuts them (their sends then fail). The kernel buffers a few
	// hundred replies per socket; after that the router must either wait
	// for them or cut them.
	const nonReaders, maxRequests = 8, 1_000_000
	var flood sync.WaitGroup
	conns := make([]*discovery.Conn, nonReaders)
	sent := make([]int, nonReaders)
	for i := range conns {
		conns[i] = dialNonReader(t, srv.SocketPath())
	}
	began := time.Now()
	for i := range conns {
		flood.Go(func() {
			for id := uint32(2); id < 2+maxRequests; id++ {
				if conns[i].Send(id, &wire.Ping{}, nil) != nil {
					return // cut
				}
				sent[i]++
			}
		})
	}
	flooding := make(chan struct{})
	go func() { flood.Wait(); close(flooding) }()

	// These bounds are for correctness, not performance. The router used
	// to wait up to 2 s for each non-reader in turn, serving nobody
	// meanwhile: the flood lasted about 16 s. Now each non-reader is cut on
	// its own (its queue overflows within a few thousand requests, or its
	// writer times out after 2 s, in parallel), and the honest client is
	// served throughout.
	const floodBound, bound = 8 * time.Second, 3 * time.Second
	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	var pings int
	var worst time.Duration
	for done := false; !done || pings == 0; {
		select {
		case <-flooding:
			done = true
		default:
		}
		require.Less(t, time.Since(began), floodBound, "the non-readers must be cut independently, not one after another (%d honest pings so far, slowest %v)", pings, worst)
		pctx, cancel := context.WithTimeout(ctx, bound)
		start := time.Now()
		_, _, err = honest.Request(pctx, &wire.Ping{}, nil)
		cancel()
		require.NoError(t, err, "another client's pings must be answered during the flood (ping %d after %v)", pings, time.Since(began))
		worst = max(worst, time.Since(start))
		pings++
	}
	t.Logf("flood over after %v: %d honest pings meanwhile, slowest %v; non-readers sent %v requests before they were cut",
		time.Since(began), pings, worst, sent)
	deadline := time.After(bound)
	for done := false; !done; {
		select {
		case r := <-reclaims:
			if done = r.PID == pid; done {
				t.Logf("dead client reclaimed %v after the kill", r.Done.Sub(killed))
			}
		case <-deadline:
			t.Fatal("a client that died during the flood must be reclaimed")
		}
	}

	// Every non-reader was cut: it reads what the kernel had buffered,
	// then the end of the connection.
	for i, fc := range conns {
		var n int
		for {
			_, files, err := fc.Recv()
			closeFiles(files)
			if err != nil {
				// ECONNRESET when the router closed with requests
				// of it still unread.
				require.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "non-reader %d after %d replies: %v", i, n, err)
				break
			}
			n++
		}
		require.Less(t, n, sent[i], "non-reader %d got every reply: it was not cut", i)
	}
	waitFor(t, "the non-readers to leave the registry", func() bool {
		snap, err := srv.Snapshot(ctx)
		require.NoError(t, err)
		return len(snap.Clients) == 1 // the honest client
	})
	require.Equal(t, uint64(nonReaders), srv.GuardStats().StalledDisconnects)
	require.Zero(t, srv.GuardStats().FloodDisconnects)

	// The honest client was never affected.
	_, _, err = honest.Request(ctx10(t), &wire.Ping{}, nil)
	require.NoError(t, err)
	require.NoError(t, honest.Close())
}
