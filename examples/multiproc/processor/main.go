//go:build linux

// Command processor subscribes to topic "frames", transforms every frame
// into a chunk loaned from its own publisher on topic "processed" and
// republishes it. The input is read in place in shared memory (zero-copy
// in); the output is written once, straight into the loaned chunk: the
// header with the CRC-32C of the input body, then the inverted body.
//
// It stops after -duration, after -idle without input once frames have
// flowed, or on SIGINT/SIGTERM.
//
//	processor -socket /tmp/x/roudi.sock -duration 30s
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
	"github.com/parallax-ipc/parallax/subscriber"
)

func main() {
	domain := flag.String("domain", "", "router domain (default: $PARALLAX_DOMAIN or \"default\")")
	socket := flag.String("socket", "", "router control socket (default: derived from the domain)")
	duration := flag.Duration("duration", 30*time.Second, "longest run")
	size := flag.Int("size", 0, "expected frame size in bytes; 0 accepts any")
	idle := flag.Duration("idle", time.Second, "stop after this long without input once frames have flowed")
	queue := flag.Int("queue", 16, "subscriber queue capacity")
	busy := flag.Bool("busy-poll", false, "busy-poll instead of sleeping (burns a core)")
	wait := flag.Duration("wait", 10*time.Second, "how long to wait for a subscriber of \"processed\"")
	flag.Parse()
	if *size != 0 && *size < frame.MinSize {
		fmt.Fprintf(os.Stderr, "processor: -size must be 0 or at least %d\n", frame.MinSize)
		os.Exit(2)
	}
	if err := run(*domain, *socket, *duration, *size, *idle, *queue, *busy, *wait); err != nil {
		fmt.Fprintf(os.Stderr, "processor: %v\n", err)
		os.Exit(1)
	}
}

func run(domain, socket string, duration time.Duration, size int, idle time.Duration, queue int, busy bool, wait time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sub, err := subscriber.New(ctx, "frames", subscriber.Options{
		Domain: domain, Socket: socket, QueueCapacity: queue, Policy: subscriber.BlockProducer, BusyPoll: busy,
	})
	if err != nil {
		return err
	}
	defer sub.Close()
	pub, err := publisher.New(ctx, "processed", publisher.Options{Domain: domain, Socket: socket})
	if err != nil {
		return err
	}
	defer pub.Close()
	// A signal closes the subscriber, which wakes a blocked take.
	go func() { <-ctx.Done(); sub.Close() }()
	deadline := time.Now().Add(duration)
	giveUp := time.Now().Add(min(wait, duration))
	for pub.Subscribers() == 0 {
		if ctx.Err() != nil || time.Now().After(giveUp) {
			return fmt.Errorf("no subscriber on %q after %v", pub.Topic(), min(wait, duration))
		}
		time.Sleep(time.Millisecond)
	}

	var n, stalls uint64
	var first, last time.Time
	for {
		d := time.Until(deadline)
		if n > 0 && d > idle {
			d = idle
		}
		if d <= 0 {
			break
		}
		in, err := sub.TakeTimeout(d)
		if errors.Is(err, parallax.ErrTimeout) || errors.Is(err, os.ErrClosed) {
			break
		}
		if err != nil {
			return err
		}
		if n == 0 {
			first = time.Now()
		}
		b := in.Bytes()
		if size != 0 && len(b) != size {
			_ = in.Release()
			return fmt.Errorf("frame of %d bytes, want %d", len(b), size)
		}
		var out publisher.Chunk
		for {
			out, err = pub.Loan(len(b))
			if !errors.Is(err, parallax.ErrPoolExhausted) {
				break
			}
			stalls++
			time.Sleep(20 * time.Microsecond)
		}
		if err != nil {
			_ = in.Release()
			return err
		}
		err = frame.Process(out.Bytes(), b)
		origin := in.Header().PublisherID
		_ = in.Release()
		if err != nil {
			_ = pub.Release(out)
			return fmt.Errorf("frame from publisher %d: %w", origin, err)
		}
		if err := pub.Publish(out); err != nil && !errors.Is(err, parallax.ErrTimeout) {
			return err
		}
		n++
		last = time.Now()
	}
	rate := 0.0
	if el := last.Sub(first); n > 1 && el > 0 {
		rate = float64(n-1) / el.Seconds()
	}
	fmt.Printf("processor: processed %d frames: %.0f msg/s (input dropped %d, pool stalls %d)\n", n, rate, sub.Dropped(), stalls)
	return nil
}
