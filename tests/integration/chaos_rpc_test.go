//go:build integration

package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestChaosRPC (issue 13 chaos): request/response clients and servers are
// SIGKILLed at random instants (PARALLAX_CHAOS_RPC_KILLS, default 100)
// while a stable server serves, a stable client calls all the time (echoes
// and streams, spread over the stable server and every victim server) and
// an idle client stays attached. Victim clients call the stable server and
// the victim servers from two goroutines; victim servers answer (and hold
// nothing of the stable client's: it never sends held requests). Then the
// surviving endpoints' own accounting must show nothing leaked: the
// stable server's responses all back, with exactly its two surviving
// clients; both clients' requests all back, each connected to the one
// server left; the stable client never got a wrong or misordered response
// and calls again at once.
func TestChaosRPC(t *testing.T) {
	kills := 100
	if s := os.Getenv("PARALLAX_CHAOS_RPC_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "PARALLAX_CHAOS_RPC_KILLS")
		kills = n
	}
	if testing.Short() {
		kills = min(kills, 20)
	}
	t.Parallel()
	r := startRouterWith(t, ownedConfig)
	srv := spawn(t, "stable server", "rpcserve", sockArg(r), "-service=chaos")
	srv.expect("ready")
	idle := spawn(t, "idle client", "rpcloop", sockArg(r), "-service=chaos")
	idle.expect("ready")
	cl := spawn(t, "stable client", "rpcloop", sockArg(r), "-service=chaos")
	cl.expect("ready")
	cl.send("loop")

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d kills", seed, kills)
	rng := rand.New(rand.NewPCG(seed, 0))
	var servers, clients int
	for i := range kills {
		var v *proc
		if rng.IntN(2) == 0 {
			servers++
			v = spawn(t, fmt.Sprintf("victim server %d", i), "rpcserve", sockArg(r), "-service=chaos")
			v.expect("ready")
		} else {
			clients++
			v = spawn(t, fmt.Sprintf("victim client %d", i), "rpccall", sockArg(r), "-service=chaos", "-n=1000000", "-g=2", "-pending=0")
		}
		// A random instant: during its connect, its first calls, or later.
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		require.NoError(t, v.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
		_ = v.waitErr()
	}
	t.Logf("killed %d servers and %d clients", servers, clients)

	cl.send("stop")
	lf := cl.looped()
	require.Zero(t, lf.bad, "the stable client got a wrong response or an unexpected error, first: %q", lf.firstBad)
	require.NotZero(t, lf.ok, "the stable client made no successful call")
	t.Logf("stable client: %d calls answered, %d failed with the server gone", lf.ok, lf.gone)

	// Quiesce: the victims are dead; the survivors' own accounting.
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		cl.send("mem")
		cm := cl.expect("mem ")
		idle.send("mem")
		im := idle.expect("mem ")
		sm := srv.serverMem(t)
		if sameFields(cm, "0", "0", "0", "1") && sameFields(im, "0", "0", "0", "1") && sm == (serverMem{Clients: 2}) {
			break
		}
		require.True(t, time.Now().Before(deadline),
			"leaked or dead endpoints still connected: stable client %v, idle client %v (in use, loans, outstanding, servers), stable server %+v", cm, im, sm)
		<-tick.C
	}
	cl.send("call 50")
	require.Equal(t, []string{"ed", "50"}, cl.expect("call"), "the stable client calls after the chaos")
	idle.send("call 10")
	require.Equal(t, []string{"ed", "10"}, idle.expect("call"), "the idle client calls after the chaos")
	cl.wait()
	idle.wait()
}

// sameFields reports whether f is want.
func sameFields(f []string, want ...string) bool {
	if len(f) != len(want) {
		return false
	}
	for i := range f {
		if f[i] != want[i] {
			return false
		}
	}
	return true
}
