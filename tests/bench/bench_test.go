//go:build linux

// Package bench holds the cross-process benchmarks: the parent runs an
// in-process router and a child process (the re-executed test binary)
// echoes or sinks messages, so every sample crosses a process boundary
// through shared memory. BenchmarkRoundTripUDS runs the same echo over a
// Unix domain socket, copying the bytes, for comparison.
//
//	go test -run='^$' -bench=. -benchtime=2000x ./tests/bench
package bench_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

func TestMain(m *testing.M) {
	testutil.ChildMain(map[string]func([]string) int{
		"echo":       echoMain,
		"rpc-echo":   rpcEchoMain,
		"event-echo": eventEchoMain,
		"sink":       sinkMain,
		"uds-echo":   udsEchoMain,
		"pipesink":   pipesinkMain,
		// grid_test.go
		"grid-pub": gridPubMain,
		"grid-sub": gridSubMain,
		// connect_test.go
		"conn-pub": connPubMain,
		// memory_test.go
		"mem-router": memRouterMain,
		"mem-pub":    memPubMain,
		"mem-sub":    memSubMain,
		// gateway_test.go
		"nats":      natsMain,
		"gw-router": gwRouterMain,
		"gateway":   gatewayMain,
	})
	testutil.Main(m)
}

// routerConfig has one pool per benchmarked payload size.
const routerConfig = `
[limits]
max_connections = 1024
max_subscribers = 512
`

var payloads = []int{64, 4 << 10, 64 << 10, 1 << 20, 4 << 20}

// A mode is how both sides wait for a sample.
type mode struct {
	name     string
	spin     time.Duration
	busyPoll bool
}

var modes = []mode{
	{name: "blocking", spin: -1},
	{name: "spin-then-block"},
	{name: "busy-poll", busyPoll: true},
}

func modeByName(name string) (mode, bool) {
	for _, m := range modes {
		if m.name == name {
			return m, true
		}
	}
	return mode{}, false
}

// The first payload byte says what the receiver should do.
const (
	cmdData = 1
	cmdQuit = 2
)

// childTimeout bounds every wait of the children and the parent for a peer:
// a broken peer fails the run instead of hanging it.
const childTimeout = 30 * time.Second

// source is what senders copy into their payloads (a memmove-speed write of
// every byte).
var source = func() []byte {
	b := make([]byte, 4<<20)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}()

// fill writes the whole payload and its command byte.
func fill(b []byte, cmd byte) {
	copy(b, source)
	b[0] = cmd
}

// sink keeps touch's result observable.
var sink byte

// touch reads one byte of every cache line of b.
func touch(b []byte) {
	var x byte
	for i := 0; i < len(b); i += 64 {
		x ^= b[i]
	}
	sink ^= x
}

// startChild starts the re-executed test binary in role and makes sure it is
// gone (killed by PID if need be) when the benchmark ends.
func startChild(b *testing.B, role string, args ...string) *exec.Cmd {
	b.Helper()
	cmd := testutil.ChildCommand(b, role, nil, args...)
	if err := cmd.Start(); err != nil {
		b.Fatalf("start child %s: %v", role, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	b.Cleanup(func() {
		select {
		case err := <-done:
			if err != nil && !b.Failed() {
				b.Errorf("child %s: %v", role, err)
			}
		case <-time.After(childTimeout):
			b.Errorf("child %s (PID %d) did not exit; killing it", role, cmd.Process.Pid)
			_ = cmd.Process.Kill()
			_ = <-done
		}
	})
	return cmd
}

// waitConnected waits until pub has a subscriber and sub a publisher.
func waitConnected(b *testing.B, pub *publisher.Publisher, sub *subscriber.Subscriber) {
	b.Helper()
	deadline := time.Now().Add(childTimeout)
	for pub.Subscribers() == 0 || sub.Publishers() == 0 {
		if time.Now().After(deadline) {
			b.Fatalf("child never connected (publisher has %d subscribers, subscriber %d publishers)", pub.Subscribers(), sub.Publishers())
		}
		time.Sleep(time.Millisecond)
	}
}

// loan loans a chunk, yielding while the pool is exhausted.
func loan(pub *publisher.Publisher, n int) (publisher.Chunk, error) {
	deadline := time.Time{}
	for {
		c, err := pub.Loan(n)
		if !errors.Is(err, parallax.ErrPoolExhausted) {
			return c, err
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(childTimeout)
		} else if time.Now().After(deadline) {
			return c, err
		}
		runtime.Gosched()
	}
}

// watch closes sub (failing its blocked Take) when progress stalls for
// childTimeout, so a lost sample fails the benchmark instead of hanging it.
func watch(b *testing.B, progress *atomic.Uint64, sub *subscriber.Subscriber) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, since := progress.Load(), time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				if p := progress.Load(); p != last {
					last, since = p, now
				} else if now.Sub(since) > childTimeout {
					fmt.Fprintf(os.Stderr, "watchdog: no progress for %v after %d samples; closing the subscriber\n", childTimeout, p)
					_ = sub.Close()
					return
				}
			}
		}
	}()
	b.Cleanup(func() { close(stop); <-done })
}

// latencies records round-trip times without allocating in the loop.
type latencies []time.Duration

const maxRecorded = 1 << 20

func (l *latencies) add(d time.Duration) {
	if len(*l) < cap(*l) {
		*l = append(*l, d)
	}
}

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	p := func(q float64) float64 {
		return float64(s[min(len(s)-1, int(q*float64(len(s))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
}

// BenchmarkRoundTrip sends a ping (topic ping, filled by the parent) that the
// child reads in full and answers with a pong (topic pong, filled by the
// child) that the parent reads in full: one round trip per op.
func BenchmarkRoundTrip(b *testing.B) {
	for _, m := range modes {
		for _, size := range payloads {
			b.Run(fmt.Sprintf("mode=%s/payload=%d", m.name, size), func(b *testing.B) {
				benchRoundTrip(b, m, size)
			})
		}
	}
}

func startRouter(b *testing.B) *roudi.Server {
	b.Helper()
	return routertest.Start(b, routerConfig)
}

func benchRoundTrip(b *testing.B, m mode, size int) { benchRoundTripIn(b, routerConfig, m, size) }

// benchRoundTripIn is benchRoundTrip against a router with config cfg.
func benchRoundTripIn(b *testing.B, cfg string, m mode, size int) {
	srv := routertest.Start(b, cfg)
	sock := srv.SocketPath()
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	sub, err := subscriber.New(ctx, "pong", subscriber.Options{
		Socket: sock, QueueCapacity: 4, Policy: subscriber.BlockProducer, Spin: m.spin, BusyPoll: m.busyPoll,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	pub, err := publisher.New(ctx, "ping", publisher.Options{Socket: sock, BlockTimeout: childTimeout, MaxPayload: size})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	startChild(b, "echo", sock, m.name, strconv.Itoa(size))
	waitConnected(b, pub, sub)

	var progress atomic.Uint64
	watch(b, &progress, sub)
	ping := func() error {
		c, err := loan(pub, size)
		if err != nil {
			return err
		}
		fill(c.Bytes(), cmdData)
		if err := pub.Publish(c); err != nil {
			return err
		}
		// Take without a deadline allocates nothing; the watchdog bounds it.
		s, err := sub.Take(context.Background())
		if err != nil {
			return err
		}
		progress.Add(1)
		touch(s.Bytes())
		return s.Release()
	}
	// The child's ready pong: it has attached both rings.
	if s, err := sub.TakeTimeout(childTimeout); err != nil {
		b.Fatalf("child not ready: %v", err)
	} else {
		_ = s.Release()
	}
	for range 10 { // warm up both sides
		if err := ping(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make(latencies, 0, maxRecorded)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if err := ping(); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	b.StopTimer()
	lat.report(b)
	if err := quit(pub); err != nil {
		b.Fatal(err)
	}
}

// quit tells the child to exit.
func quit(pub *publisher.Publisher) error {
	c, err := loan(pub, 64)
	if err != nil {
		return err
	}
	fill(c.Bytes(), cmdQuit)
	return pub.Publish(c)
}

// echoMain is the child of BenchmarkRoundTrip: args are the router socket,
// the mode name and the largest payload (the owned model's MaxPayload).
func echoMain(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "echo: want socket, mode and max payload")
		return 2
	}
	maxPayload, err := strconv.Atoi(args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo: max payload: %v\n", err)
		return 2
	}
	m, ok := modeByName(args[1])
	if !ok {
		fmt.Fprintf(os.Stderr, "echo: unknown mode %q\n", args[1])
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	sub, err := subscriber.New(ctx, "ping", subscriber.Options{
		Socket: args[0], QueueCapacity: 4, Policy: subscriber.BlockProducer, Spin: m.spin, BusyPoll: m.busyPoll,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo: %v\n", err)
		return 1
	}
	defer sub.Close()
	pub, err := publisher.New(ctx, "pong", publisher.Options{Socket: args[0], BlockTimeout: childTimeout, MaxPayload: maxPayload})
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo: %v\n", err)
		return 1
	}
	defer pub.Close()
	// Announce readiness once both of our sides are wired: a ping published
	// while this process has not yet attached its ring was observed to get
	// lost (see the report in the commit history), so the parent waits
	// for this pong before its first ping.
	for sub.Publishers() == 0 || pub.Subscribers() == 0 {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "echo: never connected")
			return 1
		}
		time.Sleep(time.Millisecond)
	}
	if c, err := loan(pub, 64); err != nil || pub.Publish(c) != nil {
		fmt.Fprintln(os.Stderr, "echo: ready pong failed")
		return 1
	}
	for {
		s, err := sub.TakeTimeout(childTimeout)
		if err != nil {
			fmt.Fprintf(os.Stderr, "echo: take: %v\n", err)
			return 1
		}
		in := s.Bytes()
		if in[0] == cmdQuit {
			_ = s.Release()
			return 0
		}
		touch(in)
		c, err := loan(pub, len(in))
		_ = s.Release()
		if err != nil {
			fmt.Fprintf(os.Stderr, "echo: loan: %v\n", err)
			return 1
		}
		fill(c.Bytes(), cmdData)
		if err := pub.Publish(c); err != nil {
			fmt.Fprintf(os.Stderr, "echo: publish: %v\n", err)
			return 1
		}
	}
}
