//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/event"
)

func init() { childRoles["evhostile"] = evHostileMain }

// evHostileMain is a notifier of -service that turns hostile on command.
// It prints "ready" once -listeners listeners are connected, then answers
// each stdin line: "zero" writes entry 0 (which names no event id: the
// notifier pushes id+1; Ring.TryPush refuses it) into the data ring of
// every connection segment this process holds, past the client library,
// and "tail" makes each data ring's tail impossible (a capacity and more
// ahead of head); each wakes the listeners and prints "<command>
// <connections reached>". "listeners" prints "listeners <n>"; "signal
// <id>" signals id through the library and prints "signalled" or
// "signalfail <error>". It exits at stdin EOF.
func evHostileMain(args []string) int {
	fs := flag.NewFlagSet("evhostile", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	service := fs.String("service", "ev", "service")
	listeners := fs.Int("listeners", 1, "listeners to wait for")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := event.NewNotifier(ctx, *service, event.Options{Socket: *socket, BlockTimeout: 5 * time.Second})
	if err != nil {
		return childFail("evhostile", "new notifier: %v", err)
	}
	defer n.Close()
	if err := n.WaitForListeners(ctx, *listeners); err != nil {
		return childFail("evhostile", "%v", err)
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 1 && (f[0] == "zero" || f[0] == "tail"):
			ms, err := ownConnMappings() // hostile_owned_children_test.go
			if err != nil {
				return childFail("evhostile", "%v", err)
			}
			for _, m := range ms {
				scribbleDataRing(m, f[0] == "zero")
				_ = m.conn.DataWake().Notify()
			}
			fmt.Printf("%s %d\n", f[0], len(ms))
		case len(f) == 1 && f[0] == "listeners":
			fmt.Printf("listeners %d\n", n.Listeners())
		case len(f) == 2 && f[0] == "signal":
			id, _ := strconv.ParseUint(f[1], 10, 64)
			if err := n.Signal(id); err != nil {
				fmt.Printf("signalfail %s\n", strconv.Quote(err.Error()))
			} else {
				fmt.Println("signalled")
			}
		}
	}
	return 0
}

// Ring layout offsets (ringbuf doc.go, TestLayout): the tail word and the
// first slot from the ring's start; the data ring's offset is the
// connection header's word at 48 (ringbuf TestConnLayout).
const (
	ringOffTail  = 256
	ringOffSlots = 512
	connOffData  = 48
)

// scribbleDataRing writes m's data ring as a hostile producer: with zero,
// entry 0 into the next slot and the tail moved past it (slot first, as a
// push orders them); else a tail a capacity and 5 ahead of head.
func scribbleDataRing(m connMapping, zero bool) {
	le := binary.LittleEndian
	r := m.conn.DataRing()
	base := int(le.Uint64(m.mem[connOffData:]))
	t := r.Tail()
	if zero {
		le.PutUint64(m.mem[base+ringOffSlots+8*int(t&uint32(r.Cap()-1)):], 0)
		le.PutUint64(m.mem[base+ringOffTail:], uint64(t+1))
		return
	}
	le.PutUint64(m.mem[base+ringOffTail:], uint64(r.Head().Pos()+uint32(r.Cap())+5))
}

// TestEventCorruptNotifierCut: two hostile notifier processes write their
// connections' rings to two listeners (one in this process, one in a
// child) past the client library: one entry 0 (no event id), the other an
// impossible tail. Each listener stops reading those connections and
// reports them to the router, which cuts them: the listeners are left with
// the honest notifier only, the hostile notifiers with no listener, and the
// router counts four report cuts. The honest notifier's ids still reach
// both listeners, whole, and nothing waits for a cut connection.
func TestEventCorruptNotifierCut(t *testing.T) {
	t.Parallel()
	r := startInProcessRouter(t, ownedConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ids = 100
	l, err := event.NewListener(ctx, "door", event.Options{Socket: r.Socket})
	require.NoError(t, err)
	defer l.Close()
	keeper := spawn(t, "other listener", "evlisten", sockArg(r), "-service=door", "-want="+strconv.Itoa(ids))
	n, err := event.NewNotifier(ctx, "door", event.Options{Socket: r.Socket})
	require.NoError(t, err)
	defer n.Close()
	keeper.expect("ready")
	require.NoError(t, n.WaitForListeners(ctx, 2))
	var hostile []*proc
	for _, how := range []string{"zero", "tail"} {
		x := spawn(t, "hostile notifier ("+how+")", "evhostile", sockArg(r), "-service=door", "-listeners=2")
		x.expect("ready")
		hostile = append(hostile, x)
	}
	require.NoError(t, l.WaitForNotifiers(ctx, 3))

	for i, how := range []string{"zero", "tail"} {
		require.Equal(t, []string{"2"}, hostile[i].cmdLine(how, how+" "), "hostile notifier %q reached both listeners' rings", how)
	}
	for id := range uint64(ids) {
		require.NoError(t, n.Signal(id))
	}
	got := map[uint64]bool{}
	for len(got) < ids {
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		set, err := l.Wait(wctx)
		wcancel()
		require.NoError(t, err, "have %d of %d ids", len(got), ids)
		for _, id := range set {
			require.Less(t, id, uint64(ids), "an id nobody signalled")
			got[id] = true
		}
	}
	require.Equal(t, []string{strconv.Itoa(ids)}, keeper.expect("done "), "the other listener got every honest id")
	require.Equal(t, uint64(2), l.BadConnections(), "the listener found both hostile connections bad")

	eventually(t, "the router cuts the hostile notifiers' connections on the listeners' reports", func() (bool, string) {
		g := r.srv.GuardStats()
		return l.Notifiers() == 1 && g.ReportCuts == 4, fmt.Sprintf("listener has %d notifiers, router %+v", l.Notifiers(), g)
	})
	for _, x := range hostile {
		eventually(t, "the hostile notifier is told", func() (bool, string) {
			f := x.cmdLine("listeners", "listeners ")
			return len(f) == 1 && f[0] == "0", fmt.Sprintf("%s: listeners %v", x.name, f)
		})
	}
	require.Equal(t, 2, n.Listeners(), "the honest notifier keeps both listeners")
	// Still working: a fresh honest id arrives; a hostile notifier, left
	// without listeners, signals nobody and does not wait.
	require.NoError(t, n.Signal(7))
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	set, err := l.Wait(wctx)
	require.NoError(t, err)
	require.Equal(t, []uint64{7}, set)
	for _, x := range hostile {
		x.cmdLine("signal 3", "signalled")
		x.wait()
	}
	keeper.wait()
}
