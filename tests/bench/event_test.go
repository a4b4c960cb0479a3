//go:build linux

package bench_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/event"
	"github.com/parallax-ipc/parallax/internal/routertest"
)

// BenchmarkSignalWake: event signal→wake latency across processes. One op
// is a ping-pong: the parent signals id i on service ping, the child (a
// listener of ping, a notifier of pong) wakes and signals it back on pong,
// the parent wakes: two signal→wake hops, so p50-µs/2 is one hop. In
// blocking mode both listeners sleep on the futex when idle (Spin -1).
//
//	go test -run='^$' -bench=SignalWake -benchtime=2000x ./tests/bench
func BenchmarkSignalWake(b *testing.B) {
	for _, m := range modes {
		if m.name == "spin-then-block" {
			continue
		}
		b.Run("mode="+m.name, func(b *testing.B) { benchSignalWake(b, m) })
	}
}

func eventOptions(sock string, m mode) event.Options {
	return event.Options{Socket: sock, Spin: m.spin, BusyPoll: m.busyPoll, BlockTimeout: childTimeout}
}

// eventQuit is the id that ends the child.
const eventQuit = 1<<63 - 1

func benchSignalWake(b *testing.B, m mode) {
	srv := routertest.Start(b, ownedConfig)
	sock := srv.SocketPath()
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	opts := eventOptions(sock, m)
	pong, err := event.NewListener(ctx, "pong", opts)
	if err != nil {
		b.Fatal(err)
	}
	defer pong.Close()
	ping, err := event.NewNotifier(ctx, "ping", opts)
	if err != nil {
		b.Fatal(err)
	}
	defer ping.Close()
	startChild(b, "event-echo", sock, m.name)
	if err := ping.WaitForListeners(ctx, 1); err != nil {
		b.Fatal(err)
	}
	if err := pong.WaitForNotifiers(ctx, 1); err != nil {
		b.Fatal(err)
	}
	var id uint64
	round := func() error {
		id++
		if err := ping.Signal(id); err != nil {
			return err
		}
		// Wait without a deadline allocates nothing; the child's own
		// timeout ends a stuck run.
		for {
			ids, err := pong.Wait(context.Background())
			if err != nil {
				return err
			}
			if len(ids) > 0 && ids[len(ids)-1] == id {
				return nil
			}
		}
	}
	for range 10 { // warm up both sides
		if err := round(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make(latencies, 0, maxRecorded)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if err := round(); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	b.StopTimer()
	lat.report(b)
	if err := ping.Signal(eventQuit); err != nil {
		b.Fatal(err)
	}
}

// eventEchoMain is the child of BenchmarkSignalWake: args are the router
// socket and the mode name.
func eventEchoMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "event-echo: want socket and mode")
		return 2
	}
	m, ok := modeByName(args[1])
	if !ok {
		fmt.Fprintf(os.Stderr, "event-echo: bad mode %q\n", args[1])
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	opts := eventOptions(args[0], m)
	ping, err := event.NewListener(ctx, "ping", opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "event-echo: %v\n", err)
		return 1
	}
	defer ping.Close()
	pong, err := event.NewNotifier(ctx, "pong", opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "event-echo: %v\n", err)
		return 1
	}
	defer pong.Close()
	for {
		// Background: the parent's quit id ends the loop.
		ids, err := ping.Wait(context.Background())
		if err != nil {
			fmt.Fprintf(os.Stderr, "event-echo: wait: %v\n", err)
			return 1
		}
		if len(ids) == 0 {
			continue
		}
		last := ids[len(ids)-1]
		if last == eventQuit {
			return 0
		}
		if err := pong.Signal(last); err != nil {
			fmt.Fprintf(os.Stderr, "event-echo: signal: %v\n", err)
			return 1
		}
	}
}
