package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// TestTopicsPublisherCounters: in the owned model `parallax topics` shows,
// per publisher, the counters its process reported: published, delivered,
// dropped, unconnected (published while no subscriber was connected) and
// removed connections; `-json` carries them under "publishers".
func TestTopicsPublisherCounters(t *testing.T) {
	srv := routertest.Start(t, routertest.Owned)
	sock := sockFlag(srv.SocketPath())
	ctx := t.Context()
	pub, err := publisher.New(ctx, "cli/early", publisher.Options{Socket: srv.SocketPath(), MaxPayload: 256})
	require.NoError(t, err)
	defer pub.Close()
	for range 5 {
		require.NoError(t, pub.Send([]byte("too early")))
	}
	sub, err := subscriber.New(ctx, "cli/early", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 8})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	for range 3 {
		require.NoError(t, pub.Send([]byte("heard")))
	}

	row := regexp.MustCompile(fmt.Sprintf(`(?m)^cli/early\s+%d\s+%d\s+8\s+3\s+0\s+5\s+0\s*$`, pub.ID(), os.Getpid()))
	var out string
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		code, o, errs := runCLI(t, "", "topics", sock)
		require.Equal(t, exitOK, code, errs)
		out = o
		if row.MatchString(out) {
			break
		}
		require.True(t, time.Now().Before(deadline), "topics never showed the publisher's counters:\n%s", out)
		<-tick.C
	}
	require.Regexp(t, `(?m)^TOPIC\s+PUB\s+PID\s+PUBLISHED\s+DELIVERED\s+DROPPED\s+UNCONNECTED\s+REMOVED$`, out)
	require.Regexp(t, `(?m)^TOPIC\s+TYPE\s+PUBS\s+SUBS`, out, "the topics table is still there")

	code, js, errs := runCLI(t, "", "topics", "-json", sock)
	require.Equal(t, exitOK, code, errs)
	var v view
	require.NoError(t, json.Unmarshal([]byte(js), &v), js)
	require.Len(t, v.Publishers, 1, js)
	p := v.Publishers[0]
	require.Equal(t, pub.ID(), p.PubID)
	require.True(t, p.Reported)
	require.EqualValues(t, 8, p.Published)
	require.EqualValues(t, 3, p.Delivered)
	require.EqualValues(t, 5, p.Unconnected)
}

// TestTopicsCounters: `parallax topics` shows a topic's published,
// delivered and dropped counts as its publisher's own Stats (reported
// about once a second), in the table and in -json; no queue-depth or rate
// column is left that nothing fills, and `parallax clients -json` carries
// none of the router-side ring fields nothing fills (depth, pushed, popped,
// rates).
func TestTopicsCounters(t *testing.T) {
	srv := routertest.Start(t, routertest.Owned)
	sock := sockFlag(srv.SocketPath())
	ctx := t.Context()
	sub, err := subscriber.New(ctx, "cli/counted", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 4, Policy: subscriber.DiscardOldest})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "cli/counted", publisher.Options{Socket: srv.SocketPath(), MaxPayload: 64})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	for range 9 {
		require.NoError(t, pub.Send([]byte("counted")))
	}
	st := pub.Stats()
	require.EqualValues(t, 9, st.Published)
	require.Positive(t, st.Dropped, "a queue of 4 overflowed")

	var got topicStat
	var js string
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		code, o, errs := runCLI(t, "", "topics", "-json", sock)
		require.Equal(t, exitOK, code, errs)
		js = o
		var v view
		require.NoError(t, json.Unmarshal([]byte(js), &v), js)
		for _, ts := range v.Topics {
			if ts.Name == "cli/counted" {
				got = ts
			}
		}
		if got.Published == st.Published && got.Delivered == st.Delivered && got.Dropped == st.Dropped {
			break
		}
		require.True(t, time.Now().Before(deadline), "topics -json never showed the publisher's %+v:\n%s", st, js)
		<-tick.C
	}
	require.NotContains(t, js, "QueueDepth")
	require.NotContains(t, js, "PublishRate")
	require.EqualValues(t, 4, got.QueueCapacity)

	code, out, errs := runCLI(t, "", "topics", sock)
	require.Equal(t, exitOK, code, errs)
	require.Regexp(t, `(?m)^TOPIC\s+TYPE\s+PUBS\s+SUBS\s+PUBLISHED\s+DELIVERED\s+DROPPED\s+QUEUE CAP$`, out)
	require.Regexp(t, fmt.Sprintf(`(?m)^cli/counted\s+bytes\s+1\s+1\s+%d\s+%d\s+%d\s+4$`, st.Published, st.Delivered, st.Dropped), out)

	code, out, errs = runCLI(t, "", "clients", "-json", sock)
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, `"Capacity": 4`)
	for _, gone := range []string{"Depth", "Pushed", "Popped", "PushRate", "SubSleeps"} {
		require.NotContains(t, out, gone)
	}
	code, out, errs = runCLI(t, "", "clients", sock)
	require.Equal(t, exitOK, code, errs)
	require.Regexp(t, `(?m)^CONN\s+TOPIC\s+PUB\s+PUB PID\s+SUB\s+SUB PID\s+CAPACITY\s+POLICY\s+DELIVERED\s+DROPPED\s+RETURNED$`, out)
}
