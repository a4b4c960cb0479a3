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
// releases; in both memory models.
func BenchmarkLoanPublish(b *testing.B) {
	benchLoanPublish(b, routertest.Small)
}

func benchLoanPublish(b *testing.B, cfg string) {
	srv := routertest.Start(b, cfg)
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

// BenchmarkPublishBlocked measures a publish that finds its block-producer
// subscriber's queue full and sleeps until a slow consumer frees a slot
// (Spin -1: every such publish goes to the futex). The blocking path must
// allocate nothing, like the rest of the publish path.
func BenchmarkPublishBlocked(b *testing.B) {
	benchPublishBlocked(b, routertest.Small)
}

func benchPublishBlocked(b *testing.B, cfg string) {
	srv := routertest.Start(b, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "blocked", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 2, Policy: subscriber.BlockProducer})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	pub, err := publisher.New(ctx, "blocked", publisher.Options{Socket: srv.SocketPath(), Spin: -1, BlockTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitForSubscribers(ctx, 1); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A slow consumer: one sample per 50 µs, so the publisher keeps
		// finding the queue full. TryTake and time.Sleep allocate nothing.
		for {
			select {
			case <-stop:
				return
			default:
			}
			time.Sleep(50 * time.Microsecond)
			if s, err := sub.TryTake(); err == nil {
				_ = s.Release()
			}
		}
	}()
	payload := []byte("blocked")
	b.ReportAllocs()
	for b.Loop() {
		if err := pub.Send(payload); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	<-done
}
