//go:build integration

package integration

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/roudi"
)

// TestKilledPublisherCountsWhatItPublished: a publisher process SIGKILLed
// right after publishing, before its client runtime's periodic report
// (about once a second) could carry the samples to the router, still
// counts every sample in its topic's counters: the router reads the
// counters the publisher's engine keeps in its first data segment's
// header when it learns of the death (design §8.20).
func TestKilledPublisherCountsWhatItPublished(t *testing.T) {
	t.Parallel()
	for _, b := range []string{"memfd", "hugetlb", "file"} {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			config := ownedConfig
			switch b {
			case "hugetlb": // the router preads a hugetlbfs memfd
				testutil.MustHaveHugepages(t, 2)
				config = testConfig + "\n[publishers]\nhugepages = \"always\"\n"
			case "file":
				config = fileBackedConfig(t.TempDir())
			}
			killedPublisherCounts(t, config)
		})
	}
}

func killedPublisherCounts(t *testing.T, config string) {
	r := startInProcessRouter(t, config)
	const n = 25
	sub := spawn(t, "subscriber", "sub", sockArg(r), "-topic=killcount", "-n="+strconv.Itoa(n), "-qcap=64", "-policy=block", "-keep=1")
	sub.expect("ready")
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic=killcount", "-n="+strconv.Itoa(n), "-size=64", "-subs=1", "-hold")
	pub.expect("result ")
	require.NoError(t, pub.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID, at once
	require.Error(t, pub.waitErr(), "the publisher was killed")
	require.Equal(t, []string{"1"}, sub.expect("holding "), "the subscriber got all %d samples", n)

	var last roudi.TopicStat
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
			if ts.Name == "killcount" {
				got = ts
			}
		}
		require.True(t, got.Published >= last.Published && got.Delivered >= last.Delivered, "counters went back: %+v after %+v", got, last)
		last = got
		if got.Publishers == 0 && got.Subscribers == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the router still lists the killed publisher: %+v", got)
		<-tick.C
	}
	require.EqualValues(t, n, last.Published, "published by the killed publisher: %+v", last)
	require.EqualValues(t, n, last.Delivered, "delivered by the killed publisher: %+v", last)
	require.Zero(t, last.Dropped)
}
