package roudi_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os/signal"
	"syscall"

	"github.com/parallax-ipc/parallax/roudi"
)

// Run a router for the "lab" domain with the embedded default pools until
// Ctrl-C, serving Prometheus metrics beside it. New and Serve leave the
// serving loop to the caller (parallax-roudi does this); [roudi.Start] runs
// it on its own goroutine.
func Example() {
	cfg := roudi.DefaultConfig()
	cfg.Domain = "lab"
	srv, err := roudi.New(cfg, roudi.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:9464")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = srv.ServeMetrics(ctx, ln) }()
	if err := srv.Serve(ctx); err != nil {
		log.Fatal(err)
	}
}

// Embed a router in a program (or a test): Start returns once it accepts
// clients, and Close stops it and releases its segments.
func ExampleStart() {
	cfg := roudi.DefaultConfig()
	cfg.Domain = "embedded"
	cfg.LogLevel = "warn" // honoured when Options.Logger is nil
	srv, err := roudi.Start(context.Background(), cfg, roudi.Options{})
	if err != nil {
		log.Fatal(err) // e.g. another router owns the domain: discovery.ErrRouterRunning
	}
	defer srv.Close()
	fmt.Println("clients connect to", srv.SocketPath())
}

// Print the topics of a running router with their counters.
func ExampleServer_Introspect() {
	ctx := context.Background()
	srv, err := roudi.Start(ctx, nil, roudi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	in, err := srv.Introspect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range in.Topics {
		fmt.Printf("%s: %d published, %d delivered, %d dropped\n", t.Name, t.Published, t.Delivered, t.Dropped)
	}
}

// The embedded default configuration validates and sizes publishers that
// declare no payload size for 4 KiB.
func ExampleDefaultConfig() {
	cfg := roudi.DefaultConfig()
	fmt.Println(cfg.Validate() == nil, cfg.Publishers.DefaultMaxPayload)
	// Output: true 4 KiB
}
