package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// TestConnectionsTraffic: `parallax connections` (and the connection table
// of `parallax clients`) shows per connection what its publisher reported:
// delivered, dropped and returned, in the table and in -json. A slow
// discard-oldest subscriber (queue 4, takes 3 at the end) and a fast
// block-producer one (takes and releases every sample) get different rows.
func TestConnectionsTraffic(t *testing.T) {
	const n = 12
	srv := routertest.Start(t, routertest.Owned)
	sock := sockFlag(srv.SocketPath())
	ctx := t.Context()
	slow, err := subscriber.New(ctx, "cli/traffic", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 4, Policy: parallax.DiscardOldest})
	require.NoError(t, err)
	defer slow.Close()
	fast, err := subscriber.New(ctx, "cli/traffic", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 8, Policy: parallax.BlockProducer})
	require.NoError(t, err)
	defer fast.Close()
	pub, err := publisher.New(ctx, "cli/traffic", publisher.Options{Socket: srv.SocketPath(), MaxPayload: 64, ExpectedSubscribers: 2})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 2))
	for range n {
		require.NoError(t, pub.Send([]byte("traffic")))
		s, err := fast.Take(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Release())
	}
	for range 3 {
		s, err := slow.Take(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Release())
	}

	want := map[uint32][3]uint64{slow.ID(): {n, n - 4, 3}, fast.ID(): {n, 0, n}}
	var js string
	var v view
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		code, o, errs := runCLI(t, "", "connections", "-json", sock)
		require.Equal(t, exitOK, code, errs)
		js = o
		v = view{}
		require.NoError(t, json.Unmarshal([]byte(js), &v), js)
		got := map[uint32][3]uint64{}
		for _, c := range v.Connections {
			if c.Reported {
				got[c.SubID] = [3]uint64{c.Delivered, c.Dropped, c.Returned}
			}
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		require.True(t, time.Now().Before(deadline), "connections -json never showed %v:\n%s", want, js)
		<-tick.C
	}
	require.Len(t, v.Connections, 2, js)
	require.Empty(t, v.Processes, "connections lists connections only")
	for _, c := range v.Connections {
		require.Equal(t, pub.ID(), c.PubID)
	}
	require.Contains(t, js, `"Returned": 3`)

	code, out, errs := runCLI(t, "", "connections", sock)
	require.Equal(t, exitOK, code, errs)
	require.Regexp(t, `(?m)^CONN\s+TOPIC\s+PUB\s+PUB PID\s+SUB\s+SUB PID\s+CAPACITY\s+POLICY\s+DELIVERED\s+DROPPED\s+RETURNED$`, out)
	rowRe := func(sub uint32, capacity int, policy string, w [3]uint64) *regexp.Regexp {
		return regexp.MustCompile(fmt.Sprintf(`(?m)^\d+\s+cli/traffic\s+%d\s+\d+\s+%d\s+\d+\s+%d\s+%s\s+%d\s+%d\s+%d$`,
			pub.ID(), sub, capacity, regexp.QuoteMeta(policy), w[0], w[1], w[2]))
	}
	require.Regexp(t, rowRe(slow.ID(), 4, parallax.DiscardOldest.String(), want[slow.ID()]), out)
	require.Regexp(t, rowRe(fast.ID(), 8, parallax.BlockProducer.String(), want[fast.ID()]), out)

	code, out, errs = runCLI(t, "", "clients", sock)
	require.Equal(t, exitOK, code, errs)
	require.Regexp(t, rowRe(slow.ID(), 4, parallax.DiscardOldest.String(), want[slow.ID()]), out, "clients shows the same rows")
}
