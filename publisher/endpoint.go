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

func (e endpoint) ResumeMaxLoans() uint32 { return e.p.resumeMaxLoans() }

func (e endpoint) ResumeInfo() (*wire.ResumePublisher, *wire.ResumeSubscriber, []wire.ResumeConnection) {
	return e.p.resumeInfo()
}
