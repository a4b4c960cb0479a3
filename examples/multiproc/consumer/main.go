//go:build linux

// Command consumer subscribes to topic "processed", verifies every frame
// (checksum, inverted pattern, sequence gaps) and measures the end-to-end
// latency from the producer's publish timestamp to the moment it holds the
// processed frame. At the end it prints messages/s and p50/p99 latency.
//
// It stops after -duration, after -idle without input once frames have
// flowed, or on SIGINT/SIGTERM. It exits 1 when a frame failed
// verification or none arrived.
//
//	consumer -socket /tmp/x/roudi.sock -duration 30s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/examples/multiproc/frame"
	"github.com/parallax-ipc/parallax/subscriber"
)

// maxSamples bounds the latency reservoir (Algorithm R beyond it).
const maxSamples = 1 << 21

func main() {
	domain := flag.String("domain", "", "router domain (default: $PARALLAX_DOMAIN or \"default\")")
	socket := flag.String("socket", "", "router control socket (default: derived from the domain)")
	duration := flag.Duration("duration", 30*time.Second, "longest run")
	size := flag.Int("size", 0, "expected frame size in bytes; 0 takes it from the first frame")
	idle := flag.Duration("idle", time.Second, "stop after this long without input once frames have flowed")
	queue := flag.Int("queue", 16, "subscriber queue capacity")
	busy := flag.Bool("busy-poll", false, "busy-poll instead of sleeping (burns a core)")
	flag.Parse()
	if *size != 0 && *size < frame.MinSize {
		fmt.Fprintf(os.Stderr, "consumer: -size must be 0 or at least %d\n", frame.MinSize)
		os.Exit(2)
	}
	ok, err := run(*domain, *socket, *duration, *size, *idle, *queue, *busy)
	if err != nil {
		fmt.Fprintf(os.Stderr, "consumer: %v\n", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(domain, socket string, duration time.Duration, size int, idle time.Duration, queue int, busy bool) (bool, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sub, err := subscriber.New(ctx, "processed", subscriber.Options{
		Domain: domain, Socket: socket, QueueCapacity: queue, Policy: subscriber.BlockProducer, BusyPoll: busy,
	})
	if err != nil {
		return false, err
	}
	defer sub.Close()
	go func() { <-ctx.Done(); sub.Close() }()

	var v *frame.Verifier
	if size != 0 {
		v = frame.NewVerifier(size)
	}
	lat := make([]int64, 0, maxSamples)
	rng := rand.New(rand.NewPCG(1, 2))
	var n, bad, gaps, lastSeq uint64
	var first, last time.Time
	var firstErr error
	deadline := time.Now().Add(duration)
	for {
		d := time.Until(deadline)
		if n > 0 && d > idle {
			d = idle
		}
		if d <= 0 {
			break
		}
		s, err := sub.TakeTimeout(d)
		if errors.Is(err, parallax.ErrTimeout) || errors.Is(err, os.ErrClosed) {
			break
		}
		if err != nil {
			return false, err
		}
		b := s.Bytes()
		if v == nil {
			if len(b) < frame.MinSize {
				_ = s.Release()
				return false, fmt.Errorf("first frame has %d bytes", len(b))
			}
			v = frame.NewVerifier(len(b))
		}
		h, err := v.Verify(b)
		now := time.Now()
		_ = s.Release()
		n++
		if n == 1 {
			first = now
		}
		last = now
		if err != nil {
			bad++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if h.Seq > lastSeq+1 && lastSeq != 0 {
			gaps += h.Seq - lastSeq - 1
		}
		lastSeq = h.Seq
		l := now.UnixNano() - h.Timestamp
		if len(lat) < maxSamples {
			lat = append(lat, l)
		} else if j := rng.Uint64N(n); j < maxSamples {
			lat[j] = l
		}
	}
	if n == 0 {
		fmt.Println("consumer: received no frames")
		return false, nil
	}
	rate := 0.0
	if el := last.Sub(first); n > 1 && el > 0 {
		rate = float64(n-1) / el.Seconds()
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return time.Duration(lat[min(len(lat)-1, int(p*float64(len(lat))))])
	}
	fmt.Printf("consumer: received %d frames: %.0f msg/s; end-to-end latency p50 %v p99 %v max %v; sequence gaps %d, bad frames %d\n",
		n, rate, pct(0.50), pct(0.99), pct(1), gaps, bad)
	if firstErr != nil {
		fmt.Printf("consumer: first bad frame: %v\n", firstErr)
	}
	return bad == 0, nil
}
