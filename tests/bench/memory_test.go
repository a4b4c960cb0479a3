//go:build linux

package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// memSetup is one row group of TestMemoryTable: one publisher process per
// topic, each publishing msgs samples of pub bytes to subs subscriber
// processes that each subscribe to every topic.
type memSetup struct {
	name                    string
	topics, subs, pub, msgs int
}

// memRow is what one router and its clients cost in one model and setup.
type memRow struct {
	model, setup string
	routerRSS    uint64 // router process VmRSS
	routerShmem  uint64 // of which shared memory (RssShmem)
	created      uint64 // bytes of every Parallax memfd the router holds
	segments     int    // how many (distinct memfds)
	pubMaps      int    // Parallax mappings per publisher process
	subMaps      int    // Parallax mappings per subscriber process
	pubMapped    uint64 // bytes of them per publisher process
	pubResident  uint64 // of them resident (Rss in /proc/<pid>/smaps) per publisher process
	subMapped    uint64 // bytes of them per subscriber process
}

// TestMemoryTable measures what a router costs in memory for a few setups,
// with every client still attached after streaming: the router's resident
// memory, the bytes of shared memory it created (every Parallax memfd it
// holds: publisher data and connection segments, each memfd once) and the
// Parallax mappings of each client process (lines of /proc/<pid>/maps
// naming a Parallax memfd, and their bytes). Router RSS includes the race
// detector's overhead under -race. The router runs on the embedded default
// configuration. It logs the table and asserts a generous bound, not a
// timing: one small publisher creates less than 16 MiB of shared memory
// (the removed shared model took ~220 MiB, design
// docs/design/memory-ownership.md §8.10).
func TestMemoryTable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 6 routers and their client processes; skipped under -short")
	}
	setups := []memSetup{
		{name: "1 pub 64 B, 1 sub", topics: 1, subs: 1, pub: 64, msgs: 1000},
		{name: "1 pub 64 B, 16 subs", topics: 1, subs: 16, pub: 64, msgs: 1000},
		{name: "10 topics x 1 pub x 2 subs, 64 B", topics: 10, subs: 2, pub: 64, msgs: 1000},
		{name: "1 pub 4 MiB, 1 sub", topics: 1, subs: 1, pub: 4 << 20, msgs: 50},
		{name: "1 pub 4 MiB, 16 subs", topics: 1, subs: 16, pub: 4 << 20, msgs: 50},
		{name: "1 pub 8 MiB frames, 1 sub", topics: 1, subs: 1, pub: 8 << 20, msgs: 20},
	}
	var rows []memRow
	for _, s := range setups {
		rows = append(rows, memoryRow(t, "owned", s))
	}
	var tb strings.Builder
	fmt.Fprintf(&tb, "\n%-34s %-7s %10s %10s %12s %5s %9s %9s %12s %12s %12s\n", "SETUP", "MODEL", "ROUTER RSS", "RSS SHMEM", "SHM CREATED", "SEGS", "PUB MAPS", "SUB MAPS", "PUB MAPPED", "SUB MAPPED", "PUB RESIDENT")
	for _, r := range rows {
		fmt.Fprintf(&tb, "%-34s %-7s %10s %10s %12s %5d %9d %9d %12s %12s %12s\n", r.setup, r.model,
			mib(r.routerRSS), mib(r.routerShmem), mib(r.created), r.segments, r.pubMaps, r.subMaps, mib(r.pubMapped), mib(r.subMapped), mib(r.pubResident))
	}
	t.Log(tb.String())

	if small := rows[0]; small.created >= 16<<20 {
		t.Errorf("one small publisher: the router created %s of shared memory, want < 16 MiB", mib(small.created))
	}
}

func mib(n uint64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// memoryRow runs one router in model with the clients of s, streams
// s.msgs samples per publisher (every subscriber receives each one:
// block-producer), and measures with everything attached.
func memoryRow(t *testing.T, model string, s memSetup) memRow {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "roudi.sock")
	router := startMemChild(t, "mem-router", sock)
	router.expect(t, "ready")

	var subs, pubs []*memChild
	for range s.subs {
		subs = append(subs, startMemChild(t, "mem-sub", sock, strconv.Itoa(s.topics), strconv.Itoa(s.msgs)))
	}
	for i := range s.topics {
		pubs = append(pubs, startMemChild(t, "mem-pub", sock, memTopic(i), strconv.Itoa(s.subs), strconv.Itoa(s.msgs), strconv.Itoa(s.pub)))
	}
	for _, c := range append(append([]*memChild{}, pubs...), subs...) {
		c.expect(t, "done")
	}
	row := memRow{model: model, setup: s.name}
	row.routerRSS = procStatus(t, router.pid(), "VmRSS")
	row.routerShmem = procStatus(t, router.pid(), "RssShmem")
	row.created, row.segments = memfdBytes(t, router.pid())
	for _, c := range pubs {
		n, b := plxMaps(t, c.pid())
		row.pubMaps += n
		row.pubMapped += b
		row.pubResident += plxResident(t, c.pid())
	}
	for _, c := range subs {
		n, b := plxMaps(t, c.pid())
		row.subMaps += n
		row.subMapped += b
	}
	row.pubMaps /= len(pubs)
	row.pubMapped /= uint64(len(pubs))
	row.pubResident /= uint64(len(pubs))
	row.subMaps /= len(subs)
	row.subMapped /= uint64(len(subs))
	for _, c := range append(append(pubs, subs...), router) {
		c.stop(t)
	}
	return row
}

func memTopic(i int) string { return "mem" + strconv.Itoa(i) }

// procStatus reads a "<key>: <n> kB" line of /proc/<pid>/status in bytes.
func procStatus(t *testing.T, pid int, key string) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == key+":" {
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/status %q: %v", pid, l, err)
			}
			return n << 10
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, key)
	return 0
}

// memfdBytes sums the sizes of the Parallax memfds open in process pid,
// each once (a read-only twin fd is the same memfd).
func memfdBytes(t *testing.T, pid int) (bytes uint64, n int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.HasPrefix(link, "/memfd:parallax-") {
			continue // closed meanwhile, or not ours
		}
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok || seen[sys.Ino] {
			continue
		}
		seen[sys.Ino] = true
		bytes += uint64(st.Size())
		n++
	}
	return bytes, n
}

// plxMaps counts the Parallax mappings of process pid and their bytes.
func plxMaps(t *testing.T, pid int) (n int, size uint64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.Contains(l, []byte("memfd:parallax-")) {
			continue
		}
		lo, hi, ok := strings.Cut(string(bytes.Fields(l)[0]), "-")
		if !ok {
			continue
		}
		a, _ := strconv.ParseUint(lo, 16, 64)
		z, _ := strconv.ParseUint(hi, 16, 64)
		n++
		size += z - a
	}
	return n, size
}

// plxResident sums the resident bytes of the Parallax mappings of process
// pid, from /proc/<pid>/smaps: Rss, plus the hugetlb pages that Rss leaves
// out.
func plxResident(t *testing.T, pid int) (rss uint64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, l := range bytes.Split(b, []byte("\n")) {
		f := bytes.Fields(l)
		if len(f) == 0 {
			continue
		}
		if bytes.IndexByte(f[0], '-') > 0 && !bytes.HasSuffix(f[0], []byte(":")) { // a mapping's header line
			in = bytes.Contains(l, []byte("memfd:parallax-"))
			continue
		}
		if k := string(f[0]); in && len(f) >= 2 && (k == "Rss:" || k == "Shared_Hugetlb:" || k == "Private_Hugetlb:") {
			kb, _ := strconv.ParseUint(string(f[1]), 10, 64)
			rss += kb << 10
		}
	}
	return rss
}

// memChild is a child process of TestMemoryTable: it prints one word per
// stage and ends when its stdin closes.
type memChild struct {
	role  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan error
}

func startMemChild(t *testing.T, role string, args ...string) *memChild {
	t.Helper()
	c := &memChild{role: role, cmd: testutil.ChildCommand(t, role, nil, args...), lines: make(chan string, 4), done: make(chan error, 1)}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = os.Stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", role, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.done <- c.cmd.Wait()
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *memChild) pid() int { return c.cmd.Process.Pid }

func (c *memChild) expect(t *testing.T, word string) {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok || l != word {
			t.Fatalf("%s (PID %d): got %q, want %q", c.role, c.pid(), l, word)
		}
	case <-time.After(childTimeout):
		t.Fatalf("%s (PID %d): no %q line after %v", c.role, c.pid(), word, childTimeout)
	}
}

// stop closes the child's stdin and waits for it to exit (killing it,
// by its PID, after childTimeout). It may be called more than once.
func (c *memChild) stop(t *testing.T) {
	if c.stdin == nil {
		return
	}
	_ = c.stdin.Close()
	c.stdin = nil
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("%s: %v", c.role, err)
		}
	case <-time.After(childTimeout):
		t.Errorf("%s (PID %d) did not exit; killing it", c.role, c.pid())
		_ = c.cmd.Process.Kill()
		for range c.lines {
		}
		_ = <-c.done
	}
}

// memRouterMain is the "mem-router" child: a router on the embedded
// default configuration (args: socket). It prints "ready" and serves until
// stdin closes.
func memRouterMain(args []string) int {
	cfg := roudi.DefaultConfig()
	cfg.Socket = args[0]
	cfg.RuntimeDir = filepath.Dir(args[0])
	cfg.Domain = fmt.Sprintf("memtab%d", os.Getpid())
	return serveRouterChild("mem-router", cfg)
}

// memPubMain is the "mem-pub" child (args: socket, topic, subscribers,
// messages, payload size): it declares the payload size as its maximum,
// waits for its subscribers, publishes, prints "done" and keeps its
// publisher open until stdin closes.
func memPubMain(args []string) int {
	nsubs, _ := strconv.Atoi(args[2])
	msgs, _ := strconv.Atoi(args[3])
	size, _ := strconv.Atoi(args[4])
	ctx, cancel := context.WithTimeout(context.Background(), 10*childTimeout)
	defer cancel()
	p, err := publisher.New(ctx, args[1], publisher.Options{Socket: args[0], MaxPayload: size, BlockTimeout: childTimeout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mem-pub:", err)
		return 1
	}
	defer p.Close()
	if err := p.WaitForSubscribers(ctx, nsubs); err != nil {
		fmt.Fprintln(os.Stderr, "mem-pub: wait for subscribers:", err)
		return 1
	}
	for range msgs {
		c, err := loan(p, size)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mem-pub: loan:", err)
			return 1
		}
		fill(c.Bytes(), cmdData)
		if err := p.Publish(c); err != nil {
			fmt.Fprintln(os.Stderr, "mem-pub: publish:", err)
			return 1
		}
	}
	fmt.Println("done")
	untilStdinCloses()
	return 0
}

// memSubMain is the "mem-sub" child (args: socket, topics, messages per
// topic): a block-producer subscriber of every topic that takes and
// releases every sample, prints "done" and stays attached until stdin
// closes.
func memSubMain(args []string) int {
	n, _ := strconv.Atoi(args[1])
	msgs, _ := strconv.Atoi(args[2])
	ctx, cancel := context.WithTimeout(context.Background(), 10*childTimeout)
	defer cancel()
	subs := make([]*subscriber.Subscriber, n)
	for i := range subs {
		s, err := subscriber.New(ctx, memTopic(i), subscriber.Options{Socket: args[0], Policy: subscriber.BlockProducer})
		if err != nil {
			fmt.Fprintln(os.Stderr, "mem-sub:", err)
			return 1
		}
		defer s.Close()
		subs[i] = s
	}
	for _, s := range subs {
		for range msgs {
			smp, err := s.Take(ctx)
			if err != nil {
				fmt.Fprintln(os.Stderr, "mem-sub: take:", err)
				return 1
			}
			touch(smp.Bytes())
			if err := smp.Release(); err != nil {
				fmt.Fprintln(os.Stderr, "mem-sub: release:", err)
				return 1
			}
		}
	}
	fmt.Println("done")
	untilStdinCloses()
	return 0
}
