package core

import "slices"

// The core's timed work is the handshake deadline of each accepted
// connection. [Router.NextTick] says
// when the next of them is due, so that the server wakes only then, and a
// tick does nothing (and allocates nothing) before it.

// helloDeadline is an accepted connection's handshake deadline. The queue
// of them is in accept order, which is deadline order (every deadline is
// the accept tick plus the same timeout); an entry whose connection
// completed its handshake, left or was accepted again is stale and
// skipped.
type helloDeadline struct {
	conn ConnID
	at   uint64 // the tick it was accepted
}

// hellos is the queue of handshake deadlines: q[head:] are live or stale
// entries in deadline order.
type hellos struct {
	q    []helloDeadline
	head int
	due  []ConnID // scratch for the connections due in one tick
}

func (h *hellos) push(conn ConnID, at uint64) {
	h.q = append(h.q, helloDeadline{conn: conn, at: at})
}

// pop removes the head entry, reusing the queue's memory once it is empty
// or half consumed.
func (h *hellos) pop() {
	h.q[h.head] = helloDeadline{}
	h.head++
	switch {
	case h.head == len(h.q):
		h.q, h.head = h.q[:0], 0
	case h.head > len(h.q)/2 && h.head >= 64:
		n := copy(h.q, h.q[h.head:])
		h.q, h.head = h.q[:n], 0
	}
}

// live reports whether e is still the pending handshake of its connection.
func (r *Router) helloLive(e helloDeadline) bool {
	at, ok := r.pending[e.conn]
	return ok && at == e.at
}

// dropStaleHellos removes the stale entries at the head of the queue.
func (r *Router) dropStaleHellos() {
	for r.hellos.head < len(r.hellos.q) && !r.helloLive(r.hellos.q[r.hellos.head]) {
		r.hellos.pop()
	}
}

// expireHellos closes the connections whose handshake deadline has come,
// in ConnID order (deterministic, like every action order).
func (r *Router) expireHellos() {
	h := &r.hellos
	due := h.due[:0]
	for h.head < len(h.q) {
		e := h.q[h.head]
		if !r.helloLive(e) {
			h.pop()
			continue
		}
		if r.now-e.at < r.helloTimeout {
			break
		}
		h.pop()
		delete(r.pending, e.conn)
		due = append(due, e.conn)
	}
	slices.Sort(due)
	for _, conn := range due {
		r.emit(CloseConn{Conn: conn, Reason: "hello timeout"})
		r.logHelloTimeout(conn)
	}
	clear(due)
	h.due = due[:0]
}

// NextTick returns the tick at which the core next has timed work (a
// handshake deadline), and false when
// it has none: until an event arrives, a [Tick] before that tick changes
// nothing but the clock. The server sleeps until then; it steps the core
// with the ticks that elapsed (Tick.N) when it wakes or when another event
// arrives, so the clock stays right.
func (r *Router) NextTick() (uint64, bool) {
	r.dropStaleHellos()
	next, ok := uint64(0), false
	if r.hellos.head < len(r.hellos.q) {
		next, ok = r.hellos.q[r.hellos.head].at+r.helloTimeout, true
	}
	return next, ok
}
