//go:build integration

package integration

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
)

// TestOwnedUndersizedAcrossProcesses: a publisher process that declared
// no payload size streams 64-byte samples to a subscriber process; after
// the first samples the router lists a 64-byte segment of the publisher
// (its undersized class, design §8.23), and the subscriber, which needs
// nothing new for it (it maps a publisher's new segments as they come),
// receives every sample intact before and after the switch.
func TestOwnedUndersizedAcrossProcesses(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, testConfig)
	r := &router{Socket: srv.SocketPath(), Domain: srv.Config().Domain, srv: srv}
	const n, pause = 1000, 200
	sub := spawn(t, "subscriber", "sub", sockArg(r), "-topic=small", "-n="+strconv.Itoa(n), "-qcap=64", "-policy=block")
	sub.expect("ready")
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic=small", "-n="+strconv.Itoa(n), "-size=64", "-subs=1",
		"-pause-at="+strconv.Itoa(pause), "-hold")
	pub.expect("paused")
	deadline := time.Now().Add(30 * time.Second)
	for {
		in, err := srv.Introspect(t.Context())
		require.NoError(t, err)
		small := false
		for _, s := range in.PublisherSegments {
			small = small || s.Topic == "small" && s.Index > 0 && s.ChunkSize == 64
		}
		if small {
			break
		}
		require.True(t, time.Now().Before(deadline), "no 64-byte segment of the publisher: %+v", in.PublisherSegments)
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	pub.send("go")
	res := parsePubResult(t, pub.expect("result "))
	rep := parseSubReport(t, sub.wait())
	pub.wait()
	require.Equal(t, uint64(n), rep.Total)
	require.Len(t, rep.Pubs, 1)
	requireDelivered(t, res, rep, 1)
	require.Zero(t, rep.Dropped)
}
