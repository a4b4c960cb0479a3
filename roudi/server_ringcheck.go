package roudi

// Corrupt rings.
//
// A ring's indices are written by its two ends: tail (and the slots, and
// the dropped count) by the producer; head by the consumer, and under
// discard-oldest also by the producer, which discards by CASing head. Any
// client with the management mapping can write any of them. ringbuf checks
// every index it reads (0 <= tail-head <= capacity, tail's high half zero)
// and reports an impossible state as ringbuf.ErrCorruptRing; every loop of
// the router over a ring is bounded by the ring's capacity and stops there.
//
// Where the router meets a corrupt ring:
//   - A client reports it (wire.ReportPeer, reason ReportCorruptRing, from
//     either end): the router checks the ring itself (ringbuf.Ring.Check;
//     a report of a ring the router finds sound is refused), counts it,
//     cuts the connection (CutConnection: both ends told, as if both had
//     closed it; the ring is freed once both let go, and drained, bounded)
//     and disconnects the offender when it can tell who that is (below).
//     Nobody else is affected: other connections of both ends stay.
//   - A drain (free, reclaim of a dead client, orphan drain after a
//     restart) finds it: the router logs and counts it and stops draining;
//     the connection is already gone, and so, often, is the offender.
//
// # Blame
//
// A snapshot cannot prove who wrote a word, so blame follows word ownership
// and the one redundancy the layout has: an honest head word satisfies
// pos - pops == dropped (modulo 2^32; +1 for an instant during a discard),
// because a pop advances pos and pops together and a discard advances pos
// and then dropped. Hence:
//
//   - tail's high 32 bits set: only the producer writes tail — producer;
//   - head consistent with pops and dropped: the head word is what honest
//     pops and discards left, so the impossible distance comes from the
//     tail — producer;
//   - head inconsistent on a block-producer ring with dropped == 0: only
//     the consumer writes head there — consumer;
//   - head inconsistent on a discard-oldest ring (both write head), or
//     dropped != 0 on a block-producer ring (the producer wrote a word it
//     never writes there, and the head is wrong too): undetermined — the
//     connection is cut and neither end is disconnected.
//
// # Loops over peer-written numbers in the router
//
// Audited with this change: drainRing (FreeRegion), the reclaim of a dead
// client's consumer rings and the orphan drain after a restart all use
// drainBounded; the orphan walk itself advances by at least regionAlign per
// step over the router's own arena bounds (a ring's capacity is validated
// against the region it sits in). PendingPop is a single read. A hold
// table's capacity is a uint32 checked against the router-sized region
// (mempool.AttachHoldTable), so Refs/Clear are bounded by that region.
// ringHolds (report verification) loops over the capacity the router
// recorded, within the region. Pool sweeps, audits and repairs loop over
// counts the router configured, never over header words. Not bounded: the
// CAS loops on pool bitmap words and ctl words (mempool) retry while
// another process keeps changing the word, as any lock-free CAS does; a
// process writing them continuously can slow a loan or release down, not
// make it loop on a number it wrote.
//
// A hostile consumer that forges a consistent head (moving pos and pops
// together) gets its own publisher blamed; that is no more power than it
// has anyway (it can write garbage refs into its ring and report them, see
// server_guard.go), and it can only hurt publishers that feed it.

import (
	"errors"
	"log/slog"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// ringEnd names an end of a connection.
type ringEnd uint8

const (
	endUnknown ringEnd = iota
	endProducer
	endConsumer
)

func (e ringEnd) String() string {
	switch e {
	case endProducer:
		return "producer"
	case endConsumer:
		return "consumer"
	}
	return "undetermined"
}

// ringOffender applies the blame rules above to a corrupt ring.
func ringOffender(ring *ringbuf.Ring) ringEnd {
	hw, tw, dropped := ring.Head(), ring.TailWord(), uint32(ring.Dropped())
	if tw>>32 != 0 {
		return endProducer
	}
	if d := hw.Pos() - hw.Pops(); d == dropped || d == dropped+1 {
		return endProducer
	}
	if ring.Policy() == ringbuf.BlockProducer && dropped == 0 {
		return endConsumer
	}
	return endUnknown
}

// drainBounded pops at most the ring's capacity of entries and releases
// them; it stops early on an empty ring and on a corrupt one (logged and
// counted, where names the loop). A peer that keeps pushing or scribbling
// cannot keep the Serve goroutine here.
func (s *Server) drainBounded(ring *ringbuf.Ring, where string, r core.Region) (n int) {
	for range ring.Cap() {
		ref, err := ring.TryPop()
		if err != nil {
			if errors.Is(err, ringbuf.ErrCorruptRing) {
				s.guard.corruptRings.Add(1)
				s.log.Warn("corrupt ring: stopped draining it", "where", where, "region", r.String(), "drained", n,
					"head", uint64(ring.Head()), "tail", ring.TailWord(), "offender", ringOffender(ring).String(), "err", err)
			}
			return n
		}
		s.releaseReclaimed(ref, where)
		n++
	}
	return n
}

// reportCorruptRing handles a wire.ReportPeer with reason ReportCorruptRing
// on the Serve goroutine (see the file comment). The reporter always gets
// an Ack.
func (s *Server) reportCorruptRing(c *serverConn, reqID uint32, m *wire.ReportPeer) {
	defer s.send(c, reqID, &wire.Ack{}, nil)
	refuse := func(why string) {
		s.guard.refused.Add(1)
		s.log.Warn("corrupt-ring report not verified", "conn", c.id, "client", c.client, "connection", m.ConnID, "why", why)
	}
	snap := s.core.Snapshot()
	var ci *core.ConnectionInfo
	for i := range snap.Connections {
		if snap.Connections[i].ID == core.ConnectionID(m.ConnID) {
			ci = &snap.Connections[i]
			break
		}
	}
	if ci == nil {
		refuse("no such connection")
		return
	}
	if !c.hello || (ci.SubClient != c.client && ci.PubClient != c.client) {
		refuse("reporter is not an end of the connection")
		return
	}
	offender := endUnknown
	ring, err := ringbuf.Attach(s.region(ci.Ring))
	if err == nil {
		if err = ring.Check(); err == nil {
			refuse("the router finds the ring's indices possible")
			return
		}
		offender = ringOffender(ring)
	} // a header that no longer attaches: scribbled on, by whom is unknown
	s.guard.corruptRings.Add(1)
	s.log.Warn("corrupt ring: cutting its connection", "connection", m.ConnID, "topic", ci.Topic,
		"publisher_client", ci.PubClient, "subscriber_client", ci.SubClient, "reporter_client", c.client,
		"offender", offender.String(), "err", err, "detail", m.Detail)
	s.step(core.CutConnection{Connection: ci.ID, Reason: "ring corrupt: " + err.Error()})
	var blamed core.ClientID
	switch offender {
	case endProducer:
		blamed = ci.PubClient
	case endConsumer:
		blamed = ci.SubClient
	default:
		return
	}
	for _, cl := range snap.Clients {
		if cl.ID != blamed {
			continue
		}
		if oc := s.conns[cl.Conn]; oc != nil {
			s.log.Warn("disconnecting client for corrupting a ring's indices", "client", cl.ID, "pid", cl.PID, "name", cl.Name,
				slog.String("end", offender.String()))
			s.guard.corruptKicked.Add(1)
			s.step(core.ClientDisconnected{Conn: oc.id})
			s.dropConn(oc)
		}
	}
}
