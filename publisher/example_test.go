package publisher_test

import (
	"context"
	"log"
	"time"

	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/services"
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

// A publisher that publishes before its subscribers are connected loses
// those samples: nobody is there to receive them. Wait for the subscribers
// first (or keep a History that late joiners ask for), and watch
// Stats().Unconnected to see what went unheard.
func ExamplePublisher_Stats() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// History: 16 keeps the last 16 samples for subscribers that join
	// later with subscriber.Options{History: 16}.
	pub, err := publisher.New(ctx, "frames", publisher.Options{History: 16})
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitForSubscribers(ctx, 1); err != nil {
		log.Fatal(err)
	}
	if err := pub.Send([]byte("first frame")); err != nil {
		log.Fatal(err)
	}
	st := pub.Stats()
	log.Printf("published %d, delivered %d, unheard %d, dropped %d",
		st.Published, st.Delivered, st.Unconnected, st.Dropped)
}

// Two ways not to lose the first samples to subscribers that are not yet
// connected. A publisher created after its subscriber exists reaches it
// from the first sample (New waits for the connections the router
// announces), so wait for the subscriber with services.WaitForSubscriber
// before creating the publisher; or create the publisher first and wait
// with WaitForSubscribers until its connections are live. Samples
// published with nobody connected count in Stats().Unconnected, which
// `parallax topics` shows per publisher (owned memory model).
func ExamplePublisher_WaitForSubscribers() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Someone must listen before the publisher exists...
	if _, err := services.WaitForSubscriber(ctx, services.Options{}, "alerts"); err != nil {
		log.Fatal(err)
	}
	pub, err := publisher.New(ctx, "alerts", publisher.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	// ...or, with a publisher that already exists, until two subscribers
	// are connected to it.
	if err := pub.WaitForSubscribers(ctx, 2); err != nil {
		log.Fatal(err)
	}
	if err := pub.Send([]byte("disk full")); err != nil {
		log.Fatal(err)
	}
	if n := pub.Stats().Unconnected; n > 0 {
		log.Printf("%d samples were published to nobody", n)
	}
}
