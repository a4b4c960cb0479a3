//go:build integration

package integration

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/event"
)

func init() { childRoles["evlisten"] = evListenMain }

// evListenMain listens to -service: it prints "ready" once a notifier is
// connected, then (unless -stall) waits until it has received every id
// of 0..-want-1 (each wake checked: only ids in range) and prints "done
// <distinct>". With -stall it never reads (its ring fills). Either way it
// then waits for stdin EOF.
func evListenMain(args []string) int {
	fs := flag.NewFlagSet("evlisten", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	service := fs.String("service", "ev", "service")
	want := fs.Int("want", 0, "ids 0..want-1 to receive")
	capacity := fs.Int("capacity", 0, "listener capacity")
	stall := fs.Bool("stall", false, "never read")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := event.NewListener(ctx, *service, event.Options{Socket: *socket, Capacity: *capacity})
	if err != nil {
		return childFail("evlisten", "new listener: %v", err)
	}
	defer l.Close()
	if err := l.WaitForNotifiers(ctx, 1); err != nil {
		return childFail("evlisten", "%v", err)
	}
	fmt.Println("ready")
	if !*stall {
		got := make([]bool, *want)
		n := 0
		for n < *want {
			ids, err := l.Wait(ctx)
			if err != nil {
				return childFail("evlisten", "wait (have %d of %d ids): %v", n, *want, err)
			}
			for _, id := range ids {
				if id >= uint64(*want) {
					return childFail("evlisten", "id %d was never signalled", id)
				}
				if !got[id] {
					got[id] = true
					n++
				}
			}
		}
		fmt.Printf("done %d\n", n)
	}
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the test closes stdin
	return 0
}

// TestEventListenerKilled: a notifier (this process) signals a flood of
// ids to two listener processes. One never reads: its ring (capacity 8)
// fills and Signal waits for it. That listener is SIGKILLed mid-flood.
// The router removes its connection, the waiting Signal lets go (long
// before its 30 s block timeout, so no Signal fails), the other listener
// gets every id, and the notifier is left with one listener and nothing
// in use.
func TestEventListenerKilled(t *testing.T) {
	t.Parallel()
	r := startRouterWith(t, ownedConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := event.NewNotifier(ctx, "frames", event.Options{Socket: r.Socket, BlockTimeout: 30 * time.Second})
	require.NoError(t, err)
	defer n.Close()

	const ids, capacity = 2000, 8
	keeper := spawn(t, "keeper listener", "evlisten", sockArg(r), "-service=frames", "-want="+strconv.Itoa(ids))
	victim := spawn(t, "victim listener", "evlisten", sockArg(r), "-service=frames", "-stall", "-capacity="+strconv.Itoa(capacity))
	keeper.expect("ready")
	victim.expect("ready")
	require.NoError(t, n.WaitForListeners(ctx, 2))

	var sent atomic.Int64
	type result struct {
		err     error
		longest time.Duration
	}
	done := make(chan result, 1)
	go func() {
		var res result
		for id := range uint64(ids) {
			start := time.Now()
			if err := n.Signal(id); err != nil {
				res.err = fmt.Errorf("signal %d: %w", id, err)
				break
			}
			res.longest = max(res.longest, time.Since(start))
			sent.Add(1)
		}
		done <- res
	}()
	// The victim never reads: after capacity distinct ids, Signal waits
	// for it (the flood cannot finish while it lives).
	require.NoError(t, waitFor(ctx, func() bool { return sent.Load() >= capacity }))
	require.Less(t, sent.Load(), int64(ids), "the flood finished although a listener never read")
	killed := time.Now()
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
	require.Error(t, victim.waitErr(), "the victim was killed")

	res := <-done
	require.NoError(t, res.err, "a dead listener made Signal fail")
	t.Logf("flood done %v after the kill; longest Signal %v", time.Since(killed), res.longest)
	require.Less(t, res.longest, 15*time.Second, "a Signal waited for the dead listener until near its block timeout")
	require.Equal(t, []string{strconv.Itoa(ids)}, keeper.expect("done "), "the other listener got every id")

	require.NoError(t, waitFor(ctx, func() bool { return n.Listeners() == 1 }), "the dead listener's connection is still signalled")
	st := n.Stats()
	require.Zero(t, st.InUse, "%+v", st)
	require.Zero(t, st.Outstanding, "%+v", st)
	require.Zero(t, st.Loans, "%+v", st)
	require.Zero(t, st.BadReturns, "%+v", st)
	// Still signalling the survivor works.
	require.NoError(t, n.Signal(0))
	keeper.wait()
}
