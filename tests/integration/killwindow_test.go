//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

// The kill windows of docs/design/memory-ownership.md §4.2: a child is
// stopped at a test hook (internal/testhook) inside the owned-model data
// path and SIGKILLed there, by PID, while an idle client (a subscriber on
// an unrelated topic and a discard-oldest one on the same topic that takes
// nothing until the end) stays attached the whole time. Afterwards:
//
//   - the surviving publisher's own accounting is exact: what it counts
//     as outstanding is what the live subscribers hold (each says, after
//     draining), in use is that plus loans and history, the rest is free;
//   - a dead publisher's segments are gone: no live process (router,
//     subscribers, the other publisher) has an fd or a mapping of
//     "plx:<domain>:p<id>.", and the router keeps exactly the connection
//     segments of the live connections;
//   - the surviving streams lose and corrupt nothing (the children check
//     every payload and sequence number).

// hooked is a child stopped at hooks: its proc and the lines it writes to
// fd 3 when it stops.
type hooked struct {
	*proc
	hooks chan string
}

// spawnHooked is spawn with a pipe as the child's fd 3 (testhook writes
// "hook <name>" there when it stops).
func spawnHooked(t *testing.T, name, role string, args ...string) *hooked {
	t.Helper()
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { pr.Close() })
	p := startProc(t, name, testutil.ChildCommand(t, role, []*os.File{pw}, args...))
	pw.Close() // the child holds the only write end
	h := &hooked{proc: p, hooks: make(chan string, 1)}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			h.hooks <- sc.Text()
		}
		close(h.hooks)
	}()
	return h
}

// reached waits until h reports it stopped (or paused) at hook.
func (h *hooked) reached(t *testing.T, hook string) {
	t.Helper()
	select {
	case l, ok := <-h.hooks:
		require.True(t, ok, "%s exited before reaching hook %s; output:\n%s", h.name, hook, h.output())
		require.Equal(t, "hook "+hook, l)
	case <-time.After(childTimeout):
		t.Fatalf("%s did not reach hook %s; output:\n%s", h.name, hook, h.output())
	}
}

// killAt waits until h reports it stopped at hook, then SIGKILLs it by PID
// and waits for it to exit.
func (h *hooked) killAt(t *testing.T, hook string) {
	t.Helper()
	h.reached(t, hook)
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
	require.Error(t, h.waitErr(), "%s was killed", h.name)
}

// cmdLine sends a command line to a kill-window child and returns the fields
// of its answer, which starts with want.
func (p *proc) cmdLine(line, want string) []string {
	p.t.Helper()
	p.send(line)
	return p.expect(want)
}

// kwMem is a kwpub child's "mem" line.
type kwMem struct {
	Chunks, Free, InUse, Outstanding, Subscribers, Reclaimed, Loans, History uint64
}

func (p *proc) kwStats(t *testing.T) kwMem {
	t.Helper()
	f := p.cmdLine("stats", "mem ")
	require.Len(t, f, 8, "mem line %q", f)
	return kwMem{atoi(t, f[0]), atoi(t, f[1]), atoi(t, f[2]), atoi(t, f[3]), atoi(t, f[4]), atoi(t, f[5]), atoi(t, f[6]), atoi(t, f[7])}
}

func (p *proc) held(t *testing.T) uint64 {
	t.Helper()
	return atoi(t, p.cmdLine("held", "held ")[0])
}

// eventually polls cond (every 5 ms) until it holds, failing after 30 s
// with what it last said.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s; last: %s", what, state)
		}
		<-tick.C
	}
}

// segNames returns the names of pid's fds and mappings that are segments
// of domain whose name starts with "plx:<domain>:<prefix>".
func segNames(pid int, domain, prefix string) []string {
	want := "plx:" + domain + ":" + prefix
	var out []string
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.Contains(l, want) {
			out = append(out, "fd "+l)
		}
	}
	maps, _ := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	for line := range strings.SplitSeq(string(maps), "\n") {
		if strings.Contains(line, want) {
			out = append(out, "map "+line)
		}
	}
	return out
}

// connsMapped returns the distinct connection segments pid maps.
func connsMapped(pid int, domain string) []string {
	set := map[string]bool{}
	for _, n := range segNames(pid, domain, "c") {
		if rest, ok := strings.CutPrefix(n, "map "); ok {
			f := strings.Fields(rest)
			if len(f) > 5 {
				set[f[5]] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}

// routerConnFds counts the router's connection segment fds.
func routerConnFds(r *router) (int, string) {
	pid := r.PID
	if pid == 0 {
		pid = os.Getpid()
	}
	n := 0
	var names []string
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.Contains(l, "plx:"+r.Domain+":c") {
			n++
			names = append(names, l)
		}
	}
	return n, strings.Join(names, ", ")
}

func routerPID(r *router) int {
	if r.PID == 0 {
		return os.Getpid()
	}
	return r.PID
}

// TestKillWindows runs one subtest per hook of design §4.2: the publisher
// killed at each publisher hook, the subscriber at each subscriber hook.
// grow.reply is not here: the publisher's growth client does not exist yet.
func TestKillWindows(t *testing.T) {
	if !testhook.Enabled {
		t.Skip("test hooks are not compiled in: build with -tags integration,parallax_testhook")
	}
	t.Parallel()
	for _, hook := range []string{"loan.popped", "publish.mid", "history.mid", "discard.won", "drain.mid"} {
		t.Run("publisher/"+hook, func(t *testing.T) {
			t.Parallel()
			killPublisherAt(t, hook)
		})
	}
	for _, hook := range []string{"take.popped", "release.pre", "release.post", "close.held"} {
		t.Run("subscriber/"+hook, func(t *testing.T) {
			t.Parallel()
			killSubscriberAt(t, hook)
		})
	}
}

// killPublisherAt kills publisher V at hook while publisher P2 on the
// same topic survives. Subscribers: the idle client's discard-oldest one
// (capacity 4, takes only at the end), survivor S (block-producer, holds
// what it takes) and, for history.mid, a late joiner N.
func killPublisherAt(t *testing.T, hook string) {
	r := startRouterWith(t, ownedConfig)
	sock := sockArg(r)
	idle := spawn(t, "idle client", "kwsub", sock, "-topic=kw", "-policy=discard", "-qcap=4", "-idle-topic=idle")
	idle.expect("ready")
	s := spawn(t, "survivor subscriber", "kwsub", sock, "-topic=kw", "-qcap=128")
	s.expect("ready")
	p2 := spawn(t, "survivor publisher", "kwpub", sock, "-topic=kw")
	p2ID := atoi(t, p2.expect("ready ")[0])
	v := spawnHooked(t, "victim publisher", "kwpub", sock, "-topic=kw", "-history=8")
	vID := atoi(t, v.expect("ready ")[0])
	p2.cmdLine("subs 2", "subs")
	v.cmdLine("subs 2", "subs")
	p2.cmdLine("pub 5", "ok ")
	v.cmdLine("pub 5", "ok ")
	s.cmdLine("take 10", "took ") // S holds 5 of each
	liveConns := 4                // P2–S, P2–idle, V–S, V–idle (half of them P2's)
	var n *proc
	switch hook {
	case "loan.popped", "publish.mid", "discard.won":
		// Publish reaches all three: the loan, the first connection,
		// a full discard-oldest ring (the idle one).
		v.cmdLine("arm "+hook, "armed")
		v.send("pub 1")
	case "drain.mid":
		s.cmdLine("release", "released") // 5 returns in each publisher's return ring
		v.cmdLine("arm "+hook, "armed")
		v.send("stats") // Stats drains every return ring
	case "history.mid":
		v.cmdLine("arm "+hook, "armed")
		n = spawn(t, "late joiner", "kwsub", sock, "-topic=kw", "-history=5", "-qcap=64", "-any-first")
		n.expect("ready")
		liveConns += 2 // P2–N, V–N
	default:
		t.Fatalf("no scenario for hook %s", hook)
	}
	v.killAt(t, hook)
	subs := []*proc{idle, s}
	if n != nil {
		subs = append(subs, n)
	}
	for _, x := range subs {
		x.cmdLine("pubs 1", "pubs") // the orphan is not counted
	}
	// The router learnt of V's death: it closed V's data segments and the
	// segments of V's connections (the orphaned ones stay mapped by their
	// subscribers until drained), and keeps those of P2's.
	eventually(t, "router closes the dead publisher's segments", func() (bool, string) {
		names := segNames(routerPID(r), r.Domain, fmt.Sprintf("p%d.", vID))
		c, conns := routerConnFds(r)
		return len(names) == 0 && c == liveConns/2, fmt.Sprintf("data %v; %d connection segments: %s", names, c, conns)
	})

	// The survivors drain everything: V's part of each stream is a
	// lossless prefix (checked by the children), P2's is whole.
	s.cmdLine("release", "released")
	for _, x := range subs {
		x.cmdLine("drain", "drained ")
	}
	s.cmdLine("pubs 1", "pubs")
	seen := s.cmdLine(fmt.Sprintf("seen %d", p2ID), "seen ")
	require.Equal(t, []string{"5", "5"}, seen, "survivor S got P2's 5 samples")

	// V's segments are gone from every live process; the router keeps
	// only P2's connections.
	pids := []int{routerPID(r), idle.cmd.Process.Pid, s.cmd.Process.Pid, p2.cmd.Process.Pid}
	if n != nil {
		pids = append(pids, n.cmd.Process.Pid)
	}
	eventually(t, "the dead publisher's segments are gone", func() (bool, string) {
		var all []string
		for _, pid := range pids {
			all = append(all, segNames(pid, r.Domain, fmt.Sprintf("p%d.", vID))...)
		}
		for _, x := range subs { // each maps only its connection to P2
			if c := connsMapped(x.cmd.Process.Pid, r.Domain); len(c) != 1 {
				all = append(all, fmt.Sprintf("%s maps %v", x.name, c))
			}
		}
		return len(all) == 0, fmt.Sprintf("left %v", all)
	})

	// P2's accounting equals what the live subscribers hold.
	p2.cmdLine("pub 3", "ok ")
	s.cmdLine("take 3", "took ")
	for _, x := range subs {
		x.cmdLine("drain", "drained ")
	}
	requireExact(t, p2, subs)
}

// requireExact checks the publisher's accounting against what the live
// subscribers say they hold (history 0: every chunk in use is held by one
// subscriber or in its ring; the children drained their rings).
func requireExact(t *testing.T, pub *proc, subs []*proc) {
	t.Helper()
	var held uint64
	for _, x := range subs {
		held += x.held(t)
	}
	m := pub.kwStats(t)
	require.Equal(t, held, m.Outstanding, "outstanding == what live subscribers hold: %+v", m)
	require.Equal(t, m.Loans+m.History+held, m.InUse, "in use == loans + history + held: %+v", m)
	require.Equal(t, m.Chunks-m.InUse, m.Free, "%+v", m)
}

// killSubscriberAt kills subscriber V at hook; publisher P survives with
// survivor S2 and the idle client attached.
func killSubscriberAt(t *testing.T, hook string) {
	r := startRouterWith(t, ownedConfig)
	sock := sockArg(r)
	idle := spawn(t, "idle client", "kwsub", sock, "-topic=kw", "-policy=discard", "-qcap=4", "-idle-topic=idle")
	idle.expect("ready")
	s2 := spawn(t, "survivor subscriber", "kwsub", sock, "-topic=kw", "-qcap=128")
	s2.expect("ready")
	v := spawnHooked(t, "victim subscriber", "kwsub", sock, "-topic=kw", "-qcap=128")
	v.expect("ready")
	p := spawn(t, "publisher", "kwpub", sock, "-topic=kw")
	pID := atoi(t, p.expect("ready ")[0])
	p.cmdLine("subs 3", "subs")
	p.cmdLine("pub 8", "ok ")
	switch hook {
	case "take.popped":
		v.cmdLine("arm "+hook, "armed")
		v.send("take 1")
	case "release.pre", "release.post":
		v.cmdLine("take 4", "took ")
		v.cmdLine("arm "+hook, "armed")
		v.send("release")
	case "close.held":
		v.cmdLine("take 4", "took ")
		v.cmdLine("arm "+hook, "armed")
		v.send("close")
	default:
		t.Fatalf("no scenario for hook %s", hook)
	}
	v.killAt(t, hook)
	eventually(t, "the publisher takes the dead subscriber's chunks back", func() (bool, string) {
		m := p.kwStats(t)
		return m.Subscribers == 2 && m.Reclaimed > 0, fmt.Sprintf("%+v", m)
	})
	s2.cmdLine("take 8", "took ")
	s2.cmdLine("release", "released")
	idle.cmdLine("drain", "drained ")
	p.cmdLine("pub 3", "ok ")
	s2.cmdLine("take 3", "took ")
	idle.cmdLine("drain", "drained ")
	require.Equal(t, []string{"11", "11"}, s2.cmdLine("seen "+strconv.FormatUint(pID, 10), "seen "), "survivor S2 got all 11 samples")
	requireExact(t, p, []*proc{idle, s2})
	eventually(t, "the router keeps only the live connections' segments", func() (bool, string) {
		c, names := routerConnFds(r)
		return c == 2, names
	})
}

// TestOrphanCountedUntilDrained: a dead publisher's memory still mapped by
// a live subscriber (samples it holds, entries queued for it) keeps
// counting against [limits] max_shared_bytes until that subscriber
// drained the orphaned connection, unmapped it and released it (design
// §4.1: the subscriber releases after draining, not when told the
// publisher is gone). The domain's limit leaves room for one publisher's
// data segment and a connection, not two: a new publisher is refused
// while the subscriber holds the dead one's samples, and fits once it let
// go.
func TestOrphanCountedUntilDrained(t *testing.T) {
	t.Parallel()
	// Probe the data segment sizes with a router that refuses every
	// publisher: its error names the bytes asked.
	probe := startRouterWith(t, testConfig+"max_publisher_bytes = 1\nmax_shared_bytes = 1\n[memory]\nmodel = \"owned\"\n")
	asked := func(args ...string) uint64 {
		t.Helper()
		p := spawn(t, "probe publisher", "kwpub", append([]string{sockArg(probe), "-new-err"}, args...)...)
		f := p.expect("newerr ")
		p.wait()
		msg := strings.Join(f, " ")
		_, rest, ok := strings.Cut(msg, ": ")
		require.True(t, ok, "refusal %q", msg)
		i := strings.Index(rest, " bytes asked")
		require.Positive(t, i, "refusal %q names no bytes asked", msg)
		fs := strings.Fields(rest[:i])
		return atoi(t, fs[len(fs)-1])
	}
	ps := probe.expectSub(t, "-topic=orphan", "-qcap=16") // as the subscriber below: the size depends on it
	segV := asked("-topic=orphan")
	segP3 := asked("-topic=other")
	ps.wait()

	limit := segV + segP3 - 1
	r := startRouterWith(t, testConfig+fmt.Sprintf("max_publisher_bytes = %d\nmax_shared_bytes = %d\n[memory]\nmodel = \"owned\"\n", limit, limit))
	s := spawn(t, "subscriber", "kwsub", sockArg(r), "-topic=orphan", "-qcap=16")
	s.expect("ready")
	v := spawn(t, "publisher", "kwpub", sockArg(r), "-topic=orphan")
	v.expect("ready ")
	v.cmdLine("subs 1", "subs")
	v.cmdLine("pub 6", "ok ")
	s.cmdLine("take 3", "took ") // holds 3, 3 queued
	require.NoError(t, v.cmd.Process.Signal(syscall.SIGKILL))
	require.Error(t, v.waitErr())
	s.cmdLine("pubs 0", "pubs") // told: the connection is orphaned

	t.Logf("data segments: %d bytes (with a subscriber), %d bytes (alone); limit %d", segV, segP3, limit)
	p3 := spawn(t, "publisher while the orphan is mapped", "kwpub", sockArg(r), "-topic=other", "-new-err")
	l := p3.expect("")
	p3.wait()
	require.Contains(t, strings.Join(l, " "), "max_shared_bytes", "the dead publisher's segment still mapped by the subscriber counts")

	s.cmdLine("release", "released")
	require.Equal(t, []string{"3"}, s.cmdLine("drain", "drained "), "the queued samples of the dead publisher are still delivered")
	eventually(t, "a publisher fits once the subscriber let go of the orphan", func() (bool, string) {
		p := spawn(t, "publisher after the drain", "kwpub", sockArg(r), "-topic=other", "-new-err")
		select {
		case l := <-p.lines:
			p.wait()
			return strings.HasPrefix(l, "ready "), l
		case <-time.After(childTimeout):
			return false, "no answer"
		}
	})
}

// expectSub starts a subscriber on r and waits until it is ready.
func (r *router) expectSub(t *testing.T, args ...string) *proc {
	t.Helper()
	s := spawn(t, "subscriber", "kwsub", append([]string{sockArg(r)}, args...)...)
	s.expect("ready")
	return s
}
