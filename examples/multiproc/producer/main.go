//go:build linux

// Command producer publishes frames on topic "frames": it loans a chunk from
// the router's shared memory, writes a frame header (sequence number,
// publish timestamp, pattern offset) and the pattern body in place, and
// publishes it, at -rate frames per second or as fast as the pipeline
// takes them (-rate 0) for -duration.
//
//	producer -socket /tmp/x/roudi.sock -duration 3s -size 4096 -rate 0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/examples/multiproc/frame"
	"github.com/parallax-ipc/parallax/publisher"
)

func main() {
	domain := flag.String("domain", "", "router domain (default: $PARALLAX_DOMAIN or \"default\")")
	socket := flag.String("socket", "", "router control socket (default: derived from the domain)")
	duration := flag.Duration("duration", 5*time.Second, "how long to publish")
	size := flag.Int("size", 4096, "frame size in bytes (at least 64)")
	rate := flag.Int("rate", 0, "frames per second; 0 publishes as fast as the subscribers take them")
	wait := flag.Duration("wait", 10*time.Second, "how long to wait for a subscriber before publishing")
	flag.Parse()
	if *size < frame.MinSize {
		fmt.Fprintf(os.Stderr, "producer: -size must be at least %d\n", frame.MinSize)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *domain, *socket, *duration, *size, *rate, *wait); err != nil {
		fmt.Fprintf(os.Stderr, "producer: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, domain, socket string, duration time.Duration, size, rate int, wait time.Duration) error {
	pub, err := publisher.New(ctx, "frames", publisher.Options{Domain: domain, Socket: socket})
	if err != nil {
		return err
	}
	defer pub.Close()
	if err := waitFor(ctx, wait, func() bool { return pub.Subscribers() > 0 }); err != nil {
		return fmt.Errorf("wait for a subscriber on %q: %w", pub.Topic(), err)
	}

	pat := frame.NewPattern(size)
	var period time.Duration
	if rate > 0 {
		period = time.Second / time.Duration(rate)
	}
	var seq, stalls, timeouts uint64
	start := time.Now()
	deadline := start.Add(duration)
	for ctx.Err() == nil {
		now := time.Now()
		if now.After(deadline) {
			break
		}
		if period > 0 {
			if next := start.Add(time.Duration(seq) * period); now.Before(next) {
				time.Sleep(next.Sub(now))
			}
		}
		c, err := pub.Loan(size)
		if errors.Is(err, parallax.ErrPoolExhausted) {
			// Every chunk is in flight and the publisher could not grow:
			// the pipeline is full. Back off briefly instead of spinning.
			stalls++
			time.Sleep(20 * time.Microsecond)
			continue
		}
		if err != nil {
			return err
		}
		seq++
		pat.Write(c.Bytes(), seq, time.Now())
		if err := pub.Publish(c); err != nil {
			if errors.Is(err, parallax.ErrTimeout) {
				timeouts++ // a blocking subscriber stayed full past BlockTimeout
				continue
			}
			return err
		}
	}
	el := time.Since(start)
	fmt.Printf("producer: published %d frames of %d B in %v: %.0f msg/s, %.1f MiB/s (pool stalls %d, block timeouts %d, dropped %d)\n",
		seq, size, el.Round(time.Millisecond), float64(seq)/el.Seconds(), float64(seq)*float64(size)/el.Seconds()/(1<<20),
		stalls, timeouts, pub.Dropped())
	return nil
}

// waitFor polls cond every millisecond until it holds, ctx ends or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return parallax.ErrTimeout
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}
