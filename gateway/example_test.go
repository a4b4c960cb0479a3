package gateway_test

import (
	"context"
	"fmt"
	"log"
	"os/signal"
	"syscall"

	"github.com/parallax-ipc/parallax/gateway"
)

func ExampleParseTopic() {
	t, err := gateway.ParseTopic("cam/left:acme.com/cam.Frame,64,8")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Name, t.Type)
	// Output: cam/left acme.com/cam.Frame/64/8
}

// Export "frames" from the default domain to NATS and import "commands"
// (needs a router and a NATS server, so it is compile-only).
func ExampleGateway_Run() {
	frames, _ := gateway.ParseTopic("frames")
	commands, _ := gateway.ParseTopic("commands")
	g, err := gateway.New(gateway.Options{
		NATSURL: "nats://127.0.0.1:4222",
		Export:  []gateway.Topic{frames},
		Import:  []gateway.Topic{commands},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := g.Run(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(g.Stats())
}
