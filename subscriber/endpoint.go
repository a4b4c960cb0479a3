package subscriber

import (
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// endpoint is how the client runtime reaches a Subscriber: it implements
// clientrt.Endpoint, clientrt.OwnedEndpoint and clientrt.Resumer with methods that, on *Subscriber
// itself, would put internal wire types into the public API.
type endpoint struct{ s *Subscriber }

func (e endpoint) ConnectionAdded(m *wire.ConnectionAdded)       { e.s.connectionAdded(m) }
func (e endpoint) ConnectionRemoved(m *wire.ConnectionRemoved)   { e.s.connectionRemoved(m) }
func (e endpoint) ConnSegmentAdded(c *clientrt.OwnedConn)        { e.s.connSegmentAdded(c) }
func (e endpoint) DataSegmentAdded(s *dataseg.Segment)           { e.s.dataSegmentAdded(s) }
func (e endpoint) ReleasesItself(m *wire.ConnectionRemoved) bool { return e.s.releasesItself(m) }

func (e endpoint) ResumeInfo() (*wire.ResumePublisher, *wire.ResumeSubscriber, []wire.ResumeConnection) {
	return e.s.resumeInfo()
}

func (e endpoint) DataSegmentRetired(r *clientrt.RetiredSegment) { e.s.dataSegmentRetired(r) }
