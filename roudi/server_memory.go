package roudi

import (
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// Publisher memory in the owned model (docs/design/memory-ownership.md §2,
// §6): the router knows each publisher's data segments (it created them)
// but not how many of their chunks are in use. That lives only in the
// publisher's process, in memory the router never reads. The client
// runtime reports it with wire.ReportMemory, about once a second while it
// changes; the router keeps the latest report per publisher and shows it
// next to its own figures (ListPublisherSegments, Introspection, metrics).
//
// A report is the publisher's own word. The router accepts entries only
// about live publishers of the reporting connection (ErrPermissionDenied
// otherwise) and no more chunks or segments than it created for the
// publisher (ErrInvalidArgument), so a lying client can misstate only its
// own use. Its counters (published, delivered, dropped, unconnected,
// removed, reclaimed, bad returns) only grow: a report that lowers one is
// refused (ErrInvalidArgument), so the topic sums built from them
// (server_topiccounters.go) and the metrics are monotonic. The request rate limit (server_guard.go) bounds how often it
// can report, and the map holds at most one entry per live publisher.

// pubMemReport is the latest report of one publisher.
type pubMemReport struct {
	conn  core.ConnID
	topic string
	mem   wire.PubMemory
	at    time.Time
}

// reportMemory handles a wire.ReportMemory on the Serve goroutine: every
// entry (publishers, then connections) is checked first, then all are
// recorded and Ack answers; a bad entry refuses the whole report.
func (s *Server) reportMemory(c *serverConn, reqID uint32, m *wire.ReportMemory) {
	for i := range m.Publishers {
		p := &m.Publishers[i]
		owner, ok := s.core.PublisherOwner(core.PubID(p.PubID))
		if !ok || owner != c.id {
			s.replyError(c, reqID, fmt.Errorf("report memory of publisher %d: not a live publisher of this client: %w", p.PubID, parallax.ErrPermissionDenied))
			return
		}
		segs, ok := s.core.PublisherSegments(core.PubID(p.PubID))
		if !ok {
			s.replyError(c, reqID, fmt.Errorf("report memory of publisher %d: the router has no owned memory for it (model %q): %w",
				p.PubID, s.cfg.Memory.Model, wire.ErrInvalidArgument))
			return
		}
		var chunks uint64
		for _, sg := range segs {
			chunks += uint64(sg.Count)
		}
		if uint64(p.Chunks) > chunks || int(p.Segments) > len(segs) {
			s.replyError(c, reqID, fmt.Errorf("report memory of publisher %d: %d chunks in %d segments claimed, its live segments are %d with %d chunks: %w",
				p.PubID, p.Chunks, p.Segments, len(segs), chunks, wire.ErrInvalidArgument))
			return
		}
		if prev, ok := s.obs.pubMem[core.PubID(p.PubID)]; ok {
			if what := counterWentBack(&prev.mem, p); what != "" {
				s.replyError(c, reqID, fmt.Errorf("report memory of publisher %d: counter %s went back: %w", p.PubID, what, wire.ErrInvalidArgument))
				return
			}
		}
	}
	skip := make([]bool, len(m.Conns))
	for i := range m.Conns {
		var err error
		if skip[i], err = s.checkConnTraffic(c, &m.Conns[i]); err != nil { // server_conntraffic.go
			s.replyError(c, reqID, err)
			return
		}
	}
	if s.obs.pubMem == nil {
		s.obs.pubMem = map[core.PubID]pubMemReport{}
	}
	now := time.Now()
	for _, p := range m.Publishers {
		topic, _ := s.core.PublisherTopic(core.PubID(p.PubID))
		s.obs.pubMem[core.PubID(p.PubID)] = pubMemReport{conn: c.id, topic: topic, mem: p, at: now}
	}
	s.recordConnTraffic(m.Conns, skip, now)
	s.send(c, reqID, &wire.Ack{}, nil)
}

// counterWentBack names the first counter of next that is below prev's,
// or returns "".
func counterWentBack(prev, next *wire.PubMemory) string {
	for _, c := range []struct {
		name       string
		prev, next uint64
	}{
		{"Published", prev.Published, next.Published}, {"Delivered", prev.Delivered, next.Delivered},
		{"Dropped", prev.Dropped, next.Dropped}, {"Unconnected", prev.Unconnected, next.Unconnected},
		{"Removed", prev.Removed, next.Removed}, {"Reclaimed", prev.Reclaimed, next.Reclaimed},
		{"BadReturns", prev.BadReturns, next.BadReturns},
	} {
		if c.next < c.prev {
			return fmt.Sprintf("%s (%d after %d)", c.name, c.next, c.prev)
		}
	}
	return ""
}

// forgetMemory departs the reports of a connection that ended: their
// counters stay in their topics' sums (server_topiccounters.go).
func (o *observer) forgetMemory(id core.ConnID) {
	for pub, r := range o.pubMem {
		if r.conn == id {
			o.departReport(pub)
		}
	}
}

// publisherSegStats lists every live data segment of every owned
// publisher and tombstone, sorted by publisher and index, each with its
// publisher's latest report. Reports of publishers that are gone are
// dropped here.
func (s *Server) publisherSegStats(now time.Time) []wire.PublisherSegStat {
	s.pruneMemReports()
	mem := s.core.Memory()
	if len(mem.Publishers) == 0 {
		return nil
	}
	snap := s.core.Snapshot()
	type owner struct {
		client uint16
		pid    int32
	}
	owners := map[core.PubID]owner{}
	for _, c := range snap.Clients {
		for _, p := range c.Publishers {
			owners[p] = owner{uint16(c.ID), c.PID}
		}
	}
	var out []wire.PublisherSegStat
	for _, pm := range mem.Publishers {
		rep, reported := s.obs.pubMem[pm.Pub]
		if pm.Dead && reported {
			s.obs.departReport(pm.Pub)
			reported = false
		}
		o := owners[pm.Pub]
		for _, sg := range pm.Segments {
			if !sg.Live {
				continue
			}
			st := wire.PublisherSegStat{PubID: uint32(pm.Pub), Topic: pm.Topic, ClientID: o.client, PID: o.pid, Dead: pm.Dead,
				Index: sg.Index, ChunkSize: sg.ChunkSize, Count: sg.Count, Bytes: sg.Bytes, PageSize: uint32(dataPageSize(sg.Huge)), Hugepages: sg.Huge}
			if f := s.segs.data[dataKey{pm.Pub, sg.Index}]; f != nil {
				st.PageSize, st.Hugepages = f.desc.PageSize, f.desc.Kind == wire.KindHugetlb
			}
			if reported {
				st.Reported, st.Mem = true, rep.mem
				st.AgeMs = uint64(max(0, now.Sub(rep.at).Milliseconds()))
			}
			out = append(out, st)
		}
	}
	return out
}
