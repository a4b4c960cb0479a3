package roudi_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/wire"
)

const floodConfig = routertest.Small + `
max_requests_per_second = 1000
request_burst = 100
`

// TestGuardFlood: a client sending Pings as fast as it can, never reading
// the replies, is refused with ErrLimit and disconnected; a publisher and
// subscriber pair and another client's requests keep being served.
func TestGuardFlood(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, floodConfig)
	ctx := ctx10s(t)
	const topic = "guard/flood"
	sub, pub := newPair(t, ctx, srv, topic)

	fc := rawConn(t, srv)
	var limited atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			env, files, err := fc.Recv()
			for _, f := range files {
				f.Close()
			}
			if err != nil {
				return
			}
			if e, ok := env.Msg.(*wire.Error); ok && errors.Is(e.Err(), parallax.ErrLimit) {
				limited.Add(1)
			}
		}
	}()
	floodDone := make(chan int)
	go func() {
		n := 0
		for id := uint32(2); ; id++ {
			if fc.Send(id, &wire.Ping{}, nil) != nil {
				floodDone <- n
				return
			}
			n++
		}
	}()

	// Meanwhile the honest pair and another client keep going.
	other, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: "other"})
	require.NoError(t, err)
	defer other.Close()
	var sent int
	var worst time.Duration
	for i := 0; i < 50; i++ {
		require.NoError(t, pub.Send(fmt.Appendf(nil, "m%d", i)))
		expectTake(t, sub, fmt.Sprintf("m%d", i))
		start := time.Now()
		_, _, err = other.Request(ctx, &wire.Ping{}, nil)
		require.NoError(t, err, "another client is served during the flood")
		worst = max(worst, time.Since(start))
		sent++
	}
	var flooded int
	select {
	case flooded = <-floodDone:
	case <-ctx.Done():
		t.Fatalf("flooder not disconnected; guard stats %+v", srv.GuardStats())
	}
	<-readDone
	fc.Close()
	st := srv.GuardStats()
	t.Logf("flooder sent %d pings, %d refused with ErrLimit (router refused %d); honest pair exchanged %d samples; worst ping of another client %v",
		flooded, limited.Load(), st.RateLimited, sent, worst)
	// The router refuses the excess with ErrLimit replies; how many the
	// flooder reads before it is cut off depends on timing (it may be cut
	// off with the replies still in flight), so the router's count is the
	// assertion and the flooder's is logged above.
	require.Positive(t, st.RateLimited, "the router refused the flooder's excess requests")
	require.GreaterOrEqual(t, st.FloodDisconnects, uint64(1))
	closeAllAndAudit(t, srv, other, pub, sub)
}

// TestGuardGarbageMessages: datagrams that are not protocol messages end
// the connection; the router keeps serving.
func TestGuardGarbageMessages(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	fc := rawConn(t, srv)
	uc := fc.UnixConn()
	for i := range 100 {
		if _, err := uc.Write([]byte{0xc1, byte(i), 0xff, 0x00, 0x13}); err != nil {
			break // the router closed us already
		}
	}
	for {
		_, files, err := fc.Recv()
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			break // closed by the router
		}
	}
	fc.Close()
	requireAliveAndFree(t, srv)
}
