package subscriber_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// closerChild subscribes to a topic, takes and releases one sample, and on
// the line "close" from stdin closes the subscriber, its only endpoint (so
// the runtime drops the router connection), and says "closed"; it does
// that rounds times, each with a new subscriber (a new router
// connection) made on the line "next", then stays alive until stdin ends:
// args socket, topic, rounds. It prints "ready" once each subscriber
// exists.
func closerChild(args []string) int {
	if len(args) != 3 {
		fmt.Fprintf(os.Stderr, "closer: want socket topic rounds, got %q\n", args)
		return 2
	}
	rounds, err := strconv.Atoi(args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "closer: rounds: %v\n", err)
		return 2
	}
	in := bufio.NewScanner(os.Stdin)
	for i := range rounds {
		if i > 0 && (!in.Scan() || in.Text() != "next") {
			fmt.Fprintf(os.Stderr, "closer: round %d: want next, got %q (%v)\n", i, in.Text(), in.Err())
			return 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		sub, err := subscriber.New(ctx, args[1], subscriber.Options{Socket: args[0], QueueCapacity: 4})
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "closer: round %d: %v\n", i, err)
			return 1
		}
		fmt.Println("ready")
		s, err := sub.TakeTimeout(30 * time.Second)
		if err == nil {
			err = s.Release()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "closer: round %d: take: %v\n", i, err)
			return 1
		}
		if !in.Scan() || in.Text() != "close" {
			fmt.Fprintf(os.Stderr, "closer: round %d: want close, got %q (%v)\n", i, in.Text(), in.Err())
			return 1
		}
		if err := sub.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "closer: round %d: close: %v\n", i, err)
			return 1
		}
		fmt.Println("closed")
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // alive until the test is done
	return 0
}

// A process that closes its subscriber and with it its last endpoint (the
// runtime drops its router connection) and lives on leaves nothing
// connected in the publisher's eyes: the publisher, in another process,
// sees its subscriber count drop to 0 and the connection removed, each
// round, while the subscriber's process is still alive. Before, the
// subscriber's ReleaseConnection ran aside and often lost the race with
// the disconnect, and the router then kept the connection closing (the
// publisher counting it) until the subscriber's process exited. The child
// makes its next subscriber only once the publisher saw the removal: made
// at once, its connection could count before the check looked (a check
// starved for a few ms on a loaded machine never saw 0 subscribers).
func TestClosedSubscriberGoneWhileProcessLives(t *testing.T) {
	t.Parallel()
	const rounds = 8
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "closer", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()

	cmd := testutil.ChildCommand(t, "closer", nil, srv.SocketPath(), "closer", strconv.Itoa(rounds))
	child, stop := startLineChild(t, cmd, "the closer child")
	defer stop()

	for i := range rounds {
		child.expect("ready")
		require.NoError(t, pub.WaitForSubscribers(ctx, 1), "round %d", i)
		c, err := pub.Loan(64)
		require.NoError(t, err)
		require.NoError(t, pub.Publish(c))
		child.say("close")
		child.expect("closed")
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			st := pub.Stats() // the last look is the one reported
			assert.Truef(c, st.Subscribers == 0 && st.Removed == uint64(i+1),
				"round %d: the closed subscriber is gone while its process lives: %+v", i, st)
		}, 20*time.Second, time.Millisecond)
		if i+1 < rounds {
			child.say("next")
		}
	}
}

// A subscriber that closes while it still holds a sample no longer counts
// as connected: the publisher sees Subscribers() drop to 0 at once (it
// delivers nothing on a closing connection), and the connection is
// removed, its chunk reclaimed, once the sample is released.
func TestClosingSubscriberNotCounted(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "closing", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	sub, err := subscriber.New(ctx, "closing", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 4})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	c, err := pub.Loan(64)
	require.NoError(t, err)
	require.NoError(t, pub.Publish(c))
	s, err := sub.TakeTimeout(20 * time.Second)
	require.NoError(t, err)
	require.NoError(t, sub.Close())
	require.Eventually(t, func() bool { return pub.Subscribers() == 0 }, 20*time.Second, time.Millisecond,
		"a closed subscriber holding a sample is not counted: %+v", pub.Stats())
	require.Zero(t, pub.Stats().Removed, "the connection is closing, not removed, while the sample is held")

	require.NoError(t, s.Release())
	require.Eventually(t, func() bool {
		st := pub.Stats()
		return st.Removed == 1 && st.Memory.Outstanding == 0
	}, 20*time.Second, time.Millisecond, "the connection goes once the sample is released: %+v", pub.Stats())
}

// A subscriber connected to several publishers releases every connection
// when it closes (the releases go out right behind CloseSubscriber, all
// at once): each publisher sees its connection removed while every
// process lives on. A release the router served before CloseSubscriber
// would be refused and leave its connection closing.
func TestCloseReleasesEveryPublisher(t *testing.T) {
	t.Parallel()
	const npubs = 3
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var pubs []*publisher.Publisher
	for range npubs {
		pub, err := publisher.New(ctx, "closeall", publisher.Options{Socket: srv.SocketPath()})
		require.NoError(t, err)
		defer pub.Close()
		pubs = append(pubs, pub)
	}
	sub, err := subscriber.New(ctx, "closeall", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 4})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, npubs))
	for _, pub := range pubs {
		require.NoError(t, pub.WaitForSubscribers(ctx, 1))
		c, err := pub.Loan(64)
		require.NoError(t, err)
		require.NoError(t, pub.Publish(c))
	}
	for range npubs {
		s, err := sub.TakeTimeout(20 * time.Second)
		require.NoError(t, err)
		require.NoError(t, s.Release())
	}
	require.NoError(t, sub.Close())
	for i, pub := range pubs {
		require.Eventually(t, func() bool {
			st := pub.Stats()
			return st.Subscribers == 0 && st.Removed == 1 && st.Memory.Outstanding == 0
		}, 20*time.Second, time.Millisecond, "publisher %d: the closed subscriber's connection is removed: %+v", i, pub.Stats())
	}
}
