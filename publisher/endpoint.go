package publisher

import (
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// endpoint is how the client runtime reaches a Publisher: it implements
// clientrt.Endpoint, clientrt.OwnedEndpoint and clientrt.Resumer with methods that, on *Publisher
// itself, would put internal wire types into the public API.
type endpoint struct{ p *Publisher }

func (e endpoint) ConnectionAdded(m *wire.ConnectionAdded)     { e.p.connectionAdded(m) }
func (e endpoint) ConnectionRemoved(m *wire.ConnectionRemoved) { e.p.connectionRemoved(m) }
func (e endpoint) ConnectionClosing(m *wire.ConnectionClosing) { e.p.connectionClosing(m) }
func (e endpoint) ConnSegmentAdded(c *clientrt.OwnedConn)      { e.p.connSegmentAdded(c) }
func (e endpoint) DataSegmentAdded(s *dataseg.Segment)         { e.p.dataSegmentAdded(s) }

func (e endpoint) ResumeSizing() (maxLoans, maxPayload uint32) { return e.p.resumeSizing() }

func (e endpoint) ResumeInfo() (*wire.ResumePublisher, *wire.ResumeSubscriber, []wire.ResumeConnection) {
	return e.p.resumeInfo()
}

// MemoryReport implements clientrt.MemoryReporter: the publisher's own
// chunk accounting, as Stats().Memory has it, and its message counters.
func (e endpoint) MemoryReport() (wire.PubMemory, bool) {
	st := e.p.Stats()
	m := st.Memory
	u := func(n int) uint32 { return uint32(min(max(n, 0), 1<<32-1)) }
	return wire.PubMemory{PubID: e.p.id, Segments: u(m.Segments), Chunks: u(m.Chunks), Free: u(m.Free), InUse: u(m.InUse), Loans: u(m.Loans),
		History: u(m.History), Outstanding: u(m.Outstanding), HighWater: u(m.HighWater), Reclaimed: m.Reclaimed, BadReturns: m.BadReturns,
		Published: st.Published, Delivered: st.Delivered, Dropped: st.Dropped, Unconnected: st.Unconnected, Removed: st.Removed}, true
}

// ConnReports implements clientrt.MemoryReporter: the traffic of the
// publisher's live connections (owned.go connTraffic).
func (e endpoint) ConnReports(dst []wire.ConnTraffic) []wire.ConnTraffic {
	return e.p.own.Load().connTraffic(dst)
}
