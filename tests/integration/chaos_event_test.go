//go:build integration

package integration

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/event"
	"github.com/parallax-ipc/parallax/services"
)

func init() { childRoles["evchaos"] = evChaosMain }

// chaosEventIDs is the ids the notifiers of TestChaosEvent signal in the
// loop (0..chaosEventIDs-1); the test signals fresh ids above them
// afterwards. Fewer than a listener's capacity (256), so a listener that
// does not read never holds a notifier back: each ring holds an id once.
const chaosEventIDs = 32

// evChaosMain is a notifier or listener of TestChaosEvent, by -mode:
//
//   - notify: signals ids 0..31 in a loop (one every 200 µs) until stdin
//     EOF or its death; prints "ready" once it has a listener.
//   - listen: prints "ready" once a notifier is connected and waits (Wait)
//     all the time, checking each wake (only ids it may get, sorted, each
//     once); -idle waits for the stdin line "go" before its first Wait.
//     Stdin "seen <id>" prints "seen <id> wakes <n> bad <n> badconns <n>"
//     once id was received (the child fails if not within 20 s).
func evChaosMain(args []string) int {
	fs := flag.NewFlagSet("evchaos", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	service := fs.String("service", "chaosev", "service")
	mode := fs.String("mode", "listen", "notify or listen")
	idle := fs.Bool("idle", false, "listen: wait for \"go\" before reading")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := event.Options{Socket: *socket}
	stdin := bufio.NewScanner(os.Stdin)
	if *mode == "notify" {
		n, err := event.NewNotifier(ctx, *service, opts)
		if err != nil {
			return childFail("evchaos", "new notifier: %v", err)
		}
		defer n.Close()
		if err := n.WaitForListeners(ctx, 1); err != nil {
			return childFail("evchaos", "%v", err)
		}
		fmt.Println("ready")
		eof := make(chan struct{})
		go func() {
			for stdin.Scan() {
			}
			close(eof)
		}()
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for i := uint64(0); ; i++ {
			select {
			case <-eof:
				exitWatchdog("evchaos")
				return 0
			case <-tick.C:
			}
			if err := n.Signal(i % chaosEventIDs); err != nil {
				return childFail("evchaos", "signal: %v", err)
			}
		}
	}
	l, err := event.NewListener(ctx, *service, opts)
	if err != nil {
		return childFail("evchaos", "new listener: %v", err)
	}
	defer l.Close()
	if err := l.WaitForNotifiers(ctx, 1); err != nil {
		return childFail("evchaos", "%v", err)
	}
	fmt.Println("ready")
	var (
		mu             sync.Mutex
		seen           = map[uint64]bool{}
		wakes, bad     int
		changed        = make(chan struct{})
		start          = make(chan struct{})
		readerFailed   = make(chan struct{})
		readerErr      error
		startOnce      sync.Once
		closeStartOnce = func() { startOnce.Do(func() { close(start) }) }
	)
	if !*idle {
		closeStartOnce()
	}
	// awaitSeen waits until id was received and prints the counters.
	awaitSeen := func(id uint64) error {
		deadline := time.After(20 * time.Second)
		for {
			mu.Lock()
			ok, ch := seen[id], changed
			w, b, rerr := wakes, bad, readerErr
			mu.Unlock()
			if ok {
				fmt.Printf("seen %d wakes %d bad %d badconns %d\n", id, w, b, l.BadConnections())
				return nil
			}
			select {
			case <-ch:
			case <-readerFailed:
				return fmt.Errorf("wait: %w", rerr)
			case <-deadline:
				return fmt.Errorf("id %d not received within 20 s", id)
			}
		}
	}
	go func() {
		defer close(readerFailed)
		<-start
		for {
			ids, err := l.Wait(ctx)
			if err != nil {
				mu.Lock()
				readerErr = err
				mu.Unlock()
				return
			}
			mu.Lock()
			wakes++
			for i, id := range ids {
				// Ids of the loop, or the test's fresh ones (1000+).
				if (id >= chaosEventIDs && id < 1000) || id >= 2000 || (i > 0 && ids[i-1] >= id) {
					bad++
				}
				seen[id] = true
			}
			close(changed)
			changed = make(chan struct{})
			mu.Unlock()
		}
	}()
	for stdin.Scan() {
		f := strings.Fields(stdin.Text())
		switch {
		case len(f) == 1 && f[0] == "go":
			closeStartOnce()
		case len(f) == 2 && f[0] == "seen":
			id, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return childFail("evchaos", "bad line %q", stdin.Text())
			}
			if err := awaitSeen(id); err != nil {
				return childFail("evchaos", "%v", err)
			}
		default:
			return childFail("evchaos", "bad line %q", stdin.Text())
		}
	}
	exitWatchdog("evchaos")
	return 0
}

// exitWatchdog bounds a child's exit after stdin EOF (its deferred
// Closes): past 20 s it prints every goroutine's stack to stderr and exits
// 3, so a hang in Close is reported with its stacks at once instead of
// after the test's childTimeout.
func exitWatchdog(role string) {
	time.AfterFunc(20*time.Second, func() {
		fmt.Fprintf(os.Stderr, "%s child (pid %d): still not exited 20 s after stdin EOF; stacks:\n", role, os.Getpid())
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		os.Exit(3)
	})
}

// TestChaosEvent (issue 13 chaos, events): notifiers and listeners of one
// event service are SIGKILLed at random instants (PARALLAX_CHAOS_EVENT_KILLS,
// default 40) while a stable notifier (this process) signals all the time,
// a stable listener reads all the time and an idle listener stays attached
// without reading. Victim notifiers signal too; victim listeners read.
// Then: the service lists exactly the survivors (public discovery API),
// the router's introspection shows exactly their two connections and only
// the stable notifier's segment, the notifier has nothing in use, and both
// surviving listeners receive what is signalled now (the idle one also
// every id it missed while it slept: nothing lost, coalesced).
func TestChaosEvent(t *testing.T) {
	kills := 40
	if s := os.Getenv("PARALLAX_CHAOS_EVENT_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "PARALLAX_CHAOS_EVENT_KILLS")
		kills = n
	}
	if testing.Short() {
		kills = min(kills, 10)
	}
	t.Parallel()
	r := startInProcessRouter(t, ownedConfig) // for its introspection
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const svc = "chaosev"
	n, err := event.NewNotifier(ctx, svc, event.Options{Socket: r.Socket})
	require.NoError(t, err)
	defer n.Close()
	stable := spawn(t, "stable listener", "evchaos", sockArg(r), "-service="+svc)
	idle := spawn(t, "idle listener", "evchaos", sockArg(r), "-service="+svc, "-idle")
	stable.expect("ready")
	idle.expect("ready")
	require.NoError(t, n.WaitForListeners(ctx, 2))

	// The stable notifier signals all the time.
	stop := make(chan struct{})
	signalled := make(chan error, 1)
	go func() {
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				signalled <- nil
				return
			case <-tick.C:
			}
			if err := n.Signal(i % chaosEventIDs); err != nil {
				signalled <- err
				return
			}
		}
	}()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d kills", seed, kills)
	rng := rand.New(rand.NewPCG(seed, 0))
	var notifiers, listeners int
	victims := map[int32]bool{}
	for i := range kills {
		var v *proc
		if rng.IntN(2) == 0 {
			notifiers++
			v = spawn(t, fmt.Sprintf("victim notifier %d", i), "evchaos", sockArg(r), "-service="+svc, "-mode=notify")
		} else {
			listeners++
			v = spawn(t, fmt.Sprintf("victim listener %d", i), "evchaos", sockArg(r), "-service="+svc)
		}
		// A random instant: during its connect, its first signals or
		// wakes, or later.
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		victims[int32(v.cmd.Process.Pid)] = true
		require.NoError(t, v.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
		_ = v.waitErr()
	}
	t.Logf("killed %d notifiers and %d listeners", notifiers, listeners)
	close(stop)
	require.NoError(t, <-signalled, "the stable notifier's Signal failed")

	// The idle listener reads now: every id of the loop it slept through
	// is there (coalesced, nothing lost). Its draining also lets go of the
	// connections of dead notifiers (they are read to the end first).
	idle.send("go")
	for id := range chaosEventIDs {
		idle.send(fmt.Sprintf("seen %d", id))
		idle.expect(fmt.Sprintf("seen %d ", id))
	}

	// The public API: exactly the survivors.
	require.NoError(t, waitFor(ctx, func() bool {
		list, err := services.List(ctx, services.Options{Socket: r.Socket})
		require.NoError(t, err)
		for _, s := range list {
			if s.Name == svc && s.Kind == services.KindEvent {
				return len(s.Publishers) == 1 && len(s.Subscribers) == 2
			}
		}
		return false
	}), "the event service does not show exactly 1 notifier and 2 listeners")
	require.NoError(t, waitFor(ctx, func() bool { return n.Listeners() == 2 }), "the notifier still signals dead listeners")

	// The router's introspection: the two survivors' connections, only
	// the stable notifier's data segment, nothing of the victims.
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		in, err := r.srv.Introspect(ctx)
		require.NoError(t, err)
		var conns []string
		subPIDs := map[int32]bool{}
		for _, c := range in.Connections {
			if c.Topic == svc {
				conns = append(conns, fmt.Sprintf("%d:%d->%d", c.ConnID, c.PubPID, c.SubPID))
				if c.PubPID == int32(os.Getpid()) {
					subPIDs[c.SubPID] = true
				}
			}
		}
		pubs := map[uint32]bool{}
		for _, s := range in.PublisherSegments {
			pubs[s.PubID] = true
		}
		var dead []int32
		for _, p := range in.Processes {
			if victims[p.PID] {
				dead = append(dead, p.PID)
			}
		}
		want := subPIDs[int32(stable.cmd.Process.Pid)] && subPIDs[int32(idle.cmd.Process.Pid)]
		if want && len(conns) == 2 && len(pubs) == 1 && len(dead) == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline),
			"leaked: connections of %q %v (want 2, from pid %d), publisher segments of %v (want 1), killed processes still registered %v",
			svc, conns, os.Getpid(), pubs, dead)
		<-tick.C
	}
	st := n.Stats()
	require.Zero(t, st.InUse, "%+v", st)
	require.Zero(t, st.Outstanding, "%+v", st)
	require.Zero(t, st.BadReturns, "%+v", st)

	// Survivors keep receiving: a fresh id now.
	require.NoError(t, n.Signal(1000))
	stable.send("seen 1000")
	f := stable.expect("seen 1000 ")
	require.Equal(t, "0", f[3], "the stable listener got ids never signalled or unsorted sets: %v", f)
	require.Equal(t, "0", f[5], "the stable listener gave up connections: %v", f)
	t.Logf("stable listener: %s wakes, 0 bad", f[1])
	idle.send("seen 1000")
	f = idle.expect("seen 1000 ")
	require.Equal(t, "0", f[3], "the idle listener got ids never signalled or unsorted sets: %v", f)
	stable.wait()
	idle.wait()
}
