package event_test

import (
	"context"
	"testing"

	"github.com/parallax-ipc/parallax/event"
	"github.com/parallax-ipc/parallax/internal/routertest"
)

// BenchmarkSignalWake is a ping-pong over two event services in one
// process: one op is signal → wake → signal back → wake, so the
// signal→wake latency is half of ns/op (blocking listeners: both sleep on
// the futex when idle).
func BenchmarkSignalWake(b *testing.B) {
	srv := routertest.Start(b, routertest.Owned)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := event.Options{Socket: srv.SocketPath()}
	mk := func(svc string) (*event.Notifier, *event.Listener) {
		l, err := event.NewListener(ctx, svc, opts)
		if err != nil {
			b.Fatal(err)
		}
		n, err := event.NewNotifier(ctx, svc, opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := n.WaitForListeners(ctx, 1); err != nil {
			b.Fatal(err)
		}
		return n, l
	}
	pingN, pingL := mk("ping")
	pongN, pongL := mk("pong")
	defer func() { _ = pingN.Close(); _ = pongN.Close(); _ = pingL.Close(); _ = pongL.Close() }()
	go func() {
		for {
			ids, err := pingL.Wait(ctx)
			if err != nil {
				return
			}
			if err := pongN.Signal(ids[len(ids)-1]); err != nil {
				return
			}
		}
	}()
	b.ResetTimer()
	for i := range b.N {
		if err := pingN.Signal(uint64(i)); err != nil {
			b.Fatal(err)
		}
		if _, err := pongL.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
