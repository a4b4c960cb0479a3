// Package external is a separate module that uses Parallax as a user
// would: only its public packages, through a replace directive. It must
// compile without naming any internal type.
package external

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/discovery"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/services"
	"github.com/parallax-ipc/parallax/subscriber"
)

type point struct {
	X, Y int64
}

type other struct {
	A int32
}

// startRouter embeds a router on a private socket.
func startRouter(t *testing.T) (*roudi.Server, *roudi.Config) {
	t.Helper()
	cfg, err := roudi.ParseConfig([]byte("[publishers]\nhugepages = \"never\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Domain = "external"
	cfg.Socket = filepath.Join(t.TempDir(), "roudi.sock")
	cfg.RuntimeDir = filepath.Dir(cfg.Socket)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := roudi.Start(ctx, cfg, roudi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start router: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("stop router: %v", err)
		}
	})
	return srv, cfg
}

func TestEmbeddedTypedPubSub(t *testing.T) {
	srv, cfg := startRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A second router for the same domain is refused.
	if _, err := roudi.Start(ctx, cfg, roudi.Options{Logger: slog.New(slog.DiscardHandler)}); !errors.Is(err, discovery.ErrRouterRunning) {
		t.Fatalf("second router: err = %v, want discovery.ErrRouterRunning", err)
	}

	pub, err := publisher.NewTyped[point](ctx, "points", publisher.Options{Socket: cfg.Socket})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := subscriber.NewTyped[point](ctx, "points", subscriber.Options{Socket: cfg.Socket, QueueCapacity: 8, Policy: parallax.BlockProducer})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := pub.Publisher().WaitForSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := pub.Send(point{X: 3, Y: 4}); err != nil {
		t.Fatal(err)
	}
	s, err := sub.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Copy(); got != (point{3, 4}) {
		t.Errorf("received %+v, want {3 4}", got)
	}
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}

	// Errors match public sentinels.
	if _, err := subscriber.NewTyped[other](ctx, "points", subscriber.Options{Socket: cfg.Socket}); !errors.Is(err, parallax.ErrIncompatibleType) {
		t.Errorf("mismatched type: err = %v, want parallax.ErrIncompatibleType", err)
	}
	if _, err := publisher.New(ctx, "", publisher.Options{Socket: cfg.Socket}); !errors.Is(err, parallax.ErrInvalidArgument) {
		t.Errorf("empty topic: err = %v, want parallax.ErrInvalidArgument", err)
	}
	if _, err := parallax.ParsePolicy("sometimes"); !errors.Is(err, parallax.ErrInvalidArgument) {
		t.Errorf("unknown policy: err = %v, want parallax.ErrInvalidArgument", err)
	}

	// Introspection through public types.
	in, err := srv.Introspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var topic *roudi.TopicStat
	for i := range in.Topics {
		if in.Topics[i].Name == "points" {
			topic = &in.Topics[i]
		}
	}
	if topic == nil || topic.Publishers != 1 || topic.Subscribers != 1 || topic.Type.Size != 16 {
		t.Errorf("topic points in the introspection: %+v", topic)
	}
	var conn roudi.ConnStat
	if len(in.Connections) == 1 {
		conn = in.Connections[0]
	}
	if conn.Policy != parallax.BlockProducer {
		t.Errorf("connection policy = %v, want block-producer", conn.Policy)
	}
	// The owned memory model: one data segment of the publisher of points.
	var segs []roudi.PublisherSegStat = in.PublisherSegments
	if len(segs) != 1 || segs[0].Topic != "points" || segs[0].Count == 0 {
		t.Errorf("publisher segments: %+v", segs)
	}
	snap, err := srv.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Clients) != 1 || len(snap.Connections) != 1 {
		t.Errorf("snapshot: %d clients, %d connections; want 1, 1", len(snap.Clients), len(snap.Connections))
	}
}

// Service discovery through the public services package: the typed topic
// with its endpoints, and a wait for a publisher that appears later.
func TestServiceDiscovery(t *testing.T) {
	_, cfg := startRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := services.Options{Socket: cfg.Socket}
	sub, err := subscriber.NewTyped[point](ctx, "points", subscriber.Options{Socket: cfg.Socket})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waited := make(chan error, 1)
	go func() {
		s, err := services.WaitForPublisher(ctx, opts, "points")
		if err == nil && s.Type.Name != parallax.TypeName[point]() {
			err = errors.New("wrong type " + s.Type.String())
		}
		waited <- err
	}()
	pub, err := publisher.NewTyped[point](ctx, "points", publisher.Options{Socket: cfg.Socket})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := <-waited; err != nil {
		t.Fatalf("WaitForPublisher: %v", err)
	}
	list, err := services.List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Kind != services.KindTopic || len(list[0].Publishers) != 1 || len(list[0].Subscribers) != 1 {
		t.Fatalf("services = %+v, want the one topic with a publisher and a subscriber", list)
	}
}

// A waiting loan: with MaxLoans chunks loaned, Loan fails at once with
// parallax.ErrLimit, LoanWait waits until its context ends
// (parallax.ErrTimeout), or until another goroutine publishes a chunk.
func TestWaitingLoan(t *testing.T) {
	_, cfg := startRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "frames", publisher.Options{Socket: cfg.Socket, MaxLoans: 1, MaxPayload: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	first, err := pub.Loan(64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Loan(64); !errors.Is(err, parallax.ErrLimit) {
		t.Fatalf("second Loan: err = %v, want parallax.ErrLimit", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = pub.LoanWait(short, 64)
	cancelShort()
	if !errors.Is(err, parallax.ErrTimeout) {
		t.Fatalf("LoanWait at the limit: err = %v, want parallax.ErrTimeout", err)
	}
	got := make(chan error, 1)
	go func() {
		c, err := pub.LoanWait(ctx, 64)
		if err == nil {
			err = pub.Release(c)
		}
		got <- err
	}()
	copy(first.Bytes(), "frame 1")
	if err := pub.Publish(first); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("LoanWait after a publish: %v", err)
	}
}
