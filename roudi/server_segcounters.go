package roudi

import (
	"os"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// A departed publisher's last counters (design docs/design/memory-ownership.md
// §8.20). A publisher's counters reach the router in its reports
// (wire.ReportMemory, about once a second, and a final one before
// ClosePublisher), so a publisher killed within a report interval of its
// last publishes would leave them out of its topic's counters. Its engine
// also keeps them in the header of its first data segment
// (dataseg.Segment.SetCounters, plain stores as it publishes), and the
// router keeps that segment's fd: when the publisher is gone (the core's
// CloseDataSegments with a Topic), the server reads them with one pread,
// before it closes the fd (the router never maps the segment), and folds
// them into the publisher's last report before that report departs into
// its topic's sums (server_topiccounters.go).
//
// The fold never lowers a counter: each is the larger of the report's and
// the segment's, so a complete final report is not changed and a report
// and a death are not counted twice (the report is departed once, with
// the larger figures, and the fd is read once: the server forgets it when
// it closes it). The figures are the publisher's own word, as its reports
// are: a lying publisher can raise only its own counters, which it could
// do in a report too, and the topic sums saturate at math.MaxUint64
// (topicCounters.add) rather than wrap. Only the publisher (read-write)
// and the router can write the segment; subscribers map it read-only.

// foldSegmentCounters reads the counters in the header of the departed
// publisher pub's segment 0 from f and departs its last report raised to
// them, into topic's sums. A failed read is logged and departs the report
// as it was.
func (s *Server) foldSegmentCounters(pub core.PubID, topic string, f *os.File) {
	c, err := dataseg.ReadCounters(f)
	if err != nil {
		s.log.Warn("read a departed publisher's counters", "pub", pub, "topic", topic, "err", err)
		s.obs.departReport(pub)
		return
	}
	s.obs.foldCounters(pub, topic, c)
}

// foldCounters raises publisher pub's last report (none: an empty one on
// topic) to the counters c its segment holds and departs it.
func (o *observer) foldCounters(pub core.PubID, topic string, c dataseg.Counters) {
	if o.pubMem == nil {
		o.pubMem = map[core.PubID]pubMemReport{}
	}
	r, ok := o.pubMem[pub]
	if !ok {
		r = pubMemReport{topic: topic}
	}
	m := &r.mem
	c = c.Max(dataseg.Counters{Published: m.Published, Delivered: m.Delivered, Dropped: m.Dropped, Unconnected: m.Unconnected})
	m.Published, m.Delivered, m.Dropped, m.Unconnected = c.Published, c.Delivered, c.Dropped, c.Unconnected
	o.pubMem[pub] = r
	o.departReport(pub)
}
