package core

import (
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// Reports of a peer that broke a connection's rules.
//
// The router never reads memory a client can write, so it cannot verify a
// report: the report of an end of a connection cuts that connection, and
// nothing else (guard_owned.go). The reporter always gets a [Reply] with
// [Noted].
//
// Not decided here: the per-connection request rate limit (a token bucket
// kept by each connection's read goroutine on wall time, so a flood costs
// the server's loop nothing) and the disconnect of a client whose outgoing
// queue overflows; both are flow control of one socket, not registry
// decisions, and stay in the server.

// PeerReported is an end's report (wire.ReportPeer, reason bad ref) that
// its peer on Connection sent a ref (or a return) that failed validation.
// The report of an end of the connection cuts it; a report by anyone else
// is refused (guard_owned.go).
type PeerReported struct {
	Conn       ConnID // the reporter's control connection
	ReqID      uint32
	Connection ConnectionID
	Ref        parallax.ChunkRef
	Detail     string // the reporter's description
}

// RingReported is an end's report (wire.ReportPeer, reason corrupt ring)
// that Connection's rings hold impossible indices; handled as
// [PeerReported].
type RingReported struct {
	Conn       ConnID // the reporter's control connection
	ReqID      uint32
	Connection ConnectionID
	Detail     string // the reporter's description
}

func (PeerReported) isEvent() {}
func (RingReported) isEvent() {}

// Noted answers a report ([PeerReported], [RingReported]) whatever its
// verdict; the server sends it as an Ack.
type Noted struct{}

func (Noted) isResult() {}

// A GuardCounter names one of the server's counters of hostile-peer
// handling (roudi.GuardStats).
type GuardCounter uint8

// Guard counters.
const (
	// CountReportRefused: a report by a client that is no end of the
	// connection it names, or naming no live connection.
	CountReportRefused GuardCounter = iota + 1
	// CountReportCut: a connection cut on its end's report (the router
	// does not read the connection's memory to verify it).
	CountReportCut
)

func (g GuardCounter) String() string {
	switch g {
	case CountReportRefused:
		return "report-refused"
	case CountReportCut:
		return "report-cut"
	}
	return fmt.Sprintf("counter(%d)", uint8(g))
}

// Count asks the server to add one to a guard counter.
type Count struct{ Counter GuardCounter }

func (Count) isAction() {}

func (a Count) String() string { return "count " + a.Counter.String() }

// peerReported decides a bad-ref report (see [PeerReported]).
func (r *Router) peerReported(ev PeerReported) {
	r.emit(Reply{Conn: ev.Conn, ReqID: ev.ReqID, Result: Noted{}})
	r.ownedReport(r.conns[ev.Conn], ev.Conn, ev.Connection, "bad ref", ev.Detail) // guard_owned.go
}

// clientID returns c's id, 0 for nil.
func clientID(c *client) ClientID {
	if c == nil {
		return 0
	}
	return c.id
}

// ringReported decides a corrupt-ring report (see [RingReported]).
func (r *Router) ringReported(ev RingReported) {
	r.emit(Reply{Conn: ev.Conn, ReqID: ev.ReqID, Result: Noted{}})
	r.ownedReport(r.conns[ev.Conn], ev.Conn, ev.Connection, "corrupt ring", ev.Detail) // guard_owned.go
}
