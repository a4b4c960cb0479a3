package gateway_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// BenchmarkBridge measures throughput from a publisher in domain A to a
// subscriber in domain B across gateway A -> NATS (embedded, loopback TCP)
// -> gateway B, beside the same publisher and subscriber in one domain.
// A credit window keeps the bridge lossless (at most window samples in
// flight), so msgs/s is delivered messages. MB/s comes from b.SetBytes.
func BenchmarkBridge(b *testing.B) {
	for _, size := range []int{64, 1 << 10, 64 << 10} {
		window := 256
		if size > 4096 {
			window = 24 // the test routers have 64 chunks of 64 KiB
		}
		for _, path := range []string{"bridge", "local"} {
			b.Run(fmt.Sprintf("payload=%d/path=%s", size, path), func(b *testing.B) {
				benchBridge(b, size, window, path == "bridge")
			})
		}
	}
}

func benchBridge(b *testing.B, size, window int, bridged bool) {
	ctx := context.Background()
	ra := newRouter(b)
	rsub := ra
	typ := &gateway.Type{Name: "bench"}
	if bridged {
		rsub = newRouter(b)
		ns := startNATS(b, -1, 0)
		topic := []gateway.Topic{{Name: "bench", Type: typ}}
		startGateway(b, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.cfg.Socket, Export: topic, QueueCapacity: 512, StatsInterval: -1})
		startGateway(b, gateway.Options{NATSURL: ns.ClientURL(), Socket: rsub.cfg.Socket, Import: topic, StatsInterval: -1})
	}
	sub, err := subscriber.New(ctx, "bench", subscriber.Options{Socket: rsub.cfg.Socket, TypeName: "bench", QueueCapacity: 512, Policy: subscriber.BlockProducer})
	require.NoError(b, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "bench", publisher.Options{Socket: ra.cfg.Socket, TypeName: "bench"})
	require.NoError(b, err)
	defer pub.Close()
	require.NoError(b, pub.WaitForSubscribers(ctx, 1))

	credits := make(chan struct{}, window)
	for range window {
		credits <- struct{}{}
	}
	rctx, cancel := context.WithCancel(ctx)
	recvErr := make(chan error, 1)
	go func() {
		for {
			s, err := sub.Take(rctx)
			if err != nil {
				recvErr <- err
				return
			}
			_ = s.Release()
			credits <- struct{}{}
		}
	}()
	defer func() { cancel(); _ = <-recvErr }()
	data := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	// One timer for the whole run: time.After would allocate per message
	// and hide the bridge's own allocations in allocs/op.
	stall := time.NewTimer(20 * time.Second)
	defer stall.Stop()
	start := time.Now()
	n := 0
	for b.Loop() {
		select {
		case <-credits:
		default:
			stall.Reset(20 * time.Second)
			select {
			case <-credits:
			case <-stall.C:
				b.Fatalf("no delivery for 20 s after %d messages", n)
			}
		}
		if err := pub.Send(data); err != nil {
			b.Fatal(err)
		}
		n++
	}
	for range window { // wait until everything arrived
		select {
		case <-credits:
		case <-time.After(20 * time.Second):
			b.Fatalf("messages in flight never arrived")
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(n)*float64(size)/el.Seconds()/1e6, "MB/s-delivered")
}
