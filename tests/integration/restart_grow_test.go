//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Router restart with a publisher's growth and dedicated segments
// (docs/design/memory-ownership.md §8.2, §8.7): the restarted router
// adopts every index, not only segment 0.

func init() {
	childRoles["rgpub"] = restartGrowPubMain
	childRoles["rgsub"] = restartGrowSubMain
}

// poolList formats a set of segment indices as "1,2" ("-" when empty).
func poolList(set map[uint32]bool) string {
	var s []string
	for _, i := range slices.Sorted(func(yield func(uint32) bool) {
		for i := range set {
			if !yield(i) {
				return
			}
		}
	}) {
		s = append(s, strconv.Itoa(int(i)))
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

// restartGrowPubMain publishes on "rg" (256-byte class) on command, one
// stdin line each, answering with one line:
//
//	grow         loan class chunks, keeping them, until one lands in a
//	             segment index not seen before; release that one:
//	             "grew <index> <kept>"
//	pub <n> <sz> publish n samples of sz bytes (seq, pattern): "pubd
//	             <first> <last> <indices>"
//	unhold       release the kept loans: "unheld <n>"
//	stats        "mem <segments> <chunks> <free> <loans> <outstanding>
//	             <grown> <retired>"
//
// It prints "ready <publisher id>" first and closes at stdin EOF.
func restartGrowPubMain(args []string) int {
	fs := flag.NewFlagSet("rgpub", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	retire := fs.Duration("retire-after", 0, "")
	if fs.Parse(args) != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pub, err := publisher.New(ctx, "rg", publisher.Options{Socket: *socket, MaxPayload: 256, RetireAfter: *retire, BlockTimeout: time.Minute})
	if err != nil {
		return childFail("rgpub", "%v", err)
	}
	if err := pub.WaitForSubscribers(ctx, 1); err != nil {
		return childFail("rgpub", "wait for the subscriber: %v", err)
	}
	fmt.Printf("ready %d\n", pub.ID())
	seen := map[uint32]bool{0: true}
	var kept []publisher.Chunk
	var seq uint64
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 1 && f[0] == "grow":
			for {
				if len(kept) > 1<<16 {
					return childFail("rgpub", "no new segment after %d loans", len(kept))
				}
				c, err := pub.Loan(256)
				if err != nil {
					return childFail("rgpub", "grow: loan after %d: %v", len(kept), err)
				}
				if i := c.Ref().Pool(); !seen[i] {
					seen[i] = true
					if err := pub.Release(c); err != nil {
						return childFail("rgpub", "grow: release: %v", err)
					}
					fmt.Printf("grew %d %d\n", i, len(kept))
					break
				}
				kept = append(kept, c)
			}
		case len(f) == 3 && f[0] == "pub":
			n, err1 := strconv.Atoi(f[1])
			size, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil || n <= 0 || size < 8 {
				return childFail("rgpub", "bad line %q", in.Text())
			}
			used := map[uint32]bool{}
			first := seq + 1
			for range n {
				c, err := pub.Loan(size)
				if err != nil {
					return childFail("rgpub", "loan %d bytes: %v", size, err)
				}
				seq++
				fill(c.Bytes(), seq)
				used[c.Ref().Pool()], seen[c.Ref().Pool()] = true, true
				if err := pub.Publish(c); err != nil {
					return childFail("rgpub", "publish %d: %v", seq, err)
				}
			}
			fmt.Printf("pubd %d %d %s\n", first, seq, poolList(used))
		case len(f) == 1 && f[0] == "unhold":
			for _, c := range kept {
				if err := pub.Release(c); err != nil {
					return childFail("rgpub", "unhold: %v", err)
				}
			}
			fmt.Printf("unheld %d\n", len(kept))
			kept = nil
		case len(f) == 1 && f[0] == "stats":
			m := pub.Stats().Memory
			fmt.Printf("mem %d %d %d %d %d %d %d\n", m.Segments, m.Chunks, m.Free, m.Loans, m.Outstanding, m.Grown, m.Retired)
		default:
			return childFail("rgpub", "bad line %q", in.Text())
		}
	}
	if err := pub.Close(); err != nil {
		return childFail("rgpub", "close: %v", err)
	}
	return 0
}

// heldSample is a sample restartGrowSubMain keeps, with the seq it had.
type heldSample struct {
	s   subscriber.Sample
	seq uint64
}

// restartGrowSubMain subscribes to "rg" (block-producer, queue 32, 32
// held) and on "take <n>" takes n samples, checking order and content,
// and keeps them: "took <first> <last> <bad> <indices>"; on "release" it
// checks every kept sample again and releases it: "released <n> <bad>".
// It prints "ready" first and closes at stdin EOF.
func restartGrowSubMain(args []string) int {
	fs := flag.NewFlagSet("rgsub", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	if fs.Parse(args) != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "rg", subscriber.Options{Socket: *socket, QueueCapacity: 32, MaxHeld: 32, Policy: subscriber.BlockProducer})
	if err != nil {
		return childFail("rgsub", "%v", err)
	}
	fmt.Println("ready")
	var held []heldSample
	var last uint64
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var n int
		switch _, err := fmt.Sscanf(in.Text(), "take %d", &n); {
		case err == nil && n > 0:
			used := map[uint32]bool{}
			bad, first := 0, last+1
			for range n {
				s, err := sub.TakeTimeout(20 * time.Second)
				if err != nil {
					return childFail("rgsub", "take after seq %d: %v", last, err)
				}
				last++
				if b := s.Bytes(); len(b) < 8 || binary.LittleEndian.Uint64(b) != last || verify(b, last) != nil {
					bad++
				}
				used[s.Ref().Pool()] = true
				held = append(held, heldSample{s, last})
			}
			fmt.Printf("took %d %d %d %s\n", first, last, bad, poolList(used))
		case in.Text() == "release":
			bad := 0
			for _, h := range held {
				if verify(h.s.Bytes(), h.seq) != nil {
					bad++
				}
				if h.s.Release() != nil {
					bad++
				}
			}
			fmt.Printf("released %d %d\n", len(held), bad)
			held = nil
		default:
			return childFail("rgsub", "bad line %q", in.Text())
		}
	}
	if err := sub.Close(); err != nil {
		return childFail("rgsub", "close: %v", err)
	}
	return 0
}

// rgSegments returns the router's data segment rows of publisher pub by
// index, once cond accepts them (or fails after a deadline).
func rgSegments(t *testing.T, srv *roudi.Server, pub uint32, what string, cond func(map[uint16]roudi.PublisherSegStat) bool) map[uint16]roudi.PublisherSegStat {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		in, err := srv.Introspect(t.Context())
		require.NoError(t, err)
		rows := map[uint16]roudi.PublisherSegStat{}
		for _, s := range in.PublisherSegments {
			if s.PubID == pub {
				rows[s.Index] = s
			}
		}
		if cond(rows) {
			return rows
		}
		require.True(t, time.Now().Before(deadline), "%s: the router lists %+v", what, rows)
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// rgPubStats asks the rgpub child for its memory stats until cond accepts
// them (or fails after a deadline) and returns them.
func rgPubStats(t *testing.T, pub *proc, cond func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pub.send("stats")
		f := pub.expect("mem ")
		if cond(f) {
			return f
		}
		require.True(t, time.Now().Before(deadline), "the publisher's stats stay %v", f)
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// indices reports whether rows has exactly the indices want.
func indices(rows map[uint16]roudi.PublisherSegStat, want ...uint16) bool {
	if len(rows) != len(want) {
		return false
	}
	for _, i := range want {
		if _, ok := rows[i]; !ok {
			return false
		}
	}
	return true
}

// rgConfig is testConfig (the owned model) with normal pages only, so
// that every segment is backed the same way whatever the machine has.
const rgConfig = testConfig + `
[publishers]
hugepages = "never"
`

// TestRouterRestartAdoptsGrownSegments: a publisher process whose loans
// exhausted its first segment (growth segment 1) and that loaned chunks
// larger than its 256-byte class (dedicated segment 2), with a subscriber
// process holding samples of both and more queued, survives a router
// SIGKILL: the restarted router adopts all three indices (introspection
// names the publisher, its pid and each index), the held and queued
// samples arrive intact, the publisher keeps loaning from the adopted
// segments, grows a new class segment and a new dedicated one in indices
// 3 and 4 (no collision), retires its idle dedicated segments through the
// new router (index 2 is then reused), and when both clients leave, with
// an idle client still attached, the router lists no segment and no
// process maps or holds one.
func TestRouterRestartAdoptsGrownSegments(t *testing.T) {
	dir, sock, domain, r1 := startRestartableRouter(t, "rgs", rgConfig)

	sub := spawn(t, "sub", "rgsub", "-socket", sock)
	sub.expect("ready")
	pub := spawn(t, "pub", "rgpub", "-socket", sock, "-retire-after", "1s")
	pubID := uint32(atoi(t, pub.expect("ready ")[0]))

	// Growth: segment 0 all loaned (kept), the next loan lands in 1.
	pub.send("grow")
	require.Equal(t, "1", pub.expect("grew ")[0], "the first growth segment")
	pub.send("pub 20 256")
	require.Equal(t, []string{"1", "20", "1"}, pub.expect("pubd "), "small samples from growth segment 1")
	pub.send("pub 3 100000")
	require.Equal(t, []string{"21", "23", "2"}, pub.expect("pubd "), "oversized samples from dedicated segment 2")
	sub.send("take 21")
	require.Equal(t, []string{"1", "21", "0", "1,2"}, sub.expect("took "), "held: 20 of segment 1, 1 of segment 2")

	killRouter(t, r1)
	// No router: two more samples queue (growth segment 1).
	pub.send("pub 2 256")
	require.Equal(t, []string{"24", "25", "1"}, pub.expect("pubd "))

	srv, ctx := startSuccessorWith(t, rgConfig, domain, sock, dir, 10*time.Second)
	require.True(t, srv.Adopted())
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.True(t, waitSnapshot(waitCtx, srv, func(s roudi.Snapshot) bool { return len(s.Clients) == 2 && len(s.Connections) == 1 }),
		"the clients did not resume")

	// Introspection: the adopted segments, with their publisher.
	rows := rgSegments(t, srv, pubID, "adopted segments 0, 1, 2", func(r map[uint16]roudi.PublisherSegStat) bool { return indices(r, 0, 1, 2) })
	for i, r := range rows {
		require.Equal(t, "rg", r.Topic, "segment %d", i)
		require.Equal(t, int32(pub.cmd.Process.Pid), r.PID, "segment %d", i)
		require.False(t, r.Dead, "segment %d", i)
	}
	require.Equal(t, rows[0].ChunkSize, rows[1].ChunkSize, "segment 1 grows the class")
	require.GreaterOrEqual(t, rows[2].ChunkSize, uint32(100000), "segment 2 is dedicated")

	// What was in flight in segments 1 and 2 arrives intact.
	sub.send("take 4")
	require.Equal(t, []string{"22", "25", "0", "1,2"}, sub.expect("took "))

	// The publisher keeps loaning from the adopted segments (segment 0 is
	// still all kept): the dedicated one is reused, not replaced (it never
	// idles: the subscriber holds samples of it until seq 36 is queued).
	pub.send("pub 10 256")
	require.Equal(t, []string{"26", "35", "1"}, pub.expect("pubd "), "small loans from adopted segment 1")
	pub.send("pub 1 100000")
	require.Equal(t, []string{"36", "36", "2"}, pub.expect("pubd "), "oversized loan from adopted segment 2")
	pub.send("stats")
	f := pub.expect("mem ")
	require.Equal(t, []string{"3", "2", "0"}, []string{f[0], f[5], f[6]}, "segments, grown, retired: adopted segment 2 reused: %v", f)

	// The samples held across the restart are still intact.
	sub.send("release")
	require.Equal(t, []string{"25", "0"}, sub.expect("released "))
	sub.send("take 11") // held until segments 3 and 4 exist: segment 2 stays busy
	require.Equal(t, []string{"26", "36", "0", "1,2"}, sub.expect("took "))

	// It grows past them: new indices, no collision.
	pub.send("grow")
	require.Equal(t, "3", pub.expect("grew ")[0], "growth after the restart takes a new index")
	pub.send("pub 1 300000")
	require.Equal(t, []string{"37", "37", "4"}, pub.expect("pubd "), "a larger oversized loan gets a new dedicated segment")
	rows = rgSegments(t, srv, pubID, "segments 0-4", func(r map[uint16]roudi.PublisherSegStat) bool { return indices(r, 0, 1, 2, 3, 4) })
	require.Equal(t, rows[0].ChunkSize, rows[3].ChunkSize, "segment 3 grows the class")
	require.Greater(t, rows[4].ChunkSize, rows[2].ChunkSize, "segment 4 is a larger dedicated class")
	sub.send("take 1")
	require.Equal(t, []string{"37", "37", "0", "4"}, sub.expect("took "))
	sub.send("release")
	require.Equal(t, []string{"12", "0"}, sub.expect("released "))

	// Retirement through the new router: both dedicated segments, the
	// adopted one included, go once idle; index 2 is reused.
	pub.send("unhold")
	pub.expect("unheld ")
	rgSegments(t, srv, pubID, "dedicated segments 2 and 4 retired", func(r map[uint16]roudi.PublisherSegStat) bool { return indices(r, 0, 1, 3) })
	// The publisher counts a retirement once the router acknowledged it,
	// which may be after the router's introspection already shows it.
	f = rgPubStats(t, pub, func(f []string) bool { return f[6] == "2" })
	require.Equal(t, "3", f[0], "publisher segments after retirement: %v", f)
	pub.send("pub 1 100000")
	require.Equal(t, []string{"38", "38", "2"}, pub.expect("pubd "), "a retired index is reused")
	pub.send("stats")
	f = pub.expect("mem ")
	require.Equal(t, []string{"4", "0", "1", "5"}, []string{f[0], f[3], f[4], f[5]}, "segments, loans, outstanding, grown: %v", f)
	sub.send("take 1")
	require.Equal(t, []string{"38", "38", "0", "2"}, sub.expect("took "))
	sub.send("release")
	require.Equal(t, []string{"1", "0"}, sub.expect("released "))

	// An idle client stays attached while the others leave: the router
	// frees every segment because its clients left, not because it idles.
	idle, err := discovery.Dial(waitCtx, discovery.DialOptions{Socket: sock, Name: "idle"})
	require.NoError(t, err)
	defer idle.Close()
	sub.wait()
	pub.wait()
	(&router{srv: srv}).requireNoPublisherSegments(t)
	name := fmt.Sprintf("plx:%s:", domain)
	for {
		h := segmentHolders(name)
		if len(h) == 0 {
			break
		}
		select {
		case <-waitCtx.Done():
			t.Fatalf("segments of the domain still held after the clients left: %v", h)
		case <-time.After(5 * time.Millisecond):
		}
	}
	require.True(t, waitSnapshot(waitCtx, srv, func(s roudi.Snapshot) bool { return len(s.Clients) == 1 }), "only the idle client is left")
}
