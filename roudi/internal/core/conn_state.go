package core

import (
	"fmt"
	"log/slog"
)

// Connection segments and their life cycle (design §4.1), in the owned
// model (death.go says which event leads where):
//
//	creating ──(ConnSegmentCreated ok)──▶ live
//	live ──(CloseSubscriber; its control connection ends)──▶ closing
//	closing ──(the subscriber releases it, or its death is confirmed)──▶ gone
//	(closing before the segment is created: gone at once, nobody maps it)
//	live ──(the subscriber's process dies, confirmed)──▶ gone
//	live ──(publisher side ends: ClosePublisher, its client goes)──▶ orphaned
//	live ──(cut: both sides told; corruption)──▶ gone
//	closing/orphaned/gone ──(no side maps it any more)──▶ forgotten
//
// The router closes its fd of a connection segment when the connection
// leaves the registry (nobody is granted it afterwards; the memory lives as
// long as an endpoint maps it), and counts its bytes until every side that
// may still map it has released the connection (wire.ReleaseConnection) or
// died: the sides told of the removal, the closing subscriber, and a
// subscriber process whose death is not confirmed yet.

// ConnState is the owned-memory state of a connection.
type ConnState uint8

// Connection states.
const (
	ConnCreating ConnState = iota + 1
	ConnLive
	ConnClosing  // the subscriber side ended; the publisher drains
	ConnOrphaned // the publisher side ended; the subscriber drains
	ConnGone     // cut, or both sides ended
)

func (s ConnState) String() string {
	switch s {
	case ConnCreating:
		return "creating"
	case ConnLive:
		return "live"
	case ConnClosing:
		return "closing"
	case ConnOrphaned:
		return "orphaned"
	case ConnGone:
		return "gone"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// ConnMemory is one connection segment's accounting. PubWait and SubWait
// are the sides that may still map a removed connection and have not
// released it; AwaitPID is a closing connection's subscriber process whose
// control connection ended and whose death is not confirmed yet.
type ConnMemory struct {
	Connection ConnectionID
	Pub        PubID
	State      ConnState
	Bound      int
	Bytes      uint64
	PubWait    bool
	SubWait    bool
	AwaitPID   int32
}

type connSeg struct {
	id        ConnectionID
	pub       *pubMem
	sub       SubID
	pubClient ClientID
	subClient ClientID
	pubConn   ConnID
	bound     int
	bytes     uint64
	state     ConnState
	created   bool   // the server reported the segment created
	unlinked  bool   // the connection left the registry
	pubWait   bool   // removed: the publisher's client may still map it
	subWait   bool   // removed: the subscriber's client may still map it
	awaitPID  int32  // closing: the subscriber's process, gone once its death is confirmed
	inode     uint64 // adopted after a router restart (resume_owned.go); 0 if created here
}

func (cs *connSeg) memory() ConnMemory {
	return ConnMemory{Connection: cs.id, Pub: cs.pub.id, State: cs.state, Bound: cs.bound, Bytes: cs.bytes,
		PubWait: cs.pubWait, SubWait: cs.subWait, AwaitPID: cs.awaitPID}
}

// memLinks gives each new connection its segment (and its publisher a
// growth segment when the invariant of §1.3 would break).
func (r *Router) memLinks(links []*connection) {
	for _, l := range links {
		r.memLink(l)
	}
}

func (r *Router) memLink(l *connection) {
	m := r.mem.pubs[l.pub.id]
	if m == nil || m.dead {
		// A publisher restored after a router restart has no owned
		// segments here (restart in the owned model is a later step).
		return
	}
	b := r.bound(l.sub.capacity, r.maxHeld(l.sub), m.chunkSize)
	if need := r.needed(m, b); need > m.chunks {
		a, err := r.segPlan(m, max(need-m.chunks, m.chunks))
		if err != nil {
			r.log(slog.LevelWarn, "publisher not grown for a new connection", slog.Int("pub", int(m.id)), slog.Int("conn", int(l.id)), slog.String("err", err.Error()))
		} else {
			r.addSeg(m, a)
		}
	}
	a := CreateConnSegment{Connection: l.id, Pub: l.pub.id, Sub: l.sub.id, Capacity: l.sub.capacity,
		ReturnCapacity: retCap(b), Bound: b, MaxHeld: min(r.maxHeld(l.sub), b), Policy: l.sub.policy}
	a.Bytes = r.connSegSize(a.Capacity, a.ReturnCapacity)
	cs := &connSeg{id: l.id, pub: m, sub: l.sub.id, pubClient: l.pub.client.id, subClient: l.sub.client.id,
		pubConn: l.pub.client.conn, bound: b, bytes: a.Bytes, state: ConnCreating}
	r.mem.conns[l.id] = cs
	m.conns++
	m.connBound += uint64(b)
	r.mem.shared += a.Bytes
	r.emit(a)
}

// connSegCreated completes a connection segment: grants it to both ends,
// and the publisher's live data segments read-only to the subscriber's
// client.
func (r *Router) connSegCreated(ev ConnSegmentCreated) {
	cs := r.mem.conns[ev.Connection]
	if cs == nil || cs.created {
		r.log(slog.LevelError, "connection segment creation reported for no segment being created", slog.Int("conn", int(ev.Connection)))
		return
	}
	if ev.Err != nil {
		r.log(slog.LevelWarn, "connection segment creation failed", slog.Int("conn", int(cs.id)), slog.String("err", ev.Err.Error()))
		r.forgetConnSeg(cs)
		return
	}
	cs.created = true
	if cs.unlinked {
		r.emit(CloseConnSegment{Connection: cs.id})
		r.maybeForget(cs)
		return
	}
	cs.state = ConnLive
	l := r.links[cs.id]
	var data []uint16
	for i, s := range cs.pub.segs {
		if s.state == segLive {
			data = append(data, uint16(i))
		}
	}
	if l.sub.client == l.pub.client {
		r.emit(GrantSegments{Conn: l.sub.client.conn, Connection: cs.id})
		return
	}
	r.emit(GrantSegments{Conn: l.sub.client.conn, Connection: cs.id, Pub: l.pub.id, Data: data, ReadOnly: true})
	r.emit(GrantSegments{Conn: l.pub.client.conn, Connection: cs.id})
}

// memUnlinked moves a connection that left the registry on: e is how it
// ended (memEnd), tellSub/tellPub the sides told, which may still map it.
// A closing subscriber still maps it too: its client releases it, or, when
// only its control connection ended, its death is awaited; unless the
// segment was not created yet (nobody was granted it).
func (r *Router) memUnlinked(l *connection, tellSub, tellPub bool, e ending, why endCause) {
	cs := r.mem.conns[l.id]
	if cs == nil {
		return
	}
	cs.state = e.state
	cs.unlinked = true
	cs.pubWait, cs.subWait = tellPub, tellSub
	if e.closing {
		switch {
		case !cs.created:
			// Granted to nobody (connSegCreated grants nothing once
			// unlinked): the subscriber's side cannot map it, whatever
			// its client says or does, so it is not waited for.
			code, reason := RemovedClosed, "subscriber closed before its connection was set up"
			if why != endClosed {
				code, reason = RemovedSubscriberGone, "subscriber disconnected before its connection was set up"
			}
			r.closeDone(cs, code, reason)
		case why == endClosed:
			cs.subWait = true
		default:
			cs.awaitPID = l.sub.client.pid
		}
	}
	if cs.created {
		r.emit(CloseConnSegment{Connection: cs.id})
	}
	r.maybeForget(cs)
}

// maybeForget drops a removed connection's record once its segment's
// creation is settled and nobody still maps it.
func (r *Router) maybeForget(cs *connSeg) {
	if cs.unlinked && cs.created && !cs.pubWait && !cs.subWait && cs.awaitPID == 0 {
		r.forgetConnSeg(cs)
	}
}

func (r *Router) forgetConnSeg(cs *connSeg) {
	delete(r.mem.conns, cs.id)
	r.mem.shared -= cs.bytes
	cs.pub.conns--
	cs.pub.connBound -= uint64(cs.bound)
	r.retireTombstone(cs.pub)
}
