//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

// ownedConfig is testConfig in the owned memory model: every publisher and
// subscriber runs on its own data segments and per-connection segments
// (docs/design/memory-ownership.md). Publishers' chunks default to 4 KiB.
const ownedConfig = testConfig + `
[memory]
model = "owned"
`

// TestOwnedScenarios runs the cross-process pub/sub scenarios against a
// router in the owned memory model, children as clients: integrity and
// order (stream, fan-out to several subscribers, fan-in), a typed topic,
// history for a late joiner, discard-oldest drops counted, block-producer
// lossless, garbage clients, zero copy (the subscriber's bytes live in the
// publisher's memfd at the same offset).
func TestOwnedScenarios(t *testing.T) {
	t.Parallel()
	r := startRouterWith(t, ownedConfig)
	t.Run("stream", func(t *testing.T) { streamScenario(t, r, "stream", 1024, 64<<10, "-max-payload=65536") })
	t.Run("fanout", func(t *testing.T) { fanOutScenario(t, r, "fanout", 4, 2000, 4096) })
	t.Run("fanin", func(t *testing.T) { fanInScenario(t, r, "fanin", 3, 2000, 256) })
	t.Run("typed", func(t *testing.T) { typedScenario(t, r, "typed", 3000) })
	t.Run("history", func(t *testing.T) { historyScenario(t, r, "history", 16, 100) })
	t.Run("discard", func(t *testing.T) { discardScenario(t, r, "discard", 8, 2000) })
	t.Run("garbage", func(t *testing.T) { garbageScenario(t, r, "garbage") })
	for _, size := range []int{200, 4000} {
		t.Run(fmt.Sprintf("zerocopy/size=%d", size), func(t *testing.T) {
			zeroCopyScenario(t, r, fmt.Sprintf("zc%d", size), size)
		})
	}
}

// typedScenario streams n samples of a fixed-size type (64 bytes, align
// 8) from one process to another; both sides declare the type.
func typedScenario(t *testing.T, r *router, topic string, n int) {
	typ := []string{"-type=integration.Rec", "-type-size=64", "-type-align=8"}
	sub := spawn(t, "typed subscriber", "sub", append([]string{sockArg(r), "-topic=" + topic, "-n=" + strconv.Itoa(n), "-qcap=32", "-policy=block"}, typ...)...)
	sub.expect("ready")
	pub := spawn(t, "typed publisher", "pub", append([]string{sockArg(r), "-topic=" + topic, "-n=" + strconv.Itoa(n), "-size=64", "-subs=1"}, typ...)...)
	res := parsePubResult(t, pub.expect("result "))
	pub.wait()
	rep := parseSubReport(t, sub.wait())
	require.Equal(t, uint64(n), rep.Total)
	requireDelivered(t, res, rep, 1)
	require.Zero(t, rep.Dropped)
}

// memStats is a publisher child's "mem" line.
type memStats struct {
	Chunks, Free, InUse, Outstanding, Subscribers, Reclaimed, Loans uint64
}

func (p *proc) memStats(t *testing.T) memStats {
	t.Helper()
	p.send("stats")
	f := p.expect("mem ")
	require.Len(t, f, 7, "mem line %q", f)
	return memStats{atoi(t, f[0]), atoi(t, f[1]), atoi(t, f[2]), atoi(t, f[3]), atoi(t, f[4]), atoi(t, f[5]), atoi(t, f[6])}
}

// TestOwnedKilledSubscriberChunksBack: a subscriber process SIGKILLed while
// it holds samples (and has more queued), with another subscriber process
// attached to the same publisher, costs the publisher nothing: once the
// router reports the death, the publisher's own accounting shows every
// chunk back, exactly (free == chunks, nothing outstanding), while the
// other subscriber stays connected.
func TestOwnedKilledSubscriberChunksBack(t *testing.T) {
	t.Parallel()
	r := startRouterWith(t, ownedConfig)
	const n, keep = 40, 10
	victim := spawn(t, "victim subscriber", "sub", sockArg(r), "-topic=kill", "-n="+strconv.Itoa(n/2), "-keep="+strconv.Itoa(keep), "-qcap=64", "-policy=block")
	victim.expect("ready")
	other := spawn(t, "other subscriber", "sub", sockArg(r), "-topic=kill", "-n="+strconv.Itoa(n), "-qcap=64", "-policy=block", "-keep=1")
	other.expect("ready")
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic=kill", "-n="+strconv.Itoa(n), "-size=512", "-subs=2", "-stats")
	res := parsePubResult(t, pub.expect("result "))
	require.Equal(t, 2, res.Subscribers)
	require.Equal(t, []string{strconv.Itoa(keep)}, victim.expect("holding "))
	require.Equal(t, []string{"1"}, other.expect("holding "))

	before := pub.memStats(t)
	// The victim holds keep samples and has n/2 queued that it never took;
	// the other holds 1.
	require.GreaterOrEqual(t, before.Outstanding, uint64(keep+n/2+1), "before the kill: %+v", before)

	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
	require.Error(t, victim.waitErr(), "the victim was killed")

	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var after memStats
	for {
		after = pub.memStats(t)
		if after.Subscribers == 1 && after.Outstanding == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the publisher never took the dead subscriber's chunks back: %+v", after)
		<-tick.C
	}
	require.Equal(t, after.Chunks-1, after.Free, "every chunk but the other subscriber's held one is free: %+v", after)
	require.Equal(t, uint64(1), after.InUse, "%+v", after)
	require.GreaterOrEqual(t, after.Reclaimed, uint64(keep+n/2), "reclaimed from the dead connection: %+v", after)

	// The other subscriber lets go: now everything is back.
	rep := parseSubReport(t, other.wait()) // closes its stdin: it releases its sample and reports
	requireDelivered(t, res, rep, 1)
	for {
		after = pub.memStats(t)
		if after.Free == after.Chunks {
			break
		}
		require.True(t, time.Now().Before(deadline), "chunks not all free after the other subscriber left: %+v", after)
		<-tick.C
	}
	require.Zero(t, after.InUse)
	require.Zero(t, after.Outstanding)
	pub.wait()
}

// TestOwnedSubscriberMappingReadOnly: a subscriber process of another uid
// (65534) cannot write the publisher's data segment it receives: reopening
// its fd through /proc/self/fd with O_RDWR fails (the memfd is 0600, owned
// by the router's uid), mprotect(PROT_WRITE) of the mapping fails (the fd
// is read-only) and so does pwrite.
func TestOwnedSubscriberMappingReadOnly(t *testing.T) {
	testutil.RequiresRoot(t)
	t.Parallel()
	r := startRouterWith(t, `socket_mode = "0666"
`+ownedConfig)
	// t.TempDir() is 0700: let uid 65534 reach the socket.
	for d := filepath.Dir(r.Socket); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o711))
	}
	bin := testutil.WorldExecutableCopy(t)
	sub := spawnAs(t, "subscriber as 65534", "sub", bin, nobody, sockArg(r), "-topic=ro", "-n=3", "-qcap=8", "-ro-check")
	sub.expect("ready")
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic=ro", "-n=3", "-size=1000", "-subs=1")
	res := parsePubResult(t, pub.expect("result "))
	ro := sub.expect("ro ")
	require.Equal(t, []string{"EACCES", "EACCES", "EBADF"}, ro, "reopen O_RDWR, mprotect PROT_WRITE, pwrite")
	rep := parseSubReport(t, sub.wait())
	pub.wait()
	requireDelivered(t, res, rep, 1)
	t.Logf("subscriber of uid %d: %s", nobody, strings.Join(ro, " "))
}
