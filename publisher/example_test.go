package publisher_test

import (
	"context"
	"log"
	"time"

	"github.com/parallax-ipc/parallax/publisher"
)

// Loan a chunk of shared memory, fill it in place and publish it: the
// payload is never copied. Needs a running router (parallax-roudi).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "frames", publisher.Options{History: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	c, err := pub.Loan(4096)
	if err != nil {
		log.Fatal(err)
	}
	b := c.Bytes()
	for i := range b {
		b[i] = byte(i)
	}
	if err := pub.Publish(c); err != nil {
		log.Fatal(err)
	}
}

// Send copies a byte slice into a loaned chunk: the convenient path for
// small messages.
func ExamplePublisher_Send() {
	ctx := context.Background()
	pub, err := publisher.New(ctx, "logs/app", publisher.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitForSubscribers(ctx, 1); err != nil {
		log.Fatal(err)
	}
	if err := pub.Send([]byte("hello")); err != nil {
		log.Fatal(err)
	}
}
