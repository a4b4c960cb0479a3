//go:build linux

package bench_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/atomiccount"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// BenchmarkOneWay streams samples (filled by the parent, whose publisher
// declares the payload size as Options.MaxPayload) to a child that reads
// each in full; the child acknowledges the total on topic ack at the
// end. msgs/s counts from the first publish until that acknowledgement.
// The child's subscriber runs with the default options (coalesce=0s) and
// with subscriber.Options.Coalesce (see there), which lets a fast stream
// arrive in batches; consumer-sleeps are the futex sleeps the child made.
// Built with -tags parallax_countatomics it also reports shm-atomics/op and
// shm-locked/op: the shared-memory atomic operations of both processes
// (parent with its in-process router, and child) per message. With
// PARALLAX_BENCH_GRID_PROFILE=dir the child writes a CPU profile of its
// receiving loop there (sink-PID.pprof); -cpuprofile covers the parent.
func BenchmarkOneWay(b *testing.B) {
	for _, size := range payloads {
		for _, co := range []time.Duration{0, oneWayCoalesce} {
			b.Run(fmt.Sprintf("payload=%d/coalesce=%v", size, co), func(b *testing.B) {
				benchOneWay(b, size, co)
			})
		}
	}
}

// oneWayCoalesce is well below the ~75 us a publisher needs to fill the
// sink's 256-entry queue with 64-byte samples.
const oneWayCoalesce = 20 * time.Microsecond

func benchOneWay(b *testing.B, size int, coalesce time.Duration) {
	srv := startRouter(b)
	sock := srv.SocketPath()
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	ack, err := subscriber.New(ctx, "ack", subscriber.Options{Socket: sock, QueueCapacity: 4, Policy: subscriber.BlockProducer})
	if err != nil {
		b.Fatal(err)
	}
	defer ack.Close()
	// The publisher declares its payload, so its chunks are sized to it
	// as the raw ring's are (tests/shm BenchmarkThroughput, the baseline):
	// an undeclared publisher gets the router's default 4 KiB chunks, one
	// page per 64-byte sample.
	pub, err := publisher.New(ctx, "stream", publisher.Options{Socket: sock, BlockTimeout: childTimeout, MaxPayload: size})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	startChild(b, "sink", sock, coalesce.String())
	waitConnected(b, pub, ack)

	b.SetBytes(int64(size))
	b.ReportAllocs()
	var n uint64
	var start time.Time
	var atomics atomiccount.Counts
	for b.Loop() {
		if n == 0 {
			start = time.Now()
			atomics = atomiccount.Snapshot()
		}
		c, err := loan(pub, size)
		if err != nil {
			b.Fatal(err)
		}
		fill(c.Bytes(), cmdData)
		if err := pub.Publish(c); err != nil {
			b.Fatal(err)
		}
		n++
	}
	atomics = atomiccount.Snapshot().Sub(atomics)
	if err := quit(pub); err != nil {
		b.Fatal(err)
	}
	s, err := ack.TakeTimeout(childTimeout)
	if err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	got := binary.LittleEndian.Uint64(s.Bytes()[8:])
	sleeps := binary.LittleEndian.Uint64(s.Bytes()[16:])
	atomics.Ops += binary.LittleEndian.Uint64(s.Bytes()[24:])
	atomics.Locked += binary.LittleEndian.Uint64(s.Bytes()[32:])
	_ = s.Release()
	b.StopTimer()
	if got != n {
		b.Fatalf("child received %d samples, sent %d", got, n)
	}
	b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(sleeps), "consumer-sleeps")
	reportAtomics(b, atomics, n)
}

// reportAtomics reports the shared-memory atomic operations counted in
// every process of a run per message (only in a parallax_countatomics
// build; see internal/atomiccount).
func reportAtomics(b *testing.B, c atomiccount.Counts, msgs uint64) {
	if !atomiccount.Enabled || msgs == 0 {
		return
	}
	b.ReportMetric(float64(c.Ops)/float64(msgs), "shm-atomics/op")
	b.ReportMetric(float64(c.Locked)/float64(msgs), "shm-locked/op")
}

// sinkMain is the child of BenchmarkOneWay: it reads every sample of topic
// stream and on the quit command publishes the count, its futex sleeps and
// its shared-memory atomics (operations, locked; zeros unless built with
// parallax_countatomics) on topic ack. Its arguments are the router socket and the coalescing
// duration.
func sinkMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "sink: want socket and coalesce")
		return 2
	}
	coalesce, err := time.ParseDuration(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "sink: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	sub, err := subscriber.New(ctx, "stream", subscriber.Options{Socket: args[0], QueueCapacity: 256, Policy: subscriber.BlockProducer, Coalesce: coalesce})
	if err != nil {
		fmt.Fprintf(os.Stderr, "sink: %v\n", err)
		return 1
	}
	defer sub.Close()
	pub, err := publisher.New(ctx, "ack", publisher.Options{Socket: args[0], BlockTimeout: childTimeout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "sink: %v\n", err)
		return 1
	}
	defer pub.Close()
	var n uint64
	atomics := atomiccount.Snapshot()
	stopProfile := gridProfile("sink")
	defer stopProfile()
	for {
		s, err := sub.TakeTimeout(childTimeout)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sink: take after %d: %v\n", n, err)
			return 1
		}
		in := s.Bytes()
		if in[0] == cmdQuit {
			_ = s.Release()
			break
		}
		touch(in)
		_ = s.Release()
		n++
	}
	stopProfile()
	atomics = atomiccount.Snapshot().Sub(atomics)
	c, err := loan(pub, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sink: loan: %v\n", err)
		return 1
	}
	binary.LittleEndian.PutUint64(c.Bytes()[8:], n)
	binary.LittleEndian.PutUint64(c.Bytes()[16:], sub.WakeStats().Sleeps)
	binary.LittleEndian.PutUint64(c.Bytes()[24:], atomics.Ops)
	binary.LittleEndian.PutUint64(c.Bytes()[32:], atomics.Locked)
	if err := pub.Publish(c); err != nil {
		fmt.Fprintf(os.Stderr, "sink: publish: %v\n", err)
		return 1
	}
	// Stay until the parent has the ack: closing the publisher first would
	// be fine too (delivered samples stay readable), but the parent's
	// subscriber must not see the connection vanish before it is wired.
	for pub.Subscribers() > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	return 0
}

// BenchmarkRoundTripUDS is BenchmarkRoundTrip over a Unix domain stream
// socket: the parent writes its filled buffer, the child reads it in full
// (copied by the kernel), touches it and writes back a filled buffer of the
// same size, which the parent reads in full.
func BenchmarkRoundTripUDS(b *testing.B) {
	for _, size := range payloads {
		b.Run(fmt.Sprintf("payload=%d", size), func(b *testing.B) {
			benchRoundTripUDS(b, size)
		})
	}
}

func benchRoundTripUDS(b *testing.B, size int) {
	path := filepath.Join(b.TempDir(), "echo.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	startChild(b, "uds-echo", path, fmt.Sprint(size))
	if err := ln.SetDeadline(time.Now().Add(childTimeout)); err != nil {
		b.Fatal(err)
	}
	conn, err := ln.AcceptUnix()
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	out := make([]byte, size)
	in := make([]byte, size)
	ping := func() error {
		fill(out, cmdData)
		if _, err := conn.Write(out); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, in); err != nil {
			return err
		}
		touch(in)
		return nil
	}
	for range 10 {
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
	fill(out, cmdQuit)
	if _, err := conn.Write(out); err != nil {
		b.Fatal(err)
	}
}

// udsEchoMain is the child of BenchmarkRoundTripUDS: args are the socket
// path and the message size.
func udsEchoMain(args []string) int {
	var size int
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "uds-echo: want path and size")
		return 2
	}
	if _, err := fmt.Sscan(args[1], &size); err != nil || size < 1 {
		fmt.Fprintf(os.Stderr, "uds-echo: bad size %q\n", args[1])
		return 2
	}
	conn, err := net.DialTimeout("unix", args[0], childTimeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "uds-echo: %v\n", err)
		return 1
	}
	defer conn.Close()
	in := make([]byte, size)
	out := make([]byte, size)
	for {
		if _, err := io.ReadFull(conn, in); err != nil {
			fmt.Fprintf(os.Stderr, "uds-echo: read: %v\n", err)
			return 1
		}
		if in[0] == cmdQuit {
			return 0
		}
		touch(in)
		fill(out, cmdData)
		if _, err := conn.Write(out); err != nil {
			fmt.Fprintf(os.Stderr, "uds-echo: write: %v\n", err)
			return 1
		}
	}
}
