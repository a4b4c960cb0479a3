//go:build linux

package bench_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

// BenchmarkGateway measures a topic bridged across NATS with every
// component in its own process: a NATS server, two routers and two
// gateways are children (the re-executed test binary); the publisher (in
// domain A) and the subscriber (in domain B) run in this process. path=nats
// is the baseline in the same run: a nats.go publisher and a nats.go
// subscriber in this process through the same NATS server process;
// path=bridge-jetstream is bridge-block through a JetStream stream (file
// storage in the benchmark's temporary directory) and a durable consumer.
// load=flat publishes as fast as the path accepts; load=paced at a fixed
// rate (pacedRate). Reported: delivered msgs/s, loss (messages published but
// not delivered, with the bridge's policy block that must be 0) and
// cpu-µs/msg (user+system CPU of this process and all its children over
// the run, per delivered message; read from /proc/<pid>/stat and
// getrusage, so with USER_HZ = 100 it needs runs of a second or more to
// mean anything), also split by process: cpu-µs/msg-self (publisher and
// subscriber), -nats, -export and -import (the gateways).
//
//	go test -run='^$' -bench=Gateway -benchtime=200000x ./tests/bench
//
// With PARALLAX_BENCH_GATEWAY_PROFILE=dir each gateway process writes a
// CPU profile there (gateway-export-PID.pprof, gateway-import-PID.pprof);
// with PARALLAX_BENCH_GATEWAY_LOG=1 they log warnings and errors to stderr
// (=debug: everything, with their counters when they stop); with
// PARALLAX_BENCH_GATEWAY_PROCS_EXPORT=n (or _IMPORT) that gateway runs with
// GOMAXPROCS n. Warm-up messages are not counted; loan-retries/msg counts
// the bridge publisher's loans refused for an exhausted pool (each retry
// yields: the benchmark's own overhead, which should be 0).
func BenchmarkGateway(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, load := range []string{"flat", "paced"} {
			for _, path := range []string{"nats", "bridge-block", "bridge-discard", "bridge-jetstream"} {
				b.Run(fmt.Sprintf("payload=%d/load=%s/path=%s", size, load, path), func(b *testing.B) {
					benchGateway(b, size, load == "paced", path)
				})
			}
		}
	}
}

// pacedRate is the paced publishers' rate for a payload size: well under
// what the bridge sustains on a small machine.
func pacedRate(size int) float64 {
	if size > 4096 {
		return 5000
	}
	return 20000
}

// gwQueue is the queue capacity of the exporting gateway's and of the
// benchmark's subscriber for a payload size: 256 samples, at most 2 MiB.
func gwQueue(size int) int { return min(256, 2<<20/size) }

// gwChild is a child process that prints a line starting with "ready" when
// it serves and ends when its stdin closes.
type gwChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	done  chan error
}

func startGWChild(b *testing.B, role string, args ...string) (*gwChild, string) {
	b.Helper()
	c := &gwChild{cmd: testutil.ChildCommand(b, role, nil, args...)}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	c.out = bufio.NewReader(stdout)
	if err := c.cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", role, err)
	}
	c.done = make(chan error, 1)
	go func() { c.done <- c.cmd.Wait() }()
	b.Cleanup(c.stop(b, role))
	line := make(chan string, 1)
	go func() {
		s, _ := c.out.ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if !strings.HasPrefix(s, "ready") {
			b.Fatalf("%s: %q instead of ready", role, s)
		}
		go func() { _, _ = io.Copy(io.Discard, c.out) }()
		return c, strings.TrimSpace(strings.TrimPrefix(s, "ready"))
	case <-time.After(childTimeout):
		b.Fatalf("%s not ready after %v", role, childTimeout)
	}
	return nil, ""
}

// stop closes the child's stdin and waits for it to exit (killing it, by
// PID, after childTimeout).
func (c *gwChild) stop(b *testing.B, role string) func() {
	return func() {
		_ = c.stdin.Close()
		select {
		case err := <-c.done:
			if err != nil && !b.Failed() {
				b.Errorf("%s: %v", role, err)
			}
		case <-time.After(childTimeout):
			b.Errorf("%s (PID %d) did not exit; killing it", role, c.cmd.Process.Pid)
			_ = c.cmd.Process.Kill()
			b.Logf("%s after SIGKILL: %v", role, <-c.done)
		}
	}
}

// selfCPU is the user+system CPU time of this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the user+system CPU time of process pid (0 when unknown).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may contain spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime is field 14
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ
}

// cpuRoles is a process per role ("" = this process) whose CPU time is
// measured.
type cpuRoles map[string]int

// sample returns the CPU time of each role.
func (r cpuRoles) sample() map[string]time.Duration {
	m := map[string]time.Duration{"self": selfCPU()}
	for role, pid := range r {
		m[role] += procCPU(pid)
	}
	return m
}

func benchGateway(b *testing.B, size int, paced bool, path string) {
	dir := b.TempDir()
	ns, url := startGWChild(b, "nats", filepath.Join(dir, "js"))
	roles := cpuRoles{"nats": ns.cmd.Process.Pid}
	var send func([]byte) error
	var received atomic.Uint64
	var outOfOrder atomic.Uint64
	var warm atomic.Uint64 // warm-up messages (sequence number 1) received
	// count counts a received message (on the receiving goroutine, whose
	// last sequence number is last).
	count := func(seq uint64, last *uint64) {
		switch {
		case seq == 1:
			warm.Add(1)
			return
		case seq <= *last:
			outOfOrder.Add(1)
		default:
			*last = seq
		}
		received.Add(1)
	}
	var loanRetries uint64 // failed loans of the bridge's publisher (send's goroutine only)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if path == "nats" {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		rc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer rc.Close()
		var last uint64
		sub, err := rc.Subscribe("bench.t", func(m *nats.Msg) { count(binary.LittleEndian.Uint64(m.Data), &last) })
		if err != nil {
			b.Fatal(err)
		}
		_ = sub.SetPendingLimits(1<<16, 256<<20)
		if err := rc.Flush(); err != nil {
			b.Fatal(err)
		}
		send = func(p []byte) error { return nc.Publish("bench.t", p) }
		defer func() { _ = nc.Flush() }()
	} else {
		policy, stream := strings.TrimPrefix(path, "bridge-"), ""
		if policy == "jetstream" {
			policy, stream = "block", "GWBENCH"
		}
		sockA, sockB := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
		ra, _ := startGWChild(b, "gw-router", sockA)
		rb, _ := startGWChild(b, "gw-router", sockB)
		queue := strconv.Itoa(gwQueue(size))
		ga, _ := startGWChild(b, "gateway", url, sockA, "export", policy, stream, queue)
		gb, _ := startGWChild(b, "gateway", url, sockB, "import", policy, stream, queue)
		roles["routers"], roles["export"], roles["import"] = ra.cmd.Process.Pid, ga.cmd.Process.Pid, gb.cmd.Process.Pid
		roles["router-b"] = rb.cmd.Process.Pid
		sub, err := subscriber.New(ctx, "t", subscriber.Options{Socket: sockB, TypeName: "bench", QueueCapacity: gwQueue(size), Policy: subscriber.BlockProducer})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		// Spin -1: on the exporting gateway's full queue the publisher
		// sleeps, as a nats.go publisher sleeps in write on a full socket;
		// spinning would take a core from the gateways.
		pub, err := publisher.New(ctx, "t", publisher.Options{Socket: sockA, TypeName: "bench", BlockTimeout: childTimeout, Spin: -1})
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		waitFor(b, "the bridge connecting", func() bool { return pub.Subscribers() > 0 && sub.Publishers() > 0 })
		go func() {
			var last uint64
			for {
				s, err := sub.Take(ctx)
				if err != nil {
					return
				}
				count(binary.LittleEndian.Uint64(s.Bytes()), &last)
				_ = s.Release()
			}
		}()
		send = func(p []byte) error {
			c, err := pub.Loan(len(p))
			for errors.Is(err, parallax.ErrPoolExhausted) { // the queues downstream hold the pool's chunks
				loanRetries++
				runtime.Gosched()
				c, err = pub.Loan(len(p))
			}
			if err != nil {
				return err
			}
			copy(c.Bytes(), p)
			return pub.Publish(c)
		}
	}
	// Warm-up messages (sequence number 1, not counted) until one arrives,
	// so the path is warm and connected end to end: the bridge's first
	// message may be lost when the importing gateway's publisher learns of
	// the subscriber's connection after the subscriber does (the publisher
	// counts it as unconnected).
	p := make([]byte, size)
	binary.LittleEndian.PutUint64(p, 1)
	for deadline := time.Now().Add(childTimeout); warm.Load() == 0; {
		if time.Now().After(deadline) {
			b.Fatalf("no warm-up message arrived in %v", childTimeout)
		}
		if err := send(p); err != nil {
			b.Fatal(err)
		}
		for wait := time.Now().Add(time.Second); warm.Load() == 0 && time.Now().Before(wait); {
			time.Sleep(time.Millisecond) // polling a counter from another goroutine
		}
	}

	n := uint64(b.N)
	rate := pacedRate(size)
	cpu0 := roles.sample()
	b.ResetTimer()
	start := time.Now()
	for i := uint64(1); i <= n; i++ {
		binary.LittleEndian.PutUint64(p, i+1)
		if err := send(p); err != nil {
			b.Fatalf("message %d: %v", i, err)
		}
		if paced && i%64 == 0 {
			if ahead := time.Duration(float64(i)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead) // pacing the publisher, not waiting for a condition
			}
		}
	}
	// Wait until everything arrived or nothing moved for two seconds; the
	// time runs until the last delivery seen.
	last, since := received.Load(), time.Now()
	for last < n {
		if r := received.Load(); r != last {
			last, since = r, time.Now()
		} else if time.Since(since) > 2*time.Second {
			break
		}
		time.Sleep(time.Millisecond) // polling a counter from another goroutine
	}
	el := since.Sub(start)
	if last == n {
		el = time.Since(start)
	}
	b.StopTimer()
	got := received.Load()
	cpu1 := roles.sample()
	var cpu time.Duration
	for role := range cpu1 {
		cpu += cpu1[role] - cpu0[role]
	}
	b.ReportMetric(float64(got)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(n-min(got, n)), "lost")
	b.ReportMetric(float64(outOfOrder.Load()), "reordered")
	if path != "nats" {
		b.ReportMetric(float64(loanRetries)/float64(n), "loan-retries/msg")
	}
	if got > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(got), "cpu-µs/msg")
		for _, role := range []string{"self", "nats", "export", "import"} {
			if _, ok := cpu1[role]; ok {
				b.ReportMetric(float64((cpu1[role]-cpu0[role]).Microseconds())/float64(got), "cpu-µs/msg-"+role)
			}
		}
	}
	b.SetBytes(int64(size))
}

// waitFor polls cond until it holds, failing after childTimeout.
func waitFor(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(childTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// untilStdinCloses blocks until the parent closes the child's stdin.
func untilStdinCloses() { _, _ = io.Copy(io.Discard, os.Stdin) }

// natsMain is the "nats" child: a NATS server on a random loopback port,
// with JetStream storing in args[0].
func natsMain(args []string) int {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: args[0]})
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats:", err)
		return 1
	}
	go ns.Start()
	if !ns.ReadyForConnections(childTimeout) {
		fmt.Fprintln(os.Stderr, "nats: not ready")
		return 1
	}
	fmt.Println("ready", ns.ClientURL())
	untilStdinCloses()
	ns.Shutdown()
	ns.WaitForShutdown()
	return 0
}

// gwRouterConfig has pools large enough that the queues (gwQueue), not the
// pools, bound what is in flight (the exporting gateway's queue and the
// subscriber's queue, a few chunks more): with fewer chunks the publisher
// runs out of chunks before the exporter's queue fills, and the
// benchmark's loan retry loop, not block-producer backpressure, paces it.
// Not much larger either: a pool loans its chunks round robin, so all of
// it is the working set the copies stream through.
const gwRouterConfig = `
[limits]
max_connections = 1024
max_subscribers = 512
`

// gwRouterMain is the "gw-router" child: a router on socket args[0].
func gwRouterMain(args []string) int {
	cfg, err := roudi.ParseConfig([]byte(gwRouterConfig))
	if err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		return 1
	}
	cfg.Socket = args[0]
	cfg.Domain = fmt.Sprintf("gwbench%d", os.Getpid())
	return serveRouterChild("router", cfg)
}

// gatewayMain is the "gateway" child: args are the NATS URL, the router
// socket, export or import, the policy, the JetStream stream ("" = none)
// and the queue capacity; the topic is t of type bench.
func gatewayMain(args []string) int {
	if v := os.Getenv("PARALLAX_BENCH_GATEWAY_PROCS_" + strings.ToUpper(args[2])); v != "" {
		n, _ := strconv.Atoi(v)
		runtime.GOMAXPROCS(n)
	}
	policy, err := gateway.ParsePolicy(args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 2
	}
	topic := []gateway.Topic{{Name: "t", Type: &gateway.Type{Name: "bench"}}}
	queue, err := strconv.Atoi(args[5])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway: queue capacity:", err)
		return 2
	}
	logTo := io.Discard // losses are logged, and would garble the benchmark's lines
	if os.Getenv("PARALLAX_BENCH_GATEWAY_LOG") != "" {
		logTo = os.Stderr
	}
	opts := gateway.Options{NATSURL: args[0], Socket: args[1], Prefix: "gwbench.", Policy: policy, QueueCapacity: queue,
		StatsInterval: -1, Logger: slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: logLevel()})),
		Stream: args[4], Durable: "gwbench"}
	if args[2] == "export" {
		opts.Export = topic
	} else {
		opts.Import = topic
	}
	g, err := gateway.New(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	select {
	case <-g.Ready():
	case err := <-done:
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 1
	}
	if dir := os.Getenv("PARALLAX_BENCH_GATEWAY_PROFILE"); dir != "" {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("gateway-%s-%d.pprof", args[2], os.Getpid())))
		if err == nil {
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	fmt.Println("ready", g.ID())
	untilStdinCloses()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 1
	}
	return 0
}

func logLevel() slog.Level {
	if os.Getenv("PARALLAX_BENCH_GATEWAY_LOG") == "debug" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}
