package shm_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/ringbuf"
)

// ownedPayloads are the payloads of the owned benchmarks: the gate
// is one-way 64 B and 4 KiB at ≥ 0.8× BenchmarkThroughput's.
var ownedPayloads = []int{64, 4 << 10}

// BenchmarkOwnedThroughput is BenchmarkThroughput on the owned path: the
// parent publisher loans from its own Tracker (LIFO), writes the whole
// payload and the chunk header, delivers (private bit), pushes into the
// connection's BlockProducer data ring (capacity 64, as the raw benchmark)
// and notifies; every 16 sends it drains the return ring in one batch. The
// child subscriber validates each ref against the read-only data segment,
// reads every byte, and returns the ref. msgs/s counts until every chunk is
// back in the publisher's free list. Run it beside BenchmarkThroughput in one
// invocation to read off the owned/raw ratio.
func BenchmarkOwnedThroughput(b *testing.B) {
	for _, mode := range benchModes {
		for _, payload := range ownedPayloads {
			b.Run(fmt.Sprintf("mode=%s/payload=%d", mode, payload), func(b *testing.B) {
				d, cd := ownedSizes(1, 1, payload, 64, 1, ringbuf.BlockProducer)
				dm, cm := routerDataSeg(b, d), routerConnSeg(b, cd)
				pub := mustOwnedPub(b, dm, d, mode, payload)
				pc := mustConn(b, pub, cm, cd)
				sink := startOwned(b, "sink", "owned-sink", []*os.File{grant(b, dm, true), grant(b, cm, false)},
					ownedConfig{Data: d, Conn: cd, Mode: mode, Payload: payload}, false, abortConn(pc))
				// Done when the sink has returned everything and the
				// publisher has taken it back.
				drain := func() {
					for pub.tr.Stats().InUse > 0 && pc.err == nil {
						pub.drainAll()
						runtime.Gosched()
					}
				}
				var seq uint64
				for range 100 { // warm up: the child is running and waiting
					seq++
					if err := pub.send(seq); err != nil {
						b.Fatal(err)
					}
				}
				drain()
				b.SetBytes(int64(payload))
				b.ReportAllocs()
				first := seq
				start := time.Now()
				for b.Loop() {
					seq++
					if err := pub.send(seq); err != nil {
						b.Fatal(err)
					}
				}
				drain()
				elapsed := time.Since(start)
				if pc.err != nil {
					b.Fatal(pc.err)
				}
				closeConn(pc)
				if err := sink.wait(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(seq-first)/elapsed.Seconds(), "msgs/s")
				b.ReportMetric(float64(pc.wake.Stats().Wakes)/float64(seq), "wakes/op")
			})
		}
	}
}

// BenchmarkOwnedPingPong is BenchmarkPingPong on the owned path: each side
// is a publisher with its own data segment and Tracker and a subscriber of
// the other's, over two connections (data ring capacity 2, as the raw
// benchmark). ns/op is one round trip.
func BenchmarkOwnedPingPong(b *testing.B) {
	for _, mode := range benchModes {
		for _, payload := range ownedPayloads {
			b.Run(fmt.Sprintf("mode=%s/payload=%d", mode, payload), func(b *testing.B) {
				d, cd := ownedSizes(1, 1, payload, 2, 1, ringbuf.BlockProducer)
				ed, ecd := ownedSizes(2, 2, payload, 2, 1, ringbuf.BlockProducer)
				dm, cm := routerDataSeg(b, d), routerConnSeg(b, cd)
				edm, ecm := routerDataSeg(b, ed), routerConnSeg(b, ecd)
				pub := mustOwnedPub(b, dm, d, mode, payload)
				pc := mustConn(b, pub, cm, cd)
				sub, err := openOwnedSub(grant(b, edm, true), grant(b, ecm, false), ed, ecd, mode, payload)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = sub.Close() })
				echo := startOwned(b, "echo", "owned-echo",
					[]*os.File{grant(b, dm, true), grant(b, cm, false), grant(b, edm, false), grant(b, ecm, false)},
					ownedConfig{Data: d, Conn: cd, EchoData: ed, EchoConn: ecd, Mode: mode, Payload: payload}, false,
					func() { abortConn(pc)(); _ = sub.data.Close(); _ = sub.wake.Close() })
				roundTrip := func(seq uint64) error {
					if err := pub.send(seq); err != nil {
						return err
					}
					got, err := sub.recv()
					if err == nil && got != seq {
						err = fmt.Errorf("answer %d to message %d", got, seq)
					}
					return err
				}
				runPingPong(b, roundTrip)
				if pc.err != nil {
					b.Fatal(pc.err)
				}
				closeConn(pc)
				if err := echo.wait(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// ownedEchoChild answers every message on the parent's connection with one
// of its own, published from its own data segment on the connection back.
// PARALLAX_BENCH_CPUPROFILE=path writes a CPU profile of the child.
func ownedEchoChild(args []string) int {
	return runOwnedChild("owned-echo", args, func(c ownedConfig) error {
		stop, err := childProfile()
		if err != nil {
			return err
		}
		defer stop()
		sub, err := openOwnedSub(os.NewFile(3, "data"), os.NewFile(4, "conn"), c.Data, c.Conn, c.Mode, c.Payload)
		if err != nil {
			return err
		}
		defer sub.Close()
		pub, err := newOwnedPub(os.NewFile(5, "echo-data"), c.EchoData, c.Mode, c.Payload)
		if err != nil {
			return err
		}
		defer pub.Close()
		pc, err := pub.addConn(os.NewFile(6, "echo-conn"), c.EchoConn)
		if err != nil {
			return err
		}
		send := func(seq uint64) error {
			if err := pub.send(seq); err != nil {
				return err
			}
			return pc.err
		}
		return echoLoop(sub.recv, send, func() { closeConn(pc) })
	})
}

// echoLoop is the echo side of a ping-pong: it answers every sequence
// number recv yields, in order from 1, with send, until recv reports
// io.EOF (the pinger closed), then calls done.
func echoLoop(recv func() (uint64, error), send func(uint64) error, done func()) error {
	for want := uint64(1); ; want++ {
		seq, err := recv()
		if errors.Is(err, io.EOF) {
			done()
			return nil
		}
		if err != nil {
			return err
		}
		if seq != want {
			return fmt.Errorf("message %d, want %d", seq, want)
		}
		if err := send(seq); err != nil {
			return err
		}
	}
}

// childProfile starts a CPU profile of a benchmark child when
// PARALLAX_BENCH_CPUPROFILE names a file (the pid is appended).
func childProfile() (stop func(), err error) {
	path := os.Getenv("PARALLAX_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
