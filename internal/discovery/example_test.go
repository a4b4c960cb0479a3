package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Example shows a process attaching to its domain's router and creating a
// publisher. It needs a running router, so it has no verified output.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt, err := discovery.Dial(ctx, discovery.DialOptions{})
	if errors.Is(err, parallax.ErrDaemonUnavailable) {
		fmt.Println(err) // names the socket and how to start a router
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close()
	reply, files, err := rt.Request(ctx, &wire.CreatePublisher{Topic: "camera/front", Type: wire.TypeInfo{Name: "Frame", Size: 4096, Align: 64}}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	fmt.Println("publisher", reply.(*wire.PublisherCreated).PubID)
}
