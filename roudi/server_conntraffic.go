package roudi

import (
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// Per-connection traffic in the owned model: only a connection's publisher
// knows what it delivered on it, what its subscriber missed (discard-oldest
// take-backs, full-queue drops, block-producer timeouts) and what came
// back; the router never sees an owned ring move. The client runtime
// reports it with its publishers' memory (wire.ReportMemory.Conns); the
// router keeps the latest report per live connection and shows it in the
// Connections rows, `parallax clients` / `parallax connections` and the
// parallax_connection_*_total metrics.
//
// As with the publishers' figures, a report is its publisher's word,
// accepted only for connections of the reporting client's own live
// publishers (ErrPermissionDenied otherwise) and refused if a counter went
// back (ErrInvalidArgument), so a liar can misstate only its own
// connections. An entry for a connection the router no longer knows (it
// ended while the report was on its way) is ignored. Reports go with their
// connection: the map holds at most one entry per live connection.

// connTrafficReport is the latest traffic report of one connection.
type connTrafficReport struct {
	t  wire.ConnTraffic
	at time.Time
}

// checkConnTraffic checks one entry of a report from c: it reports skip
// for a connection the router does not know (any more), and an error for
// one of another client's publisher or a counter that went back.
func (s *Server) checkConnTraffic(c *serverConn, t *wire.ConnTraffic) (skip bool, err error) {
	ci, ok := s.core.Connection(core.ConnectionID(t.ConnID))
	if !ok {
		return true, nil
	}
	if owner, ok := s.core.PublisherOwner(ci.Pub); !ok || owner != c.id {
		return false, fmt.Errorf("report traffic of connection %d: its publisher %d is not a live publisher of this client: %w",
			t.ConnID, ci.Pub, parallax.ErrPermissionDenied)
	}
	if prev, ok := s.obs.connTraffic[ci.ID]; ok {
		p := prev.t
		for _, f := range []struct {
			name       string
			prev, next uint64
		}{{"Delivered", p.Delivered, t.Delivered}, {"Dropped", p.Dropped, t.Dropped}, {"Returned", p.Returned, t.Returned}} {
			if f.next < f.prev {
				return false, fmt.Errorf("report traffic of connection %d: counter %s went back (%d after %d): %w",
					t.ConnID, f.name, f.next, f.prev, wire.ErrInvalidArgument)
			}
		}
	}
	return false, nil
}

// recordConnTraffic records the checked entries of a report (those not
// skipped) and drops the reports of connections that ended.
func (s *Server) recordConnTraffic(ts []wire.ConnTraffic, skip []bool, now time.Time) {
	if len(ts) == 0 {
		return
	}
	if s.obs.connTraffic == nil {
		s.obs.connTraffic = map[core.ConnectionID]connTrafficReport{}
	}
	for i, t := range ts {
		if !skip[i] {
			s.obs.connTraffic[core.ConnectionID(t.ConnID)] = connTrafficReport{t: t, at: now}
		}
	}
	if len(s.obs.connTraffic) > s.obs.connTrafficPruneAt {
		s.pruneConnTraffic()
	}
}

// pruneConnTraffic drops the reports of connections that ended. It runs
// when the map has doubled since the last prune (at least
// minConnTrafficPrune entries), so a report costs amortised O(its entries),
// not O(every connection of the domain), and the map holds at most twice
// the live connections that reported (plus minConnTrafficPrune). Readers
// look entries up by live connection, so one that outlived its connection
// until the next prune is never shown.
func (s *Server) pruneConnTraffic() {
	for id := range s.obs.connTraffic {
		if _, ok := s.core.Connection(id); !ok {
			delete(s.obs.connTraffic, id)
		}
	}
	s.obs.connTrafficPruneAt = max(2*len(s.obs.connTraffic), minConnTrafficPrune)
}

// minConnTrafficPrune is the map size below which pruneConnTraffic does
// not run.
const minConnTrafficPrune = 256

// connTrafficStat fills cs's traffic from its connection's latest report.
func (s *Server) connTrafficStat(cs *wire.ConnStat, now time.Time) {
	r, ok := s.obs.connTraffic[core.ConnectionID(cs.ConnID)]
	if !ok {
		return
	}
	cs.Reported, cs.Delivered, cs.Dropped, cs.Returned = true, r.t.Delivered, r.t.Dropped, r.t.Returned
	cs.AgeMs = uint64(max(0, now.Sub(r.at).Milliseconds()))
}
