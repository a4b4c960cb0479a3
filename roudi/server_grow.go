package roudi

import (
	"errors"
	"os"

	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// Growth, dedicated segments and retirement in the owned model (design
// §1.3, §5, step 9; the core decides in roudi/internal/core/memory_grow.go):
// wire.GrowData, wire.RetireData and wire.GetDataSegment become core
// requests; a core.DataSegmentGranted reply is a wire.DataSegmentAdded
// carrying the request's id and the segment's read-write or read-only fd;
// core.TellDataRetired is a wire.DataSegmentRetired push. The segment
// itself is created and closed by server_segments.go (CreateDataSegment,
// CloseDataSegments).

// errNoSegment answers a grant of a segment the server does not have (a
// bug: the core and the server disagree).
var errNoSegment = errors.New("the router lost the granted data segment")

// ownedGrowRequest translates a growth request; nil for another message.
func ownedGrowRequest(m wire.Message) core.Request {
	switch m := m.(type) {
	case *wire.GrowData:
		return core.GrowData{Pub: core.PubID(m.PubID), ChunkSize: m.ChunkSize, Count: m.Count, Oversized: m.Reason == wire.GrowOversized,
			Undersized: m.Reason == wire.GrowUndersized}
	case *wire.RetireData:
		return core.RetireData{Pub: core.PubID(m.PubID), Index: m.Index}
	case *wire.GetDataSegment:
		return core.GetDataSegment{Connection: core.ConnectionID(m.ConnID), Index: m.Index}
	}
	return nil
}

// replyDataSeg answers a GrowData or GetDataSegment with the segment the
// core granted.
func (s *Server) replyDataSeg(c *serverConn, reqID uint32, g core.DataSegmentGranted) {
	f := s.segs.data[dataKey{g.Pub, g.Index}]
	if f == nil {
		s.log.Error("core granted a data segment the server does not have", "pub", g.Pub, "index", g.Index)
		s.replyError(c, reqID, errNoSegment)
		return
	}
	d, file := f.desc, f.rw
	if g.ReadOnly {
		d.ReadOnly, file = true, f.ro
	}
	s.send(c, reqID, &wire.DataSegmentAdded{Seg: d}, []*os.File{file})
}

// tellDataRetired pushes a retirement to one client.
func (s *Server) tellDataRetired(a core.TellDataRetired) {
	if c := s.conns[a.Conn]; c != nil && c.hello {
		s.push(c, &wire.DataSegmentRetired{PubID: uint32(a.Pub), Index: a.Index})
	}
}
