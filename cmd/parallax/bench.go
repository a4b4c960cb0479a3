package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

func init() {
	register(&command{name: "bench", short: "measure cross-process round trips (modes x sizes) through a running or embedded router",
		usage: "[-embedded] [-modes list] [-sizes list] [-n rounds]", flags: benchFlags})
}

// childCommand builds the command that runs `parallax args...` in a child
// process: this executable. Tests replace it to re-execute the test binary.
var childCommand = func(args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the parallax executable: %w", err)
	}
	return exec.Command(exe, args...), nil
}

// benchModes maps a mode name to the subscriber waiting options both sides
// use.
var benchModes = map[string]subscriber.Options{
	"blocking":  {Spin: -1},
	"spin":      {Spin: time.Millisecond},
	"busy-poll": {BusyPoll: true},
}

type benchResult struct {
	mode          string
	size          int
	rounds        int
	p50, p99, max time.Duration
	mean          time.Duration
	lost          int
}

// benchFlags declares bench's flags; the command measures round trips per
// mode and size.
func benchFlags(fs *flag.FlagSet) runFunc {
	embedded := fs.Bool("embedded", false, "run a private router in this process instead of using a running one")
	modesFlag := fs.String("modes", "blocking,spin,busy-poll", "waiting modes to measure: blocking, spin, busy-poll")
	sizesFlag := fs.String("sizes", "64,4096,65536,1048576", "payload sizes in bytes")
	rounds := fs.Int("n", 2000, "round trips per mode and size")
	child := fs.Bool("echo-child", false, "internal: run the echo side")
	mode := fs.String("mode", "blocking", "internal: the echo child's waiting mode")
	ping := fs.String("ping", "", "internal: the echo child's ping topic")
	pong := fs.String("pong", "", "internal: the echo child's pong topic")
	return func(e *env, fs *flag.FlagSet, g *globals) int {
		const name = "bench"
		path, domain, err := g.target()
		if err != nil {
			return routerError(e, name, g, err)
		}
		if *child {
			if err := benchEcho(path, domain, *mode, *ping, *pong, os.Stdin); err != nil {
				fmt.Fprintf(e.stderr, "parallax bench echo: %v\n", err)
				return exitFailure
			}
			return exitOK
		}
		var modes []string
		for _, m := range strings.Split(*modesFlag, ",") {
			if _, ok := benchModes[m]; !ok {
				return failf(e, name, exitUsage, "unknown mode %q (want blocking, spin or busy-poll)", m)
			}
			modes = append(modes, m)
		}
		var sizes []int
		for _, s := range strings.Split(*sizesFlag, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 8 || n > 64<<20 {
				return failf(e, name, exitUsage, "size %q: want an integer number of bytes in [8, 64MiB]", s)
			}
			sizes = append(sizes, n)
		}
		if *rounds < 1 {
			return failf(e, name, exitUsage, "-n must be at least 1")
		}
		// The echo children's stderr and the progress line share e.stderr.
		e = &env{stdin: e.stdin, stdout: e.stdout, stderr: &lockedWriter{w: e.stderr}}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if *embedded {
			srv, stopRouter, err := startEmbedded(ctx, sizes)
			if err != nil {
				return failf(e, name, exitFailure, "start embedded router: %v", err)
			}
			defer stopRouter()
			path, domain = srv.SocketPath(), srv.Config().Domain
			g = &globals{domain: domain, socket: path}
		}
		var results []benchResult
		for _, m := range modes {
			rs, err := benchMode(ctx, e, path, domain, m, sizes, *rounds)
			if err != nil {
				fmt.Fprintln(e.stderr)
				return routerError(e, name, g, err)
			}
			results = append(results, rs...)
		}
		fmt.Fprint(e.stderr, "\r\x1b[K")
		tw := newTable(e.stdout)
		row(tw, "MODE", "SIZE", "ROUNDS", "P50", "P99", "MAX", "MEAN", "ROUND TRIPS/S", "LOST")
		for _, r := range results {
			row(tw, r.mode, bytesize(uint64(r.size)), r.rounds, r.p50, r.p99, r.max, r.mean,
				rate(float64(time.Second)/float64(max(r.mean, 1))), r.lost)
		}
		tw.Flush()
		return exitOK
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// startEmbedded runs a private router on the default configuration (its
// publishers are sized by what they declare).
func startEmbedded(ctx context.Context, sizes []int) (*roudi.Server, func(), error) {
	dir, err := os.MkdirTemp("", "parallax-bench-")
	if err != nil {
		return nil, nil, err
	}
	cfg, err := roudi.ParseConfig(nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	cfg.Domain = fmt.Sprintf("bench-%d", os.Getpid())
	cfg.Socket = filepath.Join(dir, "roudi.sock")
	cfg.RuntimeDir = dir
	srv, err := roudi.Start(ctx, cfg, roudi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return srv, func() { _ = srv.Close(); os.RemoveAll(dir) }, nil
}

// benchMode measures every size in one mode against one echo child.
func benchMode(ctx context.Context, e *env, path, domain, mode string, sizes []int, rounds int) (_ []benchResult, err error) {
	wait := benchModes[mode]
	prefix := fmt.Sprintf("parallax-bench/%d/%s", os.Getpid(), mode)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pub, err := publisher.New(dctx, prefix+"/ping", publisher.Options{Domain: domain, Socket: path})
	if err != nil {
		return nil, err
	}
	defer pub.Close()
	so := wait
	so.Domain, so.Socket, so.QueueCapacity = domain, path, 16
	sub, err := subscriber.New(dctx, prefix+"/pong", so)
	if err != nil {
		return nil, err
	}
	defer sub.Close()

	cmd, err := childCommand("bench", "-echo-child", "-mode", mode, "-socket", path, "-domain", domain, "-ping", prefix+"/ping", "-pong", prefix+"/pong")
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = e.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start echo child: %w", err)
	}
	defer func() {
		stdin.Close() // the child exits at EOF on stdin
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case werr := <-exited:
			if werr != nil && err == nil {
				err = fmt.Errorf("echo child: %w", werr)
			}
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill() // our own child, by PID
			_ = <-exited
		}
	}()
	if err := pub.WaitForSubscribers(dctx, 1); err != nil {
		return nil, fmt.Errorf("wait for the echo child to subscribe: %w", err)
	}
	if err := sub.WaitForPublishers(dctx, 1); err != nil {
		return nil, fmt.Errorf("wait for the echo child to publish: %w", err)
	}
	seq := uint64(0)
	// Warm up until a round trip succeeds: a sample sent while the
	// connection is being set up may be lost.
	for i := 0; ; i++ {
		seq++
		if _, err := roundTrip(pub, sub, seq, 8, 200*time.Millisecond); err == nil {
			break
		} else if i == 50 {
			return nil, fmt.Errorf("no echo after %d pings: %w", i, err)
		}
	}
	var out []benchResult
	rtts := make([]time.Duration, 0, rounds)
	for _, size := range sizes {
		rtts = rtts[:0]
		lost := 0
		step := max(rounds/20, 1)
		for i := range rounds {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if i%step == 0 {
				fmt.Fprintf(e.stderr, "\r\x1b[Kbench: %s %s %d/%d", mode, bytesize(uint64(size)), i, rounds)
			}
			seq++
			d, err := roundTrip(pub, sub, seq, size, 2*time.Second)
			if err != nil {
				lost++
				if lost > rounds/10+3 {
					return nil, fmt.Errorf("%s %d B: %d round trips lost, last: %w", mode, size, lost, err)
				}
				continue
			}
			rtts = append(rtts, d)
		}
		out = append(out, summarize(mode, size, rtts, lost))
	}
	return out, nil
}

// roundTrip publishes a ping of size bytes carrying seq and waits for the
// pong that echoes it.
func roundTrip(pub *publisher.Publisher, sub *subscriber.Subscriber, seq uint64, size int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	c, err := pub.Loan(size)
	if err != nil {
		return 0, err
	}
	binary.LittleEndian.PutUint64(c.Bytes(), seq)
	if err := pub.Publish(c); err != nil {
		return 0, err
	}
	for {
		left := timeout - time.Since(start)
		if left <= 0 {
			return 0, fmt.Errorf("no pong for ping %d within %v", seq, timeout)
		}
		s, err := sub.TakeTimeout(left)
		if err != nil {
			return 0, err
		}
		got := binary.LittleEndian.Uint64(s.Bytes())
		_ = s.Release()
		if got == seq {
			return time.Since(start), nil
		}
	}
}

func summarize(mode string, size int, rtts []time.Duration, lost int) benchResult {
	r := benchResult{mode: mode, size: size, rounds: len(rtts), lost: lost}
	if len(rtts) == 0 {
		return r
	}
	slices.Sort(rtts)
	var sum time.Duration
	for _, d := range rtts {
		sum += d
	}
	q := func(p float64) time.Duration { return rtts[min(int(p*float64(len(rtts))), len(rtts)-1)] }
	r.p50, r.p99, r.max, r.mean = q(0.50), q(0.99), rtts[len(rtts)-1], sum/time.Duration(len(rtts))
	return r
}

// benchEcho is the child: it answers every ping with a pong of the same
// size carrying the same sequence number, until stdin closes.
func benchEcho(path, domain, mode, ping, pong string, stdin io.Reader) error {
	wait, ok := benchModes[mode]
	if !ok || ping == "" || pong == "" {
		return fmt.Errorf("bad echo child arguments (mode %q, ping %q, pong %q)", mode, ping, pong)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, stdin); cancel() }()
	so := wait
	so.Domain, so.Socket, so.QueueCapacity = domain, path, 16
	sub, err := subscriber.New(ctx, ping, so)
	if err != nil {
		return err
	}
	defer sub.Close()
	pub, err := publisher.New(ctx, pong, publisher.Options{Domain: domain, Socket: path})
	if err != nil {
		return err
	}
	defer pub.Close()
	for {
		s, err := sub.Take(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		in := s.Bytes()
		c, err := pub.Loan(len(in))
		if err == nil {
			copy(c.Bytes()[:8], in[:8])
			err = pub.Publish(c)
		}
		_ = s.Release()
		if err != nil {
			return err
		}
	}
}
