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

// stepPubChild creates a publisher and says "ready"; on each line
// "publish" from stdin it sends one sample and says "published"; it closes
// the publisher when stdin ends: args socket, topic.
func stepPubChild(args []string) int {
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "steppub: want socket topic, got %q\n", args)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, args[1], publisher.Options{Socket: args[0]})
	if err != nil {
		fmt.Fprintf(os.Stderr, "steppub: %v\n", err)
		return 1
	}
	defer pub.Close()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "publish" {
			fmt.Fprintf(os.Stderr, "steppub: want publish, got %q\n", in.Text())
			return 1
		}
		if err := pub.Send([]byte("first")); err != nil {
			fmt.Fprintf(os.Stderr, "steppub: %v\n", err)
			return 1
		}
		fmt.Println("published")
	}
	return 0
}

// After WaitForPublishers returns, a sample its publisher (in another
// process) publishes is takeable by TryTake as soon as it is pushed: a
// publisher counts as connected only once its first data segment is
// mapped here. Here the read-only grant of that segment is held in the
// subscriber's push dispatch after the connection arrived. Before,
// WaitForPublishers returned with the connection alone, and the first
// TryTake found the sample's segment missing and returned ErrNoData.
func TestTryTakeAfterWaitForPublishers(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subscriber.New(ctx, "waitpub", subscriber.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer sub.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	defer unhold()
	subscriber.HoldDataSegmentsEntered(sub, entered, release)

	cmd := testutil.ChildCommand(t, "steppub", nil, srv.SocketPath(), "waitpub")
	child, stop := startLineChild(t, cmd, "the publisher child")
	defer stop()
	child.expect("ready")

	// The connection and its segment arrived; the publisher's data
	// segment is held.
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the publisher's data segment never reached the subscriber")
	}
	done, stop := context.WithCancel(ctx)
	stop()
	if sub.WaitForPublishers(done, 1) != nil {
		// Not live yet: it is once the segment is mapped.
		require.Zero(t, sub.Publishers())
		unhold()
		require.NoError(t, sub.WaitForPublishers(ctx, 1))
	}
	child.say("publish")
	child.expect("published")
	x, err := sub.TryTake()
	require.NoError(t, err, "the sample published after WaitForPublishers returned: %s", subscriber.DebugOwned(sub))
	require.Equal(t, "first", string(x.Bytes()))
	require.NoError(t, x.Release())
	unhold()
}
