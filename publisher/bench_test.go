package publisher_test

import (
	"context"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// BenchmarkLoanPublish measures the publishing side alone: loan 64 B, write,
// publish to one subscriber (in this process) whose goroutine drains and
// releases.
func BenchmarkLoanPublish(b *testing.B) {
	srv := routertest.Start(b, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "bench", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 256, Policy: subscriber.BlockProducer, Spin: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	pub, err := publisher.New(ctx, "bench", publisher.Options{Socket: srv.SocketPath()})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			s, err := sub.Take(ctx)
			if err != nil {
				return
			}
			_ = s.Release()
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		c, err := pub.Loan(64)
		if err != nil {
			b.Fatal(err)
		}
		c.Bytes()[0] = 1
		if err := pub.Publish(c); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = sub.Close()
	cancel()
	<-done
}
