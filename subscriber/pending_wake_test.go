package subscriber_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// bigPayload is larger than growPubChild's MaxPayload: its loan gets a
// dedicated data segment.
const bigPayload = 4096

// growPubChild creates an untyped publisher with a 64-byte MaxPayload and
// says "ready"; on each line "big" from stdin it publishes one
// bigPayload-byte sample (the first one grows a dedicated segment) and
// says "published": args socket, topic.
func growPubChild(args []string) int {
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "growpub: want socket topic, got %q\n", args)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, args[1], publisher.Options{Socket: args[0], MaxPayload: 64})
	if err != nil {
		fmt.Fprintf(os.Stderr, "growpub: %v\n", err)
		return 1
	}
	defer pub.Close()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "big" {
			fmt.Fprintf(os.Stderr, "growpub: want big, got %q\n", in.Text())
			return 1
		}
		c, err := pub.Loan(bigPayload)
		if err == nil {
			c.Bytes()[0] = 'B'
			err = pub.Publish(c)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "growpub: %v\n", err)
			return 1
		}
		fmt.Println("published")
	}
	return 0
}

// pendingWake runs the scenario of the pending-segment wake tests: a
// publisher in a child process publishes one sample into a segment it just
// grew while the subscriber's grant of that segment is held; wait (Take or
// a WaitSet's Wait, in a goroutine) pops the sample's ref, keeps it pending
// and sleeps; once the grant is released it must return the sample, woken
// by the segment's arrival: the connection's data wake counts one more
// futex wake-up (a waiter that noticed the segment only when a sleep slice
// ended, 100 ms in ringbuf, 10 ms in a WaitSet, counts none). The check is
// a counter, not a time: the waiter's flag stays set for the whole wait
// (ringbuf re-arms it on every inner slice; the WaitSet's own slice is made
// longer than the test), so the arrival's Notify always finds it asleep.
func pendingWake(t *testing.T, topic string, wait func(ctx context.Context, sub *subscriber.Subscriber) error) {
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, topic, subscriber.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer sub.Close()

	cmd := testutil.ChildCommand(t, "growpub", nil, srv.SocketPath(), topic)
	child, stop := startLineChild(t, cmd, "the publisher child")
	defer stop()
	child.expect("ready")
	require.NoError(t, sub.WaitForPublishers(ctx, 1)) // segment 0 is mapped

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	defer unhold()
	subscriber.HoldDataSegmentsEntered(sub, entered, release)
	child.say("big")
	child.expect("published")
	select {
	case <-entered: // the grown segment's grant is held
	case <-ctx.Done():
		t.Fatal("the grown segment never reached the subscriber")
	}

	got := make(chan error, 1)
	go func() { got <- wait(ctx, sub) }()
	// Release the grant once the waiter sleeps on the connection's wake
	// word with the sample's ref kept pending.
	require.Eventually(t, func() bool { return subscriber.WaitSleeping(sub) }, 20*time.Second, time.Millisecond,
		"the waiter sleeps: %s", subscriber.DebugOwned(sub))
	before := sub.WakeStats().Wakes
	unhold()
	require.NoError(t, <-got, subscriber.DebugOwned(sub))
	require.Greater(t, sub.WakeStats().Wakes, before,
		"the segment's arrival woke the sleeping waiter (else it waited for its slice): %s", subscriber.DebugOwned(sub))
}

// A Take sleeping while the sample it popped waits for its segment returns
// it as soon as the segment is added: the arrival wakes it.
func TestPendingSegmentWakesTake(t *testing.T) {
	t.Parallel()
	pendingWake(t, "pendtake", func(ctx context.Context, sub *subscriber.Subscriber) error {
		x, err := sub.Take(ctx)
		if err != nil {
			return err
		}
		if len(x.Bytes()) != bigPayload || x.Bytes()[0] != 'B' {
			err := fmt.Errorf("sample of %d bytes starting %q", len(x.Bytes()), x.Bytes()[:1])
			_ = x.Release()
			return err
		}
		return x.Release()
	})
}

// A WaitSet sleeping on a subscriber whose sample waits for its segment
// returns as soon as the segment is added.
func TestPendingSegmentWakesWaitSet(t *testing.T) {
	t.Parallel()
	pendingWake(t, "pendws", func(ctx context.Context, sub *subscriber.Subscriber) error {
		ws, err := subscriber.NewWaitSet(sub)
		if err != nil {
			return err
		}
		// A slice longer than the test: a sleep ends only by a wake (with
		// its 10 ms slice the set could look again between a slice's
		// end and the next sleep, see no wake and yet find the sample).
		subscriber.SetWaitSetSlice(ws, time.Hour)
		for {
			if _, err := ws.Wait(ctx); err != nil {
				return err
			}
			x, err := sub.TryTake()
			if err == subscriber.ErrNoData {
				continue // its segment is not added yet: the connection is skipped
			}
			if err != nil {
				return err
			}
			return x.Release()
		}
	})
}
