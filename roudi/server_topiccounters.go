package roudi

import (
	"math"

	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// Topic counters in the owned model: the router never sees an owned ring
// move, so a topic's published, delivered and dropped counts are what its
// publishers reported (wire.ReportMemory, server_memory.go): the sum of the
// latest reports of its live publishers plus the last reports of the ones
// that are gone (o.departed). A publisher's counters only grow (the router
// refuses a report that lowers one) and a departed publisher's last report
// stays in its topic's sum, so a topic's counters never go backwards while
// the topic exists; they start from 0 again if the topic goes away (no
// publisher or subscriber left) and comes back. A closing publisher sends
// a final report before its ClosePublisher (publisher.Close), so only what
// a killed publisher counted after its last report (up to one report
// interval) is missing from the sums.

// topicCounters are a topic's message counters as its publishers reported
// them.
type topicCounters struct{ published, delivered, dropped uint64 }

// add adds a publisher's report, saturating (the figures are the
// publishers' word: a lie must not wrap a sum backwards).
func (t *topicCounters) add(m *wire.PubMemory) {
	t.published = addSat(t.published, m.Published)
	t.delivered = addSat(t.delivered, m.Delivered)
	t.dropped = addSat(t.dropped, m.Dropped)
}

func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// departReport forgets publisher pub's latest report, keeping its counters
// in its topic's departed sum.
func (o *observer) departReport(pub core.PubID) {
	r, ok := o.pubMem[pub]
	if !ok {
		return
	}
	delete(o.pubMem, pub)
	if o.departed == nil {
		o.departed = map[string]*topicCounters{}
	}
	d := o.departed[r.topic]
	if d == nil {
		d = &topicCounters{}
		o.departed[r.topic] = d
	}
	d.add(&r.mem)
}

// pruneMemReports departs the reports of publishers that are no longer
// live (closed, dead, or of an ended connection).
func (s *Server) pruneMemReports() {
	for pub := range s.obs.pubMem {
		if _, ok := s.core.PublisherOwner(pub); !ok {
			s.obs.departReport(pub)
		}
	}
}

// topicCounters returns the message counters of the topics of snap, by
// name, and drops the departed sums of topics that no longer exist (which
// bounds them by the live topics).
func (s *Server) topicCounters(snap core.Snapshot) map[string]topicCounters {
	s.pruneMemReports()
	out := make(map[string]topicCounters, len(snap.Topics))
	for _, t := range snap.Topics {
		var c topicCounters
		if d := s.obs.departed[t.Name]; d != nil {
			c = *d
		}
		out[t.Name] = c
	}
	for name := range s.obs.departed {
		if _, ok := out[name]; !ok {
			delete(s.obs.departed, name)
		}
	}
	for _, r := range s.obs.pubMem {
		if c, ok := out[r.topic]; ok {
			c.add(&r.mem)
			out[r.topic] = c
		}
	}
	return out
}
