package subscriber_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/parallax-ipc/parallax/subscriber"
)

// Take samples as they arrive and release each one: its bytes are the
// publisher's shared memory, mapped read-only. Needs a running router.
func Example() {
	ctx := context.Background()
	sub, err := subscriber.New(ctx, "frames", subscriber.Options{QueueCapacity: 64, History: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	for range 10 {
		s, err := sub.Take(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(s.Header().Seq, len(s.Bytes()))
		_ = s.Release()
	}
}

// TakeTimeout bounds the wait without a context.
func ExampleSubscriber_TakeTimeout() {
	sub, err := subscriber.New(context.Background(), "frames", subscriber.Options{Policy: subscriber.DiscardOldest})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	s, err := sub.TakeTimeout(100 * time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = s.Release() }()
	fmt.Printf("%d bytes\n", len(s.Bytes()))
}
