package shm_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// BenchmarkEngineThroughput is BenchmarkOwnedThroughput with the publisher
// side played by the ownedpub engine: same segments (capacity 64, bound
// 65), same child subscriber. The engine drains when a loan finds the free
// list empty, when the connection is at its bound, and every 64 publishes.
// Run it beside BenchmarkThroughput to read off engine/raw.
func BenchmarkEngineThroughput(b *testing.B) {
	for _, mode := range benchModes {
		for _, payload := range ownedPayloads {
			for _, single := range []bool{false, true} {
				b.Run(fmt.Sprintf("mode=%s/payload=%d/single=%v", mode, payload, single), func(b *testing.B) {
					d, cd := ownedSizes(1, 1, payload, 64, 1, ringbuf.BlockProducer)
					dm, cm := routerDataSeg(b, d), routerConnSeg(b, cd)
					pub, err := newEnginePub(grant(b, dm, false), d, payload,
						ownedpub.Options{MaxLoans: 1, Wait: waitOptions(mode), DrainEvery: drainEveryFlag, SingleGoroutine: single})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = pub.Close() })
					pc, err := pub.addConn(grant(b, cm, false), cd)
					if err != nil {
						b.Fatal(err)
					}
					sink := startOwned(b, "sink", "owned-sink", []*os.File{grant(b, dm, true), grant(b, cm, false)},
						ownedConfig{Data: d, Conn: cd, Mode: mode, Payload: payload}, false, abortEngineConn(pc))
					drain := func() {
						for pub.e.Stats().InUse > 0 && pc.c.Err() == nil {
							pub.e.Drain()
							runtime.Gosched()
						}
					}
					var seq uint64
					for range 100 {
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
					if err := pc.c.Err(); err != nil {
						b.Fatal(err)
					}
					closeEngineConn(pc)
					if err := sink.wait(); err != nil {
						b.Fatal(err)
					}
					st := pub.e.Stats()
					b.ReportMetric(float64(seq-first)/elapsed.Seconds(), "msgs/s")
					b.ReportMetric(float64(st.Drains)/float64(seq), "drains/op")
					b.ReportMetric(float64(st.Waits)/float64(seq), "waits/op")
					b.ReportMetric(float64(pc.rc.DataWake().Stats().Wakes)/float64(seq), "wakes/op")
				})
			}
		}
	}
}

// BenchmarkEnginePingPong is BenchmarkOwnedPingPong with both publishers
// (the parent's and the echo child's) played by the ownedpub engine: data
// ring capacity 2. With held=1 (as BenchmarkOwnedPingPong) the bound is 3
// and a publisher has 4 chunks, like the raw benchmark's pool; with the
// drain only on need (the bound is reached every third message) a round
// trip no longer pays a return-ring hand-off per message. held=16 is the
// design's default MaxHeld: bound 18, 19 chunks, a drain every 18th
// message. ns/op is one round trip.
func BenchmarkEnginePingPong(b *testing.B) {
	for _, mode := range benchModes {
		for _, payload := range ownedPayloads {
			for _, held := range []int{1, 16} {
				for _, single := range []bool{false, true} {
					b.Run(fmt.Sprintf("mode=%s/payload=%d/held=%d/single=%v", mode, payload, held, single), func(b *testing.B) {
						enginePingPong(b, mode, payload, held, single)
					})
				}
			}
		}
	}
}

func enginePingPong(b *testing.B, mode string, payload, held int, single bool) {
	d, cd := ownedSizesHeld(1, 1, payload, 2, 1, held, ringbuf.BlockProducer)
	ed, ecd := ownedSizesHeld(2, 2, payload, 2, 1, held, ringbuf.BlockProducer)
	dm, cm := routerDataSeg(b, d), routerConnSeg(b, cd)
	edm, ecm := routerDataSeg(b, ed), routerConnSeg(b, ecd)
	pub, err := newEnginePub(grant(b, dm, false), d, payload, ownedpub.Options{MaxLoans: 1, Wait: waitOptions(mode), DrainEvery: drainEveryFlag})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pub.Close() })
	pc, err := pub.addConn(grant(b, cm, false), cd)
	if err != nil {
		b.Fatal(err)
	}
	sub, err := openOwnedSub(grant(b, edm, true), grant(b, ecm, false), ed, ecd, mode, payload)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Close() })
	echo := startOwned(b, "echo", "engine-echo",
		[]*os.File{grant(b, dm, true), grant(b, cm, false), grant(b, edm, false), grant(b, ecm, false)},
		ownedConfig{Data: d, Conn: cd, EchoData: ed, EchoConn: ecd, Mode: mode, Payload: payload}, false,
		func() { abortEngineConn(pc)(); _ = sub.data.Close(); _ = sub.wake.Close() })
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
	if err := pc.c.Err(); err != nil {
		b.Fatal(err)
	}
	closeEngineConn(pc)
	if err := echo.wait(); err != nil {
		b.Fatal(err)
	}
}

// engineEchoChild is ownedEchoChild with its publisher side played by the
// ownedpub engine.
func engineEchoChild(args []string) int {
	return runOwnedChild("engine-echo", args, func(c ownedConfig) error {
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
		pub, err := newEnginePub(os.NewFile(5, "echo-data"), c.EchoData, c.Payload,
			ownedpub.Options{MaxLoans: 1, Wait: waitOptions(c.Mode), SingleGoroutine: c.Single})
		if err != nil {
			return err
		}
		defer pub.Close()
		pc, err := pub.addConn(os.NewFile(6, "echo-conn"), c.EchoConn)
		if err != nil {
			return err
		}
		return echoLoop(sub.recv, pub.send, func() { closeEngineConn(pc) })
	})
}
