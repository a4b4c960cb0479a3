package roudi

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// TestFoldSegmentCounters: when a publisher is gone the router raises its
// last report to the counters its segment 0 holds and departs it into its
// topic's sums: never lower than the report (a complete final report is
// kept as it is), never counted twice (a second close of the same segment,
// a later prune or the end of its connection add nothing), and without any
// report at all the segment's counters are the publisher's whole count.
func TestFoldSegmentCounters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg, err := ParseConfig([]byte("[publishers]\nhugepages = \"never\"\n"))
	require.NoError(t, err)
	cfg.Domain = "fsc" + filepath.Base(dir)
	cfg.Socket = filepath.Join(dir, "r.sock")
	cfg.RuntimeDir = dir
	s, err := New(cfg, Options{Logger: discardLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	s.segs = segFiles{data: map[dataKey]*dataSegFile{}, conn: map[core.ConnectionID]*connSegFile{}}

	// seg gives publisher pub a segment 0 file whose header holds c.
	seg := func(pub core.PubID, c dataseg.Counters) {
		t.Helper()
		d := dataseg.Desc{PubID: uint32(pub), ChunkSize: 64, Count: 4, PageSize: 4096}
		mem := make([]byte, dataseg.Size(d))
		w, err := dataseg.Format(mem, d)
		require.NoError(t, err)
		w.SetCounters(c.Published, c.Delivered, c.Dropped, c.Unconnected)
		name := filepath.Join(dir, "seg")
		require.NoError(t, os.WriteFile(name, mem, 0o600))
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		require.NoError(t, err)
		require.NoError(t, os.Remove(name))
		s.segs.data[dataKey{pub, 0}] = &dataSegFile{rw: f}
	}
	report := func(pub core.PubID, topic string, published, delivered, dropped uint64) {
		s.obs.pubMem[pub] = pubMemReport{conn: 1, topic: topic, mem: wire.PubMemory{PubID: uint32(pub), Published: published, Delivered: delivered, Dropped: dropped}}
	}
	gone := func(pub core.PubID, topic string) {
		s.segmentAction(core.CloseDataSegments{Pub: pub, Indices: []uint16{0}, Topic: topic})
		require.NotContains(t, s.segs.data, dataKey{pub, 0}, "the fd is closed")
	}
	departed := func(topic string) topicCounters {
		if d := s.obs.departed[topic]; d != nil {
			return *d
		}
		return topicCounters{}
	}
	s.obs.pubMem = map[core.PubID]pubMemReport{}

	// A complete final report: nothing changes.
	seg(1, dataseg.Counters{Published: 10, Delivered: 20, Dropped: 1})
	report(1, "a", 10, 20, 1)
	gone(1, "a")
	require.Equal(t, topicCounters{published: 10, delivered: 20, dropped: 1}, departed("a"))

	// The segment is ahead of the last report (killed before its next
	// report): the difference is counted, once.
	seg(2, dataseg.Counters{Published: 15, Delivered: 30, Dropped: 2})
	report(2, "a", 5, 10, 0)
	gone(2, "a")
	require.Equal(t, topicCounters{published: 25, delivered: 50, dropped: 3}, departed("a"))

	// No report at all: the segment's counters are all there is.
	seg(3, dataseg.Counters{Published: 7, Delivered: 7})
	gone(3, "b")
	require.Equal(t, topicCounters{published: 7, delivered: 7}, departed("b"))

	// A segment behind the report (a publisher that lowered its own
	// counters): the report stands, nothing goes backwards.
	seg(4, dataseg.Counters{Published: 1})
	report(4, "c", 9, 9, 0)
	gone(4, "c")
	require.Equal(t, topicCounters{published: 9, delivered: 9}, departed("c"))

	// Nothing is counted twice: a repeated close finds no fd, and the
	// prune and the end of the connection find no report.
	gone(1, "a")
	gone(2, "a")
	s.obs.forgetMemory(1)
	s.pruneMemReports()
	require.Equal(t, topicCounters{published: 25, delivered: 50, dropped: 3}, departed("a"))
	require.Empty(t, s.obs.pubMem)

	// A retired or abandoned segment (no Topic) is not read.
	seg(5, dataseg.Counters{Published: 100})
	gone(5, "")
	require.Equal(t, topicCounters{}, departed(""))
	require.NotContains(t, s.obs.departed, "")

	// Absurd figures saturate the topic's sums instead of wrapping them.
	seg(6, dataseg.Counters{Published: math.MaxUint64})
	gone(6, "a")
	require.Equal(t, uint64(math.MaxUint64), departed("a").published)
	require.Equal(t, uint64(50), departed("a").delivered)
}
