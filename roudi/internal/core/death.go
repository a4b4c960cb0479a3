package core

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/parallax-ipc/parallax"
)

// How a connection ends in the owned model (design §4.1, step 8). The
// shared model is untouched: its ConnectionRemoved carry no code and it
// sends no ConnectionClosing.
//
//	subscriber closes (CloseSubscriber) → closing: the publisher is told
//	    ConnectionClosing (stop delivering, keep draining); gone when the
//	    subscriber's client sends ReleaseConnection (RemovedClosed) or its
//	    process dies (RemovedSubscriberGone)
//	subscriber's process dies, confirmed (ProcessExited) → gone at once:
//	    the publisher is told RemovedSubscriberGone and reclaims every
//	    chunk delivered on the connection
//	subscriber's control connection ends, its death not confirmed
//	    (ClientDisconnected) → closing until ProcessExited confirms it: its
//	    process may still read what it holds
//	publisher closes or its client goes → orphaned: the subscriber is told
//	    RemovedPublisherGone and drains; the publisher's data segment fds
//	    are closed at once, its bytes kept as a tombstone while a
//	    connection record names it
//	cut, or a client disconnected for corrupting memory → gone, the
//	    survivors told RemovedCorrupt

// RemovedCode tells a side of a removed connection why it was removed: what
// happened to its peer (wire.RemovedCode).
type RemovedCode uint8

// Removal codes; the shared model sends only RemovedUnspecified.
const (
	RemovedUnspecified RemovedCode = iota
	RemovedClosed
	RemovedSubscriberGone
	RemovedPublisherGone
	RemovedCorrupt
)

func (c RemovedCode) String() string {
	switch c {
	case RemovedUnspecified:
		return "unspecified"
	case RemovedClosed:
		return "closed"
	case RemovedSubscriberGone:
		return "subscriber-gone"
	case RemovedPublisherGone:
		return "publisher-gone"
	case RemovedCorrupt:
		return "corrupt"
	}
	return fmt.Sprintf("removed-code(%d)", uint8(c))
}

// ConnectionClosing tells the publisher's client on Conn that the
// subscriber of Connection closed (or lost its control connection): stop
// delivering on it, keep draining its return ring. A [ConnectionRemoved]
// follows when the connection is gone. Owned model only.
type ConnectionClosing struct {
	Conn       ConnID
	Connection ConnectionID
	Pub        PubID
	Sub        SubID
	Reason     string
}

func (ConnectionClosing) isAction() {}

func (a ConnectionClosing) String() string {
	return fmt.Sprintf("conn-closing %v conn=%d pub=%d sub=%d reason=%q", a.Conn, a.Connection, a.Pub, a.Sub, a.Reason)
}

// endCause is why a connection leaves the registry.
type endCause uint8

const (
	endClosed       endCause = iota + 1 // ClosePublisher or CloseSubscriber
	endDisconnected                     // the client's control connection ended (EOF, a failed send)
	endExited                           // the client's process died (ProcessExited: confirmed)
	endCorrupt                          // cut, or the client was disconnected for corrupting memory
)

// ending is how unlink tells the sides of a connection that ends.
type ending struct {
	subCode, pubCode RemovedCode
	closing          bool // the publisher is told ConnectionClosing, not ConnectionRemoved
	state            ConnState
}

// memEnd decides the codes and the next state of a connection that
// leaves the registry; tellSub/tellPub are the surviving sides (unlink's).
func (r *Router) memEnd(l *connection, tellSub, tellPub bool, why endCause) ending {
	e := ending{state: ConnGone}
	switch {
	case why == endCorrupt:
		e.subCode, e.pubCode = RemovedCorrupt, RemovedCorrupt
	case tellSub && tellPub: // a cut is endCorrupt; nothing else ends both
		e.subCode, e.pubCode = RemovedCorrupt, RemovedCorrupt
	case tellSub:
		e.subCode, e.state = RemovedPublisherGone, ConnOrphaned
	case tellPub && why == endExited:
		e.pubCode = RemovedSubscriberGone
	case tellPub && r.mem.conns[l.id] != nil:
		// Closed, or disconnected while its process may live: it may
		// still read what it holds, so the publisher keeps those chunks
		// until the release or the confirmed death.
		if why == endClosed || l.sub.client.pid > 0 {
			e.closing, e.state = true, ConnClosing
		} else {
			e.pubCode = RemovedSubscriberGone // nobody can confirm a death without a pid
		}
	case tellPub:
		e.pubCode = RemovedSubscriberGone
	}
	return e
}

// memDeparted takes a departed client's part off the removed connections
// it was a side of: a publisher side stops waiting; a subscriber side of a
// closing connection ends it (gone, the publisher told) when its process
// died, or waits for that death when only its control connection ended.
func (r *Router) memDeparted(c *client, why endCause) {
	for _, cs := range r.connSegsSorted() {
		if !cs.unlinked {
			continue
		}
		if cs.pubWait && cs.pubClient == c.id {
			cs.pubWait = false // first: a client on both ends is told nothing more
		}
		if cs.subWait && cs.subClient == c.id {
			cs.subWait = false
			switch {
			case cs.state != ConnClosing:
			case why == endDisconnected && c.pid > 0:
				cs.awaitPID = c.pid
			case why == endCorrupt:
				r.closeDone(cs, RemovedCorrupt, "subscriber disconnected for corrupting shared memory")
			default:
				r.closeDone(cs, RemovedSubscriberGone, "subscriber process exited")
			}
		}
		r.maybeForget(cs)
	}
}

// memConfirmDeath ends the closing connections whose subscriber's process
// pid lost its control connection earlier: its death is now confirmed.
func (r *Router) memConfirmDeath(pid int32) {
	if pid <= 0 {
		return
	}
	for _, cs := range r.connSegsSorted() {
		if cs.awaitPID == pid {
			cs.awaitPID = 0
			r.closeDone(cs, RemovedSubscriberGone, "subscriber process exited")
			r.maybeForget(cs)
		}
	}
}

// memRelease applies client c's ReleaseConnection of connection link in
// the owned model. It refuses (changing nothing) a client that is not an
// endpoint of the connection, and a release of a live connection by an
// endpoint; it acknowledges a connection no longer recorded (released
// already, or never created) and a repeated release.
func (r *Router) memRelease(c *client, link ConnectionID) error {
	if l, ok := r.links[link]; ok {
		if l.pub.client != c && l.sub.client != c {
			return fmt.Errorf("release connection %d: %w: client %d is not an endpoint of it", link, parallax.ErrPermissionDenied, c.id)
		}
		return fmt.Errorf("release connection %d: %w: the connection is live (close the endpoint first)", link, parallax.ErrProtocol)
	}
	cs := r.mem.conns[link]
	if cs == nil {
		return nil
	}
	if c.id != cs.pubClient && c.id != cs.subClient {
		return fmt.Errorf("release connection %d: %w: client %d is not an endpoint of it", link, parallax.ErrPermissionDenied, c.id)
	}
	// One side per release: a client on both ends releases twice.
	switch {
	case cs.state == ConnClosing && cs.subWait && cs.subClient == c.id:
		cs.subWait = false
		r.closeDone(cs, RemovedClosed, "subscriber closed and released the connection")
	case cs.pubWait && cs.pubClient == c.id:
		cs.pubWait = false
	case cs.subWait && cs.subClient == c.id:
		cs.subWait = false
	}
	r.maybeForget(cs)
	return nil
}

// closeDone ends a closing connection: gone, and its publisher's client,
// while it still maps the connection, told why (it then reclaims every
// chunk delivered on it and releases the connection).
func (r *Router) closeDone(cs *connSeg, code RemovedCode, reason string) {
	cs.state = ConnGone
	if !cs.pubWait {
		return
	}
	if c := r.clients[cs.pubClient]; c == nil || c.conn != cs.pubConn {
		r.log(slog.LevelError, "closing connection's publisher client is gone but still waited for", slog.Int("conn", int(cs.id)))
		return
	}
	r.emit(ConnectionRemoved{Conn: cs.pubConn, Connection: cs.id, Pub: cs.pub.id, Sub: cs.sub, Reason: reason, Code: code})
}

// connSegsSorted returns the connection records in id order (actions come
// out in a deterministic order).
func (r *Router) connSegsSorted() []*connSeg {
	out := make([]*connSeg, 0, len(r.mem.conns))
	for _, cs := range r.mem.conns {
		out = append(out, cs)
	}
	slices.SortFunc(out, func(a, b *connSeg) int { return int(a.id) - int(b.id) })
	return out
}
