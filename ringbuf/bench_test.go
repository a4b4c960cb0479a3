package ringbuf_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// BenchmarkPushPop measures one push and one pop on the same goroutine: the
// uncontended cost of the hot path.
func BenchmarkPushPop(b *testing.B) {
	for _, p := range []ringbuf.Policy{ringbuf.DiscardOldest, ringbuf.BlockProducer} {
		b.Run(fmt.Sprintf("policy=%v", p), func(b *testing.B) {
			r := newRing(b, 1024, p)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.TryPush(1); err != nil {
					b.Fatal(err)
				}
				if _, err := r.TryPop(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPushPopDiscard measures a push into a full DiscardOldest ring: the
// producer reclaims the oldest entry (one extra CAS) on every push.
func BenchmarkPushPopDiscard(b *testing.B) {
	r := newRing(b, 1024, ringbuf.DiscardOldest)
	for i := range 1024 {
		if _, err := r.TryPush(ref(i + 1)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		d, err := r.TryPush(1)
		if err != nil || d == parallax.NilRef {
			b.Fatal("no discard", err)
		}
	}
	b.ReportMetric(float64(r.Dropped())/float64(b.N), "discards/op")
}

// BenchmarkSPSC measures throughput between a producer and a consumer
// goroutine; ns/op is per transferred ref. The consumer sleeps on a notifier
// when the ring is empty, after spinning for `spin`.
func BenchmarkSPSC(b *testing.B) {
	for _, p := range []ringbuf.Policy{ringbuf.BlockProducer, ringbuf.DiscardOldest} {
		for _, capacity := range []int{64, 1024} {
			for _, spin := range []time.Duration{-1, 10 * time.Microsecond} {
				b.Run(fmt.Sprintf("policy=%v/cap=%d/spin=%v", p, capacity, spin), func(b *testing.B) {
					benchSPSC(b, p, capacity, spin)
				})
			}
		}
	}
}

func benchSPSC(b *testing.B, p ringbuf.Policy, capacity int, spin time.Duration) {
	r := newRing(b, capacity, p)
	nt := newNotifier(b)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var popped, last uint64
	wg.Go(func() {
		ready := func() bool {
			select {
			case <-stop:
				return true
			default:
			}
			return r.Len() > 0
		}
		for {
			if v, err := r.TryPop(); err == nil {
				popped++
				last = uint64(v)
				continue
			}
			select {
			case <-stop:
				return
			default:
			}
			_ = nt.Wait(context.Background(), ready, ringbuf.WaitOptions{Spin: spin})
		}
	})
	b.ReportAllocs()
	ctx := context.Background()
	var i uint64
	var dropped int
	for b.Loop() {
		i++
		d, err := r.Push(ctx, parallax.ChunkRef(i))
		if err != nil {
			b.Fatal(err)
		}
		if d != parallax.NilRef {
			dropped++
		}
		if err := nt.Notify(); err != nil {
			b.Fatal(err)
		}
	}
	close(stop)
	_ = nt.Close() // wakes the consumer if it sleeps
	wg.Wait()
	b.ReportMetric(float64(nt.Stats().Wakes)/float64(b.N), "wakes/op")
	b.ReportMetric(float64(dropped)/float64(b.N), "drops/op")
	_ = popped
	_ = last
}

// BenchmarkNotifyNoSleeper measures Notify when the consumer is awake: one
// atomic load, no system call (wakes/op must be 0).
func BenchmarkNotifyNoSleeper(b *testing.B) {
	nt := newNotifier(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := nt.Notify(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(nt.Stats().Wakes)/float64(b.N), "wakes/op")
}

// BenchmarkWaitReady measures Wait when data is already there (no sleep).
func BenchmarkWaitReady(b *testing.B) {
	nt := newNotifier(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := func() bool { return true }
	b.ReportAllocs()
	for b.Loop() {
		if err := nt.Wait(ctx, ready, ringbuf.WaitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
