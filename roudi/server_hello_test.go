package roudi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// stallOnConnect is a log handler that runs onConnect, on the router's
// Serve goroutine, when the first "client connected" record is logged.
type stallOnConnect struct {
	slog.Handler
	once      *sync.Once
	onConnect func()
}

func (h stallOnConnect) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "client connected" {
		h.once.Do(h.onConnect)
	}
	return h.Handler.Handle(ctx, r)
}

// TestHelloInTimeSurvivesStalledRouter: a connection whose Hello reaches
// the router within the handshake deadline is welcomed even when the
// router gets to the Hello only after that deadline, its Serve goroutine
// having stalled in between (on a loaded machine: descheduled, a GC
// pause). The router used to judge the deadline when it handled the
// Hello, and closed such a connection without a reply: the client's
// handshake failed with EOF (TestOwnedMissedSegmentRecovered in CI).
func TestHelloInTimeSurvivesStalledRouter(t *testing.T) {
	t.Parallel()
	const tick = time.Millisecond          // the core's own deadline was 50 ticks
	lateC := make(chan *discovery.Conn, 1) // accepted first, its Hello sent during the stall
	sent := make(chan error, 1)
	stall := stallOnConnect{
		Handler: slog.NewTextHandler(io.Discard, nil),
		once:    &sync.Once{},
		onConnect: func() {
			sent <- (<-lateC).Send(1, &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, PID: int32(os.Getpid()), Name: "late"}, nil)
			// The stall under test (not a wait for a condition): the
			// Serve goroutine does nothing for 300 ticks, well past 50,
			// far within the 5 s a client has to send its Hello.
			time.Sleep(300 * tick)
		},
	}
	srv := startServerConfig(t, testPools, Options{Logger: slog.New(stall), TickInterval: tick})

	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: srv.SocketPath(), Net: "unixpacket"})
	require.NoError(t, err)
	late := discovery.NewConn(uc)
	defer late.Close()
	lateC <- late
	// Accepted after late (the router accepts in order, one at a time):
	// its handshake's log line stalls the router with late accepted.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer first.Close()
	require.NoError(t, <-sent)

	require.NoError(t, uc.SetReadDeadline(time.Now().Add(20*time.Second)))
	env, files, err := late.Recv()
	require.NoError(t, err, "the router closed a connection whose Hello came in time")
	for _, f := range files {
		f.Close()
	}
	require.IsType(t, &wire.Welcome{}, env.Msg)
}
