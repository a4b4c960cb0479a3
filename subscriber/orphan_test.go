package subscriber_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// orphanSize is the payload of each sample orphanPubChild publishes.
const orphanSize = 200

// orphanPubChild publishes n patterned samples (sample i, from 0, filled
// by pattern with seed i) on a topic once a subscriber is connected, then
// exits at once, without closing: args socket, topic, n.
func orphanPubChild(args []string) int {
	if len(args) != 3 {
		fmt.Fprintf(os.Stderr, "orphanpub: want socket topic n, got %q\n", args)
		return 2
	}
	n, err := strconv.Atoi(args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "orphanpub: n: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, args[1], publisher.Options{Socket: args[0], MaxPayload: orphanSize})
	if err == nil {
		err = pub.WaitForSubscribers(ctx, 1)
	}
	for i := 0; err == nil && i < n; i++ {
		var c publisher.Chunk
		if c, err = pub.Loan(orphanSize); err == nil {
			pattern(c.Bytes(), byte(i))
			err = pub.Publish(c)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "orphanpub: %v\n", err)
		return 1
	}
	return 0 // exits with the publisher open: the router sees its client go
}

// A publisher process that publishes and exits before its subscriber has
// mapped its data segment (the grant is still queued in the subscriber's
// process when a ref names it, so the subscriber asks GetDataSegment, and
// the router, which closed the dead publisher's fds, refuses) loses
// nothing: the subscriber drains every sample, intact, from the segment
// the queued grant brings. Afterwards, with an idle client attached, the
// dead publisher's segments are gone from this process (router and
// subscriber both) and from the router's accounting.
func TestOwnedOrphanDrainedBeforeSegmentMapped(t *testing.T) {
	t.Parallel()
	const n = 16
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	idle, err := subscriber.New(ctx, "idle", subscriber.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer idle.Close()
	sub, err := subscriber.New(ctx, "orphan", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 2 * n})
	require.NoError(t, err)
	defer sub.Close()

	release := make(chan struct{})
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	defer unhold()
	subscriber.HoldDataSegments(sub, release)

	cmd := testutil.ChildCommand(t, "orphanpub", nil, srv.SocketPath(), "orphan", strconv.Itoa(n))
	require.NoError(t, cmd.Run(), "the publisher child")
	require.Eventually(t, func() bool {
		snap, err := srv.Snapshot(ctx)
		if err != nil {
			return false
		}
		for _, tp := range snap.Topics {
			if tp.Name == "orphan" {
				return len(tp.Publishers) == 0
			}
		}
		return false
	}, 30*time.Second, time.Millisecond, "the router learns the publisher is gone")

	type got struct {
		data []byte
		pub  uint32
		seq  uint64
		err  error
	}
	samples := make(chan got, n)
	go func() {
		for range n {
			x, err := sub.TakeTimeout(20 * time.Second)
			if err != nil {
				samples <- got{err: err}
				return
			}
			samples <- got{data: bytes.Clone(x.Bytes()), pub: x.Header().PublisherID, seq: x.Header().Seq, err: x.Release()}
		}
	}()
	// The first ref names segment 0, whose grant is held: the subscriber
	// asks, and the router refuses (the publisher is gone).
	require.Eventually(t, func() bool { return subscriber.SegmentAnswers(sub) >= 1 }, 30*time.Second, time.Millisecond,
		"the subscriber asks for the segment it lacks: %s", subscriber.DebugOwned(sub))
	unhold()

	var pubID uint32
	for i := range n {
		g := <-samples
		require.NoError(t, g.err, "sample %d of %d: %s", i+1, n, subscriber.DebugOwned(sub))
		want := make([]byte, orphanSize)
		pattern(want, byte(i))
		require.Equal(t, uint64(i+1), g.seq, "samples in order, none lost")
		require.True(t, bytes.Equal(want, g.data), "content of sample %d", i+1)
		pubID = g.pub
	}
	require.EqualValues(t, 1, subscriber.SegmentAsks(sub))

	prefix := fmt.Sprintf("plx:%s:p%d.", srv.Config().Domain, pubID)
	require.Eventually(t, func() bool {
		in, err := srv.Introspect(ctx)
		if err != nil {
			return false
		}
		for _, s := range in.PublisherSegments {
			if s.PubID == pubID {
				return false
			}
		}
		return len(selfSegments(prefix)) == 0
	}, 30*time.Second, time.Millisecond, "the dead publisher's segments are freed: %v", selfSegments(prefix))
}

// selfSegments lists this process's fds and mappings whose names contain
// name.
func selfSegments(name string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.Contains(l, name) {
			out = append(out, "fd "+l)
		}
	}
	maps, _ := os.ReadFile("/proc/self/maps")
	for line := range strings.SplitSeq(string(maps), "\n") {
		if strings.Contains(line, name) {
			out = append(out, "map "+line)
		}
	}
	return out
}
