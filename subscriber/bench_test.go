package subscriber_test

import (
	"context"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// BenchmarkTakeStream measures the taking side of a 64-byte stream between
// two goroutines of one process (two cores): a publisher goroutine
// publishes flat out into a block-producer queue of 256 while the
// benchmark's goroutine takes each sample with TakeTimeout, reads it and
// releases it. A subscriber that keeps up finds its queue empty often, so
// this covers Take's waiting path (spin, yield, sleep) as well as its
// common path. It reports msgs/s; it must allocate nothing.
func BenchmarkTakeStream(b *testing.B) {
	srv := routertest.Start(b, routertest.Small)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "bench", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 256, Policy: subscriber.BlockProducer})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	pub, err := publisher.New(ctx, "bench", publisher.Options{Socket: srv.SocketPath(), MaxPayload: 64, BlockTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitForSubscribers(ctx, 1); err != nil {
		b.Fatal(err)
	}
	n := b.N
	failed := make(chan error, 1)
	go func() {
		for i := range n {
			c, err := pub.Loan(64)
			if err == nil {
				c.Bytes()[0] = byte(i)
				err = pub.Publish(c)
			}
			if err != nil {
				failed <- err
				return
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		s, err := sub.TakeTimeout(10 * time.Second)
		if err != nil {
			select {
			case perr := <-failed:
				b.Fatalf("publisher: %v", perr)
			default:
			}
			b.Fatalf("take %d: %v", i, err)
		}
		if s.Bytes()[0] != byte(i) {
			b.Fatalf("sample %d: got %d", i, s.Bytes()[0])
		}
		if err := s.Release(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
}
