//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/roudi"
)

// TestIntrospectTopicCountersKilledPublisher: a topic's counters are what
// its publisher process reported (its own Stats), and what a SIGKILLed
// publisher had reported stays in them: the topic's published and
// delivered counts, in the introspection and in the metrics, equal the
// samples the dead publisher sent and never go backwards.
func TestIntrospectTopicCountersKilledPublisher(t *testing.T) {
	t.Parallel()
	r := startInProcessRouter(t, ownedConfig)
	const n = 40
	sub := spawn(t, "subscriber", "sub", sockArg(r), "-topic=counted", "-n="+strconv.Itoa(n), "-qcap=64", "-policy=block", "-keep=1")
	sub.expect("ready")
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic=counted", "-n="+strconv.Itoa(n), "-size=128", "-subs=1", "-stats")
	res := parsePubResult(t, pub.expect("result "))
	require.EqualValues(t, n, res.Count)
	require.Equal(t, []string{"1"}, sub.expect("holding "))

	var last roudi.TopicStat
	waitTopic := func(what string, ok func(roudi.TopicStat) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			in, err := r.srv.Introspect(ctx)
			cancel()
			require.NoError(t, err)
			var got roudi.TopicStat
			for _, ts := range in.Topics {
				if ts.Name == "counted" {
					got = ts
				}
			}
			require.True(t, got.Published >= last.Published && got.Delivered >= last.Delivered && got.Dropped >= last.Dropped,
				"counters went back: %+v after %+v", got, last)
			last = got
			if ok(got) {
				return
			}
			require.True(t, time.Now().Before(deadline), "%s: router shows %+v", what, got)
			<-tick.C
		}
	}
	waitTopic("the publisher's report", func(ts roudi.TopicStat) bool { return ts.Published == n && ts.Delivered == n })

	require.NoError(t, pub.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
	require.Error(t, pub.waitErr(), "the publisher was killed")
	waitTopic("the publisher gone", func(ts roudi.TopicStat) bool { return ts.Publishers == 0 && ts.Subscribers == 1 })
	require.EqualValues(t, n, last.Published, "the dead publisher's count stays")
	require.EqualValues(t, n, last.Delivered)
	require.Zero(t, last.Dropped)

	hs := httptest.NewServer(r.srv.MetricsHandler())
	defer hs.Close()
	resp, err := http.Get(hs.URL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(body), fmt.Sprintf("parallax_topic_published_total{topic=\"counted\"} %d\n", n))
	require.Contains(t, string(body), fmt.Sprintf("parallax_topic_delivered_total{topic=\"counted\"} %d\n", n))
	require.Contains(t, string(body), "parallax_topic_publishers{topic=\"counted\"} 0\n")
	sub.wait()
}

// TestIntrospectTopicCountersClosedPublisher: a publisher process that
// publishes and closes within one report interval still counts: Close
// reports its final counters before it tells the router it is gone, so
// with its subscriber still attached the topic shows exactly the samples
// it sent.
func TestIntrospectTopicCountersClosedPublisher(t *testing.T) {
	t.Parallel()
	r := startInProcessRouter(t, ownedConfig)
	const n = 40
	sub := spawn(t, "subscriber", "sub", sockArg(r), "-topic=closed", "-n="+strconv.Itoa(n), "-qcap=64", "-policy=block", "-keep=1")
	sub.expect("ready")
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic=closed", "-n="+strconv.Itoa(n), "-size=128", "-subs=1")
	res := parsePubResult(t, pub.expect("result "))
	require.EqualValues(t, n, res.Count)
	pub.wait() // published and closed, exit 0
	require.Equal(t, []string{"1"}, sub.expect("holding "))

	var got roudi.TopicStat
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		in, err := r.srv.Introspect(ctx)
		cancel()
		require.NoError(t, err)
		got = roudi.TopicStat{}
		for _, ts := range in.Topics {
			if ts.Name == "closed" {
				got = ts
			}
		}
		if got.Publishers == 0 && got.Published == n && got.Delivered == n {
			break
		}
		require.True(t, time.Now().Before(deadline), "the closed publisher's %d samples: router shows %+v", n, got)
		<-tick.C
	}
	require.Zero(t, got.Dropped)
	require.EqualValues(t, 1, got.Subscribers)
	sub.wait()
}
