//go:build linux

package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/atomiccount"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// BenchmarkFanOut publishes one topic from one publisher process to subs
// subscriber processes (1 and 16: 17 processes on however many cores the
// machine has, so per-subscriber rates must fall). Every subscriber is
// block-producer, so each one receives every message: delivered = published
// × subs. It reports the aggregate delivered-msgs/s and cpu-ns/delivered,
// the user+system CPU time of every process involved (router, publisher,
// subscribers) divided by the messages delivered. Built with -tags
// parallax_countatomics it also reports shm-atomics/op and shm-locked/op:
// the shared-memory atomic operations of every process (each child
// counts its own and prints them on its "done" line) per delivered
// message:
//
//	go test -run='^$' -bench='FanOut|Grid' -benchtime=200000x ./tests/bench
func BenchmarkFanOut(b *testing.B) {
	for _, size := range []int{64, 4 << 10} {
		for _, subs := range []int{1, 16} {
			b.Run(fmt.Sprintf("payload=%d/subs=%d", size, subs), func(b *testing.B) {
				benchGrid(b, grid{pubs: 1, topics: 1, subs: subs, size: size})
			})
		}
	}
}

// BenchmarkGrid runs pubs publisher processes, each publishing its share
// of topics, to subs subscriber processes that each subscribe to every
// topic (one connection per topic and subscriber process), flat out and
// lossless (block-producer). 1x1x1 is the baseline the 10x100x10 grid's
// cpu-ns/delivered is compared to. Besides the rates it reports
// setup-us/conn (the time a subscriber process needs from creating its
// first subscriber until every one of them is connected, divided by its
// subscribers, averaged over the processes), setup-cpu-us/conn and
// router-setup-cpu-us/conn (the CPU time of every process, of the
// in-process router, from the children's start until all are ready,
// divided by the connections: topics x subscriber processes; child
// start-up included) and mappings/proc (Parallax
// mappings in /proc/<pid>/maps, averaged over the client processes),
// cpu-ns/delivered split by role (router-, pub-, sub-cpu-ns/delivered;
// /proc's CPU times tick in 10 ms, so short runs are coarse) and
// minflt/delivered (minor page faults of the client processes while
// streaming), waits/delivered (the subscriber processes' WaitSet.Wait
// calls) and wakes/delivered (the wake system calls publishers made for
// them: a wake-up per message defeats batching).
// b.N is the number of messages published in all (split evenly over the
// publisher processes and, within one, round-robin over its topics). With
// PARALLAX_BENCH_GRID_PROFILE=dir every publisher and subscriber process
// writes a CPU profile of its streaming phase there
// (grid-pub-PID.pprof, grid-sub-PID.pprof).
func BenchmarkGrid(b *testing.B) {
	for _, g := range []grid{{pubs: 1, topics: 1, subs: 1, size: 64}, {pubs: 10, topics: 100, subs: 10, size: 64}} {
		b.Run(fmt.Sprintf("grid=%dx%dx%d/payload=%d", g.pubs, g.topics, g.subs, g.size), func(b *testing.B) {
			benchGrid(b, g)
		})
	}
}

// grid is the shape of a BenchmarkGrid or BenchmarkFanOut run.
type grid struct {
	pubs, topics, subs, size int
}

// gridConfig has room for 100 topics x 10 subscriber processes; memory is
// sized per publisher.
const gridConfig = `
[limits]
max_clients = 64
max_topics = 1024
max_publishers = 1024
max_subscribers = 2048
max_connections = 4096
[publishers]
hugepages = "never"
`

// gridQueue is every subscriber's queue capacity.
const gridQueue = 256

func benchGrid(b *testing.B, g grid) {
	srv := routertest.Start(b, gridConfig)
	sock := srv.SocketPath()
	perPub := g.topics / g.pubs
	total := b.N
	roles := cpuRoles{}
	selfBefore := selfCPU() // the router's (and this process's) CPU before set-up
	var pubs []*lineChild
	for i := range g.pubs {
		n := total / g.pubs
		if i < total%g.pubs {
			n++
		}
		c := startLineChild(b, "grid-pub", sock, strconv.Itoa(i*perPub), strconv.Itoa(perPub),
			strconv.Itoa(g.subs), strconv.Itoa(n), strconv.Itoa(g.size))
		roles[fmt.Sprintf("pub%d", i)] = c.cmd.Process.Pid
		pubs = append(pubs, c)
	}
	var subs []*lineChild
	for i := range g.subs {
		c := startLineChild(b, "grid-sub", sock, strconv.Itoa(g.topics))
		roles[fmt.Sprintf("sub%d", i)] = c.cmd.Process.Pid
		subs = append(subs, c)
	}
	// Ready lines: publishers once every topic has all its subscribers,
	// subscribers with their set-up time.
	var setup time.Duration
	var maps int
	for _, c := range subs {
		f := c.expect(b, "ready", 2)
		ns, _ := strconv.ParseInt(f[0], 10, 64)
		setup += time.Duration(ns) / time.Duration(g.topics)
		m, _ := strconv.Atoi(f[1])
		maps += m
	}
	for _, c := range pubs {
		f := c.expect(b, "ready", 1)
		m, _ := strconv.Atoi(f[0])
		maps += m
	}
	before := roles.sample()
	// Set-up CPU: the children's since they started, the router's since
	// they were started.
	var setupCPU time.Duration
	for role, t := range before {
		if role == "self" {
			t -= selfBefore
		}
		setupCPU += t
	}
	faultsBefore := map[string]uint64{}
	for role, pid := range roles {
		faultsBefore[role] = procFaults(pid)
	}
	routerAtomics := atomiccount.Snapshot() // the in-process router's
	var atomics atomiccount.Counts
	b.ResetTimer()
	start := time.Now()
	for _, c := range pubs {
		c.send(b, "go")
	}
	var delivered, waits, wakes uint64
	for _, c := range subs {
		f := c.expect(b, "done", 5)
		n, _ := strconv.ParseUint(f[0], 10, 64)
		delivered += n
		n, _ = strconv.ParseUint(f[1], 10, 64)
		waits += n
		n, _ = strconv.ParseUint(f[2], 10, 64)
		wakes += n
		atomics = addAtomics(atomics, f[3:])
	}
	el := time.Since(start)
	b.StopTimer()
	after := roles.sample()
	routerAtomics = atomiccount.Snapshot().Sub(routerAtomics)
	atomics.Ops += routerAtomics.Ops
	atomics.Locked += routerAtomics.Locked
	for _, c := range pubs {
		atomics = addAtomics(atomics, c.expect(b, "done", 2))
	}
	if want := uint64(total) * uint64(g.subs); delivered != want {
		b.Fatalf("delivered %d messages, want %d (%d published x %d subscribers): a lossless run lost some", delivered, want, total, g.subs)
	}
	var cpu, router, pubCPU time.Duration
	for role, t := range after {
		d := t - before[role]
		cpu += d
		switch {
		case role == "self":
			router += d
		case strings.HasPrefix(role, "pub"):
			pubCPU += d
		}
	}
	var faults uint64
	for role, pid := range roles {
		faults += procFaults(pid) - faultsBefore[role]
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(delivered) }
	b.ReportMetric(float64(delivered)/el.Seconds(), "delivered-msgs/s")
	b.ReportMetric(per(cpu), "cpu-ns/delivered")
	b.ReportMetric(per(router), "router-cpu-ns/delivered")
	b.ReportMetric(per(pubCPU), "pub-cpu-ns/delivered")
	b.ReportMetric(per(cpu-router-pubCPU), "sub-cpu-ns/delivered")
	b.ReportMetric(float64(faults)/float64(delivered), "minflt/delivered")
	b.ReportMetric(float64(waits)/float64(delivered), "waits/delivered")
	b.ReportMetric(float64(wakes)/float64(delivered), "wakes/delivered")
	b.ReportMetric(float64(setup.Microseconds())/float64(g.subs), "setup-us/conn")
	conns := float64(g.topics * g.subs)
	b.ReportMetric(float64(setupCPU.Microseconds())/conns, "setup-cpu-us/conn")
	b.ReportMetric(float64((before["self"]-selfBefore).Microseconds())/conns, "router-setup-cpu-us/conn")
	b.ReportMetric(float64(maps)/float64(g.pubs+g.subs), "mappings/proc")
	reportAtomics(b, atomics, delivered)
}

// addAtomics adds a child's "<ops> <locked>" fields to c.
func addAtomics(c atomiccount.Counts, f []string) atomiccount.Counts {
	ops, _ := strconv.ParseUint(f[0], 10, 64)
	locked, _ := strconv.ParseUint(f[1], 10, 64)
	return atomiccount.Counts{Ops: c.Ops + ops, Locked: c.Locked + locked}
}

// lineChild is a child process driven by lines: it writes "<word>
// fields..." on stdout at each stage and reads commands on stdin; it ends
// when its stdin closes.
type lineChild struct {
	role  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startLineChild(b *testing.B, role string, args ...string) *lineChild {
	b.Helper()
	c := &lineChild{role: role, cmd: testutil.ChildCommand(b, role, nil, args...), lines: make(chan string, 4)}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", role, err)
	}
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		done <- c.cmd.Wait()
	}()
	b.Cleanup(func() {
		_ = c.stdin.Close()
		select {
		case err := <-done:
			if err != nil && !b.Failed() {
				b.Errorf("%s: %v", role, err)
			}
		case <-time.After(childTimeout):
			b.Errorf("%s (PID %d) did not exit; killing it", role, c.cmd.Process.Pid)
			_ = c.cmd.Process.Kill()
			for range c.lines {
			}
			_ = <-done
		}
	})
	return c
}

// expect waits for the child's next line, which must be word followed by
// n fields, and returns the fields.
func (c *lineChild) expect(b *testing.B, word string, n int) []string {
	b.Helper()
	select {
	case l, ok := <-c.lines:
		f := strings.Fields(l)
		if !ok || len(f) != n+1 || f[0] != word {
			b.Fatalf("%s (PID %d): got %q, want %q and %d fields", c.role, c.cmd.Process.Pid, l, word, n)
		}
		return f[1:]
	case <-time.After(childTimeout):
		b.Fatalf("%s (PID %d): no %q line after %v", c.role, c.cmd.Process.Pid, word, childTimeout)
	}
	return nil
}

func (c *lineChild) send(b *testing.B, line string) {
	b.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		b.Fatalf("%s: %v", c.role, err)
	}
}

// gridTopic names topic i of a grid.
func gridTopic(i int) string { return "grid" + strconv.Itoa(i) }

// plxMappings counts this process's Parallax shared-memory mappings.
func plxMappings() int {
	m, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return -1
	}
	return bytes.Count(m, []byte("parallax-"))
}

// gridPubMain is a publisher process of BenchmarkGrid. Arguments: socket,
// first topic, topics, subscribers per topic, messages, payload size. It
// prints "ready <mappings>" once every topic has its subscribers, waits for
// "go", publishes, sends the quit command on every topic and prints
// "done <shm atomics> <locked>" (zeros unless built with
// parallax_countatomics).
func gridPubMain(args []string) int {
	if len(args) != 6 {
		fmt.Fprintln(os.Stderr, "grid-pub: want socket first topics subs messages size")
		return 2
	}
	first, _ := strconv.Atoi(args[1])
	topics, _ := strconv.Atoi(args[2])
	nsubs, _ := strconv.Atoi(args[3])
	msgs, _ := strconv.Atoi(args[4])
	size, _ := strconv.Atoi(args[5])
	ctx, cancel := context.WithTimeout(context.Background(), 10*childTimeout)
	defer cancel()
	pubs := make([]*publisher.Publisher, topics)
	for i := range pubs {
		p, err := publisher.New(ctx, gridTopic(first+i), gridPubOptions(args[0], size, nsubs))
		if err != nil {
			fmt.Fprintln(os.Stderr, "grid-pub:", err)
			return 1
		}
		defer p.Close()
		pubs[i] = p
	}
	for _, p := range pubs {
		if err := p.WaitForSubscribers(ctx, nsubs); err != nil {
			fmt.Fprintln(os.Stderr, "grid-pub: wait for subscribers:", err)
			return 1
		}
	}
	fmt.Printf("ready %d\n", plxMappings())
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "go" {
		fmt.Fprintln(os.Stderr, "grid-pub: no go")
		return 1
	}
	stopProfile := gridProfile("grid-pub")
	defer stopProfile()
	atomics := atomiccount.Snapshot()
	for i := range msgs {
		if err := gridSend(pubs[i%topics], size, cmdData); err != nil {
			fmt.Fprintln(os.Stderr, "grid-pub: publish:", err)
			return 1
		}
	}
	for _, p := range pubs {
		if err := gridSend(p, size, cmdQuit); err != nil {
			fmt.Fprintln(os.Stderr, "grid-pub: quit:", err)
			return 1
		}
	}
	atomics = atomiccount.Snapshot().Sub(atomics)
	stopProfile()
	fmt.Printf("done %d %d\n", atomics.Ops, atomics.Locked)
	untilStdinCloses()
	return 0
}

func gridSend(p *publisher.Publisher, size int, cmd byte) error {
	c, err := loan(p, size)
	if err != nil {
		return err
	}
	fill(c.Bytes(), cmd)
	return p.Publish(c)
}

// gridSubMain is a subscriber process of BenchmarkGrid: it subscribes to
// topics 0..n-1 (block-producer), prints "ready <setup-ns> <mappings>"
// once every subscriber is connected, reads every sample in full until
// each topic sent its quit command, and prints "done <samples> <waits>
// <wakes> <shm atomics> <locked>" (atomics counted from "ready"; zeros
// unless built with parallax_countatomics).
func gridSubMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "grid-sub: want socket topics")
		return 2
	}
	n, _ := strconv.Atoi(args[1])
	ctx, cancel := context.WithTimeout(context.Background(), 10*childTimeout)
	defer cancel()
	// PARALLAX_BENCH_GRID_SPIN (a duration, negative: none) replaces the
	// subscribers' default spin before they sleep.
	spin, _ := time.ParseDuration(os.Getenv("PARALLAX_BENCH_GRID_SPIN"))
	start := time.Now()
	subs := make([]*subscriber.Subscriber, n)
	for i := range subs {
		s, err := subscriber.New(ctx, gridTopic(i), subscriber.Options{Socket: args[0], QueueCapacity: gridQueue, Policy: subscriber.BlockProducer, Spin: spin})
		if err != nil {
			fmt.Fprintln(os.Stderr, "grid-sub:", err)
			return 1
		}
		defer s.Close()
		subs[i] = s
	}
	for _, s := range subs {
		if err := s.WaitForPublishers(ctx, 1); err != nil {
			fmt.Fprintln(os.Stderr, "grid-sub: wait for publishers:", err)
			return 1
		}
	}
	fmt.Printf("ready %d %d\n", time.Since(start).Nanoseconds(), plxMappings())
	ws, err := subscriber.NewWaitSet(subs...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "grid-sub: wait set:", err)
		return 1
	}
	stopProfile := gridProfile("grid-sub")
	defer stopProfile()
	var got, waits uint64
	wakes0 := gridWakes(subs)
	atomics := atomiccount.Snapshot()
	open := n
	quit := make([]bool, n)
	index := make(map[*subscriber.Subscriber]int, n)
	for i, s := range subs {
		index[s] = i
	}
	for open > 0 {
		ready, err := ws.Wait(ctx)
		waits++
		if err != nil {
			fmt.Fprintf(os.Stderr, "grid-sub: wait after %d samples: %v\n", got, err)
			return 1
		}
		for _, s := range ready {
			for {
				smp, err := s.TryTake()
				if errors.Is(err, subscriber.ErrNoData) {
					break
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "grid-sub: take:", err)
					return 1
				}
				b := smp.Bytes()
				touch(b)
				cmd := b[0]
				_ = smp.Release()
				if cmd == cmdQuit {
					if i := index[s]; !quit[i] {
						quit[i] = true
						open--
					}
					continue
				}
				got++
			}
		}
	}
	atomics = atomiccount.Snapshot().Sub(atomics)
	stopProfile()
	fmt.Printf("done %d %d %d %d %d\n", got, waits, gridWakes(subs)-wakes0, atomics.Ops, atomics.Locked)
	untilStdinCloses()
	return 0
}

// gridWakes sums the wake system calls producers made for subs.
func gridWakes(subs []*subscriber.Subscriber) uint64 {
	var n uint64
	for _, s := range subs {
		n += s.WakeStats().Wakes
	}
	return n
}

// gridProfile starts a CPU profile of this grid process when
// PARALLAX_BENCH_GRID_PROFILE names a directory and returns the function
// that stops it (safe to call twice).
func gridProfile(role string) (stop func()) {
	dir := os.Getenv("PARALLAX_BENCH_GRID_PROFILE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", role, os.Getpid())))
	if err != nil {
		fmt.Fprintln(os.Stderr, role+": profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, role+": profile:", err)
		f.Close()
		return func() {}
	}
	var stopped bool
	return func() {
		if !stopped {
			stopped = true
			pprof.StopCPUProfile()
			f.Close()
		}
	}
}

// procFaults is the count of minor page faults of process pid (0 when
// unknown).
func procFaults(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); minflt is field 10
	if len(f) < 8 {
		return 0
	}
	n, _ := strconv.ParseUint(f[7], 10, 64)
	return n
}

// gridPubOptions are a grid publisher's options. It declares what it
// sends, as the shared model's configuration does with its 64 B pool:
// MaxPayload = the payload size and ExpectedSubscribers = the subscriber
// processes, so in the owned model its first segment holds 64 B chunks for
// every connection. With PARALLAX_BENCH_GRID_UNDECLARED=1 it leaves both
// at the router's defaults (4 KiB chunks, room for one subscriber, growth
// for the rest): every 64 B message then has a page of its own, which is
// what made the owned grid 7x the shared one (memory-ownership.md §8.12).
func gridPubOptions(sock string, size, nsubs int) publisher.Options {
	o := publisher.Options{Socket: sock, BlockTimeout: childTimeout}
	if os.Getenv("PARALLAX_BENCH_GRID_UNDECLARED") == "" {
		o.MaxPayload = size
		o.ExpectedSubscribers = nsubs
	}
	return o
}
