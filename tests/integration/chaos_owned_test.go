//go:build integration

package integration

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// The owned-model chaos test (issue 12, docs/design/memory-ownership.md
// §8.9): publisher and subscriber processes are SIGKILLed at random
// instants (PARALLAX_CHAOS_KILLS, default 500) and restarted while an idle
// client stays attached the whole time, so nothing can rely on an idle
// domain. Then, with every client still attached, the run is quiesced and
// the router's introspection must show, per live publisher, exactly what
// live processes hold: deliveries outstanding == the samples its live
// subscribers hold, no loans, its history; after the subscribers let go,
// in use == history. Dead publishers' segments are gone: no row in the
// router's introspection, no "plx:<domain>:p<id>." memfd open in the
// router or mapped by a live child. Stable subscribers check every sample.

func init() {
	childRoles["ownpub"] = ownPubMain
	childRoles["ownsub"] = ownSubMain
}

const ownedChaosConfig = `
[limits]
max_connections = 1024
max_subscribers = 256
max_history = 16
[memory]
model = "owned"
`

// ownPubMain publishes on its topic until stdin says "pause <subs>": then
// it goes on until it has that many subscribers and has published 16 more
// samples, stops and prints "paused <pub id> <history>"; stdin's end closes.
func ownPubMain(args []string) int {
	_ = sys.ReniceProcess(0)
	fs := flag.NewFlagSet("ownpub", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	topic := fs.String("topic", "", "")
	if fs.Parse(args) != nil {
		return 2
	}
	ctx := context.Background()
	pub, err := publisher.New(ctx, *topic, publisher.Options{Socket: *socket, History: 4, MaxPayload: 4096, BlockTimeout: 50 * time.Millisecond})
	if err != nil {
		return childFail("ownpub", "%v", err)
	}
	in := bufio.NewScanner(os.Stdin)
	pause := make(chan int, 1)
	go func() {
		for in.Scan() {
			if f := strings.Fields(in.Text()); len(f) == 2 && f[0] == "pause" {
				n, _ := strconv.Atoi(f[1])
				pause <- n
			}
		}
		close(pause)
	}()
	fmt.Println("ready")
	rng := uint64(os.Getpid())
	want, after := -1, 0
	for seq := uint64(1); ; seq++ {
		select {
		case n, ok := <-pause:
			if !ok {
				_ = pub.Close()
				return 0
			}
			want = n
		default:
		}
		if want >= 0 && after >= 16 && pub.Stats().Subscribers >= want {
			break
		}
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		c, err := pub.Loan(64 + int(rng%4000))
		if errors.Is(err, parallax.ErrPoolExhausted) || errors.Is(err, parallax.ErrLimit) {
			time.Sleep(time.Millisecond) // back off until subscribers return chunks
			seq--
			continue
		}
		if err != nil {
			return childFail("ownpub", "loan: %v", err)
		}
		chaosPayload(c.Bytes(), pub.ID(), seq)
		if rng%20 == 0 {
			if err := pub.Release(c); err != nil {
				return childFail("ownpub", "release: %v", err)
			}
			seq--
			continue
		}
		if err := pub.Publish(c); err != nil && !errors.Is(err, parallax.ErrTimeout) {
			fmt.Fprintln(os.Stderr, "ownpub: publish:", err) // a cut connection; the others got it
		}
		if want >= 0 {
			after++
		}
		if seq%32 == 0 {
			time.Sleep(500 * time.Microsecond) // leave CPU for the others
		}
	}
	m := pub.Stats().Memory
	fmt.Printf("paused %d %d %d %d\n", pub.ID(), m.History, m.Loans, m.InUse)
	for range pause {
	}
	_ = pub.Close()
	return 0
}

// ownSubMain subscribes to every chaos topic and checks every sample,
// keeping the last -hold of each topic. On "quiesce" it takes what is
// queued and prints "held <pub>:<n>... received <n> bad <n>"; on "release"
// it lets go of everything and prints "released"; stdin's end closes.
func ownSubMain(args []string) int {
	_ = sys.ReniceProcess(0)
	fs := flag.NewFlagSet("ownsub", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	block := fs.Bool("block", false, "block-producer policy")
	hold := fs.Int("hold", 0, "keep up to this many samples per topic")
	if fs.Parse(args) != nil {
		return 2
	}
	ctx, quiesce := context.WithCancel(context.Background())
	defer quiesce()
	pol := subscriber.DiscardOldest
	if *block {
		pol = subscriber.BlockProducer
	}
	var (
		mu       sync.Mutex
		received uint64
		bad      []string
		kept     = make([][]subscriber.Sample, chaosTopics)
		subs     []*subscriber.Subscriber
		wg       sync.WaitGroup
	)
	for i := range chaosTopics {
		sub, err := subscriber.New(context.Background(), fmt.Sprintf("chaos/%d", i), subscriber.Options{Socket: *socket, QueueCapacity: 32, Policy: pol, History: 2})
		if err != nil {
			return childFail("ownsub", "%v", err)
		}
		subs = append(subs, sub)
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[uint32]uint64{}
			take := func(s subscriber.Sample) {
				h := s.Header()
				err := chaosCheck(s.Bytes(), h)
				if err == nil && h.Seq <= last[h.PublisherID] {
					err = fmt.Errorf("publisher %d seq %d after %d (duplicate or reordered)", h.PublisherID, h.Seq, last[h.PublisherID])
				}
				last[h.PublisherID] = h.Seq
				mu.Lock()
				received++
				if err != nil {
					bad = append(bad, err.Error())
				}
				kept[i] = append(kept[i], s)
				if len(kept[i]) > *hold {
					_ = kept[i][0].Release()
					kept[i] = kept[i][1:]
				}
				mu.Unlock()
			}
			for {
				s, err := sub.Take(ctx)
				if err != nil {
					break
				}
				take(s)
			}
			for range 1 << 20 { // quiesced: take what is queued
				s, err := sub.TryTake()
				if errors.Is(err, subscriber.ErrNoData) {
					return
				}
				if err == nil {
					take(s)
				}
			}
		}()
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "quiesce":
			quiesce()
			wg.Wait()
			mu.Lock()
			byPub := map[uint32]int{}
			for _, k := range kept {
				for _, s := range k {
					byPub[s.Header().PublisherID]++
				}
			}
			var b strings.Builder
			b.WriteString("held")
			for p, n := range byPub {
				fmt.Fprintf(&b, " %d:%d", p, n)
			}
			fmt.Printf("%s received %d bad %d\n", b.String(), received, len(bad))
			for i, e := range bad {
				if i == 10 {
					break
				}
				fmt.Fprintln(os.Stderr, "ownsub: bad sample:", e)
			}
			mu.Unlock()
		case "release":
			mu.Lock()
			for i := range kept {
				for _, s := range kept[i] {
					_ = s.Release()
				}
				kept[i] = nil
			}
			mu.Unlock()
			fmt.Println("released")
		}
	}
	quiesce()
	wg.Wait()
	for _, s := range subs {
		_ = s.Close()
	}
	return 0
}

// expectLine reads p's stdout until a line starting with prefix.
func (p *chaosProc) expectLine(t *testing.T, prefix string) string {
	t.Helper()
	for p.out.Scan() {
		if strings.HasPrefix(p.out.Text(), prefix) {
			return p.out.Text()
		}
	}
	t.Fatalf("%s %v ended without a %q line: %v", p.role, p.args, prefix, p.out.Err())
	return ""
}

func (p *chaosProc) say(t *testing.T, line string) {
	t.Helper()
	_, err := p.in.(interface{ Write([]byte) (int, error) }).Write([]byte(line + "\n"))
	require.NoError(t, err)
}

// memfdPubIDs returns the publisher ids of the "plx:<domain>:p<id>." memfds
// named in the lines of a /proc fd listing or maps file.
func memfdPubIDs(domain string, lines []string) map[uint32]bool {
	re := regexp.MustCompile(`plx:` + regexp.QuoteMeta(domain) + `:p(\d+)\.`)
	ids := map[uint32]bool{}
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 32)
			ids[uint32(n)] = true
		}
	}
	return ids
}

func fdTargets(t *testing.T, pid int) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			out = append(out, l)
		}
	}
	return out
}

func TestChaosOwned(t *testing.T) {
	kills := 500
	if s := os.Getenv("PARALLAX_CHAOS_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		kills = n
	}
	rng := testutil.Rand(t)
	srv := routertest.StartWith(t, ownedChaosConfig, roudi.Options{Nice: -10})
	sock, domain := srv.SocketPath(), srv.Config().Domain
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// The idle client: attached from start to end, doing nothing.
	idle, err := discovery.Dial(ctx, discovery.DialOptions{Socket: sock, Name: "idle"})
	require.NoError(t, err)
	defer idle.Close()

	stable := []*chaosProc{
		startChaos(t, "ownsub", "-socket", sock),
		startChaos(t, "ownsub", "-socket", sock, "-block", "-hold", "3"),
	}
	var pubs, subs []*chaosProc
	for i := range chaosTopics {
		pubs = append(pubs, startChaos(t, "ownpub", "-socket", sock, "-topic", fmt.Sprintf("chaos/%d", i)))
	}
	for range 3 {
		subs = append(subs, startChaos(t, "ownsub", "-socket", sock, "-hold", "5"))
	}
	subs = append(subs, startChaos(t, "ownsub", "-socket", sock, "-block"))

	restarted := map[*chaosProc]bool{}
	start := time.Now()
	for k := range kills {
		time.Sleep(time.Duration(2+rng.IntN(30)) * time.Millisecond) // a random kill instant
		group := subs
		if k%2 == 0 {
			group = pubs
		}
		i := rng.IntN(len(group))
		v := group[i]
		require.NoError(t, v.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
		_ = v.cmd.Wait()
		group[i] = startChaosAsync(t, v.role, v.args...)
		restarted[group[i]] = true
	}
	killTime := time.Since(start)

	// Quiesce with everyone attached: restarted victims come up, the
	// publishers stop once every subscriber is connected, the subscribers
	// take what is queued and report what they hold.
	all := append(append(append([]*chaosProc{}, stable...), subs...), pubs...)
	for _, p := range append(subs, pubs...) {
		if !restarted[p] {
			continue // its "ready" was read at the start
		}
		require.Equal(t, "ready", p.expectLine(t, "ready"), "%s %v", p.role, p.args)
	}
	nSubs := len(stable) + len(subs)
	type pubState struct{ history, loans, inUse int }
	live := map[uint32]pubState{}
	for _, p := range pubs {
		p.say(t, fmt.Sprintf("pause %d", nSubs))
		var id uint32
		var st pubState
		_, err := fmt.Sscanf(p.expectLine(t, "paused "), "paused %d %d %d %d", &id, &st.history, &st.loans, &st.inUse)
		require.NoError(t, err)
		live[id] = st
	}
	held := map[uint32]int{}
	for _, s := range append(append([]*chaosProc{}, stable...), subs...) {
		s.say(t, "quiesce")
		line := s.expectLine(t, "held")
		f := strings.Fields(line)
		i := 1
		for ; i < len(f) && strings.Contains(f[i], ":"); i++ {
			var p uint32
			var n int
			_, err := fmt.Sscanf(f[i], "%d:%d", &p, &n)
			require.NoError(t, err)
			require.Contains(t, live, p, "%s %v holds samples of publisher %d, which is not live: %s", s.role, s.args, p, line)
			held[p] += n
		}
		var got, bad int
		_, err := fmt.Sscanf(strings.Join(f[i:], " "), "received %d bad %d", &got, &bad)
		require.NoError(t, err, line)
		require.Zero(t, bad, "%s %v saw corrupted, duplicated or reordered samples", s.role, s.args)
		if slicesContains(stable, s) {
			require.Positive(t, got)
			t.Logf("stable subscriber %v received %d samples, 0 bad", s.args[2:], got)
		}
	}

	// check waits until the router shows, for every live publisher, what
	// want says and nothing of any other publisher.
	check := func(what string, want func(id uint32, m roudi.PublisherMemory) bool) *roudi.Introspection {
		deadline := time.Now().Add(60 * time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			in, err := srv.Introspect(ctx)
			require.NoError(t, err)
			ok, seen := true, map[uint32]bool{}
			for _, r := range in.PublisherSegments {
				seen[r.PubID] = true
				if _, isLive := live[r.PubID]; !isLive || !r.Reported || !want(r.PubID, r.Memory) {
					ok = false
				}
			}
			if ok && len(seen) == len(live) {
				return in
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: live publishers %v, held %v; the router shows %+v", what, live, held, in.PublisherSegments)
			}
			<-tick.C
		}
	}
	// Outstanding counts deliveries (one per connection), in use counts
	// chunks: subscribers holding the same sample share its chunk, and the
	// history's chunks may be held too.
	check("held samples exactly accounted", func(id uint32, m roudi.PublisherMemory) bool {
		st := live[id]
		return int(m.Outstanding) == held[id] && m.Loans == 0 && int(m.History) == st.history &&
			int(m.InUse) >= st.history && int(m.InUse) <= st.history+held[id]
	})
	for _, s := range append(append([]*chaosProc{}, stable...), subs...) {
		s.say(t, "release")
		s.expectLine(t, "released")
	}
	in := check("everything returned but the history", func(id uint32, m roudi.PublisherMemory) bool {
		return m.Outstanding == 0 && m.Loans == 0 && int(m.InUse) == live[id].history && int(m.History) == live[id].history
	})

	// Dead publishers' memfds: not open in the router (this process), not
	// mapped by any live child.
	for id := range memfdPubIDs(domain, fdTargets(t, os.Getpid())) {
		require.Contains(t, live, id, "the router still holds a memfd of dead publisher %d", id)
	}
	for _, p := range all {
		maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", p.cmd.Process.Pid))
		require.NoError(t, err)
		for id := range memfdPubIDs(domain, strings.Split(string(maps), "\n")) {
			require.Contains(t, live, id, "%s %v (pid %d) still maps a segment of dead publisher %d", p.role, p.args, p.cmd.Process.Pid, id)
		}
	}
	require.NoError(t, idle.Err(), "the idle client stayed attached")
	var procs []string
	for _, p := range in.Processes {
		procs = append(procs, p.Name)
	}
	require.Contains(t, procs, "idle")

	for _, p := range all {
		_ = p.in.Close()
		for p.out.Scan() {
		}
		require.NoError(t, p.cmd.Wait(), "%s %v", p.role, p.args)
	}
	ids := make([]int, 0, len(live))
	for id := range live {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	t.Logf("owned chaos: %d kills in %v, live publishers %v (history, loans, in use at pause: %v), held at quiesce %v",
		kills, killTime.Round(time.Millisecond), ids, live, held)
	fmt.Printf("CHAOS-OWNED kills=%d kill-phase=%v held=%v\n", kills, killTime.Round(time.Millisecond), held)
}

func slicesContains(ps []*chaosProc, p *chaosProc) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}
