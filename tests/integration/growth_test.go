//go:build integration

package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
)

// growthConfig: an 8-chunk 4 KiB class that may grow twice (24 chunks),
// and dedicated segments up to 4 MiB in all for loans above 4 KiB.
//
// Shared model: deleted in step 14. Every test of this file grows
// router-wide pools or adds dedicated pool segments, which only the shared
// model has. Owned-model counterparts: owned_grow_test.go
// (TestOwnedFrames8MiB) and the subscriber package's owned_grow_test.go.
const growthConfig = `
[[pools]]
chunk_size = "256B"
count = 64
hugepages = "never"
[[pools]]
chunk_size = "4KiB"
count = 8
hugepages = "never"
[growth]
enabled = true
max_segments_per_pool = 2
max_total_bytes = "8MiB"
max_dedicated_bytes = "4MiB"
[limits]
max_queue_capacity = 4096
[memory]
model = "shared"
`

// startGrowthRouter runs an in-process router (its pools are audited) with
// growthConfig.
func startGrowthRouter(t *testing.T) *router {
	t.Helper()
	srv := routertest.Start(t, growthConfig)
	return &router{Socket: srv.SocketPath(), Domain: srv.Config().Domain, srv: srv}
}

// requireGrowthPoolsFree is requirePoolsFree that knows retired dedicated
// pools (their tombstone chunk is no leak) and returns how many it saw.
func requireGrowthPoolsFree(t *testing.T, r *router) (retired int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var bad []string
		retired = 0
		for _, p := range r.srv.Pools().Pools() {
			if r.srv.RetiredPool(p.ID()) {
				retired++
			} else if a := p.Audit(); !a.AllFree() {
				bad = append(bad, fmt.Sprintf("pool %d: %v", p.ID(), a))
			}
		}
		if len(bad) == 0 {
			return retired
		}
		if time.Now().After(deadline) {
			t.Fatalf("router pools not all free after the clients left:\n%s", strings.Join(bad, "\n"))
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestGrowthAcrossProcesses: a subscriber process that joined before any
// growth holds back while a publisher process publishes three times what
// its class holds; the router grows the class twice, and the subscriber
// maps the new segments when it first meets their refs and verifies every
// byte. All pools are free at the end.
func TestGrowthAcrossProcesses(t *testing.T) {
	t.Parallel()
	r := startGrowthRouter(t)
	const n = 24
	sub := spawn(t, "subscriber", "sub", sockArg(r), "-topic=grow", "-n="+strconv.Itoa(n), "-qcap=64", "-policy=block", "-wait-pubs=1", "-gate")
	sub.expect("ready")
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic=grow", "-n="+strconv.Itoa(n), "-size=4000", "-subs=1", "-hold")
	sub.expect("connected")
	res := parsePubResult(t, pub.expect("result "))
	require.Len(t, r.srv.Pools().Pools(), 4, "the 4 KiB class grew twice")
	sub.send("go")
	rep := parseSubReport(t, sub.wait())
	require.Equal(t, uint64(n), rep.Total)
	requireDelivered(t, res, rep, 1)
	require.NoError(t, pub.stdin.Close())
	pub.wait()
	require.Zero(t, requireGrowthPoolsFree(t, r))
}

// TestDedicatedAcrossProcesses: loans larger than every class get dedicated
// segments, published to a subscriber in another process, which maps each
// on first sight; each is retired once the subscriber released it.
func TestDedicatedAcrossProcesses(t *testing.T) {
	t.Parallel()
	r := startGrowthRouter(t)
	const n = 3
	sub := spawn(t, "subscriber", "sub", sockArg(r), "-topic=big", "-n="+strconv.Itoa(n), "-qcap=8", "-policy=block")
	sub.expect("ready")
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic=big", "-n="+strconv.Itoa(n), "-size="+strconv.Itoa(768<<10), "-subs=1")
	res := parsePubResult(t, pub.expect("result "))
	pub.wait()
	rep := parseSubReport(t, sub.wait())
	require.Equal(t, uint64(n), rep.Total)
	requireDelivered(t, res, rep, 1)
	// A later loan may reuse a dedicated chunk released before the router
	// retired it: there are 1 to n dedicated pools (ids from 2+2*2 up).
	dedicated := func() (n int) {
		for _, p := range r.srv.Pools().Pools() {
			if p.ID() >= 6 {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return requireGrowthPoolsFree(t, r) == dedicated() }, 10*time.Second, 5*time.Millisecond,
		"every dedicated segment retired")
	require.GreaterOrEqual(t, dedicated(), 1)
}
