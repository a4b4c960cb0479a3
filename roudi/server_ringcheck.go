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
//     either end): the server reads the ring (ringbuf.Ring.Check and the
//     index words) and steps core.RingReported with what it found; the
//     core decides: a report of a ring the router finds sound, or from a
//     client that is not an end of the connection, is refused; otherwise
//     the ring is counted, the connection cut (as core.CutConnection: both
//     ends told, as if both had closed it; the ring is freed once both let
//     go, and drained, bounded) and the offender disconnected when the
//     blame rules tell who that is (core.Blame, in roudi/internal/core/blame.go).
//     Nobody else is affected: other connections of both ends stay.
//   - A drain (free, reclaim of a dead client, orphan drain after a
//     restart) finds it: the server logs and counts it and stops draining;
//     the connection is already gone, and so, often, is the offender.
//
// # Loops over peer-written numbers in the router
//
// Audited with this change: drainRing (FreeRegion), the reclaim of a dead
// client's consumer rings and the orphan drain after a restart all use
// drainBounded; the orphan walk itself advances by at least regionAlign per
// step over the free ranges of the router's own arena (a ring's capacity is
// validated against the range it sits in). PendingPop is a single read. A
// hold table's capacity is a uint32 checked against the router-sized region
// (mempool.AttachHoldTable), so Refs/Clear are bounded by that region.
// ringHolds (report verification) loops over the capacity the router
// recorded, within the region. Pool sweeps, audits and repairs loop over
// counts the router configured, never over header words. Not bounded: the
// CAS loops on pool bitmap words and ctl words (mempool) retry while
// another process keeps changing the word, as any lock-free CAS does; a
// process writing them continuously can slow a loan or release down, not
// make it loop on a number it wrote.

import (
	"errors"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// ringState reads what core.Blame needs of an attached ring; err is what
// is wrong with it (nil: its indices are possible).
func ringState(ring *ringbuf.Ring, err error) core.RingState {
	hw := ring.Head()
	return core.RingState{Err: err, Attached: true, HeadPos: hw.Pos(), HeadPops: hw.Pops(), Tail: ring.TailWord(),
		Dropped: uint32(ring.Dropped()), Policy: corePolicy(ring.Policy())}
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
					"head", uint64(ring.Head()), "tail", ring.TailWord(), "offender", core.Blame(ringState(ring, err)).String(), "err", err)
			}
			return n
		}
		s.releaseReclaimed(ref, where)
		n++
	}
	return n
}

// reportCorruptRing handles a wire.ReportPeer with reason ReportCorruptRing
// on the Serve goroutine: it reads the ring the report names and steps
// core.RingReported, which decides (see the file comment). The reporter
// always gets an Ack.
func (s *Server) reportCorruptRing(c *serverConn, reqID uint32, m *wire.ReportPeer) {
	ev := core.RingReported{Conn: c.id, ReqID: reqID, Connection: core.ConnectionID(m.ConnID), Detail: m.Detail}
	// The owned model has no management segment: no ring of it to read
	// (the core refuses the report, as it has nothing to verify).
	if ci, ok := s.core.Connection(ev.Connection); ok && s.mgmt != nil {
		ring, err := ringbuf.Attach(s.region(ci.Ring))
		if err != nil {
			ev.Ring.Err = err // a header that no longer attaches
		} else {
			ev.Ring = ringState(ring, ring.Check())
		}
	}
	s.step(ev)
}
