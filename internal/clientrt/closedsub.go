package clientrt

import "github.com/parallax-ipc/parallax/internal/wire"

// Connections pushed for a subscriber that is closing. Between its
// Unregister and the router's CloseSubscriber the router may still connect
// the subscriber to a new publisher: it pushes the ConnectionAdded and the
// grant, then, at the close, marks the connection closing and waits for
// this process to release it (it cannot know whether the segment was
// mapped here). Such a push reaches no endpoint; the runtime records its
// connection, and the subscriber's Close releases it after the
// CloseSubscriber (the router refuses a release before: the connection is
// live until then), exactly once. Without that the connection stayed
// closing until the process exited, and its block-producer publisher saw a
// subscriber that no longer existed.

// closedSub is what the runtime knows of a closing subscriber's
// connections pushed after its Unregister: each connection id, true once
// its release is taken care of (sent, handed to the subscriber's Close, or
// left to the runtime for a ConnectionRemoved).
type closedSub struct {
	conns map[uint32]bool
	// started: the subscriber's Close took the record (its
	// CloseSubscriber is written), so later pushes are released at once.
	started bool
}

// unregisteredSub starts the record of subscriber id's late pushes. mu
// held.
func (rt *Runtime) unregisteredSub(id uint32) {
	if rt.closedSubs == nil {
		rt.closedSubs = map[uint32]*closedSub{}
	}
	rt.closedSubs[id] = &closedSub{conns: map[uint32]bool{}}
}

// closedPush records push m for a closing subscriber that is not
// registered any more, and returns the connection to release now (0 for
// none). mu held.
func (rt *Runtime) closedPush(m wire.Message) (now uint32) {
	cs := rt.closedSubs[target(m, false)]
	if cs == nil {
		return 0
	}
	var id uint32
	switch m := m.(type) {
	case *wire.ConnectionAdded:
		id = m.ConnID
	case *connGrant:
		id = m.Seg.ConnID
	case *wire.ConnectionRemoved:
		// The runtime releases a removed connection (released): Close
		// need not. (A push does not say which side it is for, so a
		// release of it is never skipped here: with both ends in this
		// process each side's push is released.)
		cs.conns[m.ConnID] = true
		return 0
	}
	if _, ok := cs.conns[id]; ok || id == 0 {
		return 0
	}
	cs.conns[id] = cs.started
	if cs.started {
		return id
	}
	return 0
}

// TakeClosedConns is called by a closing subscriber's Close right after it
// started its CloseSubscriber: it returns the connections pushed for
// subscriber id since its Unregister that known (those Close releases
// anyway) does not list, for Close to release with known. From then on a
// connection pushed for id is released at once, unless it is in known.
func (rt *Runtime) TakeClosedConns(id uint32, known []uint32) []uint32 {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	cs := rt.closedSubs[id]
	if cs == nil {
		return nil
	}
	cs.started = true
	for _, k := range known {
		cs.conns[k] = true
	}
	var out []uint32
	for c, done := range cs.conns {
		if !done {
			out = append(out, c)
			cs.conns[c] = true
		}
	}
	return out
}

// ForgetClosed drops the record of closing subscriber id, once the router
// answered its CloseSubscriber and the pushes received before were routed
// (no push concerns it afterwards).
func (rt *Runtime) ForgetClosed(id uint32) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	delete(rt.closedSubs, id)
}
