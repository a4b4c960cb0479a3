package rpc

import "github.com/parallax-ipc/parallax/ringbuf"

// Ready reports whether a response arrived for some call of c (queued, or
// parked by another goroutine's take), so a [Stream.Next] may return
// without sleeping: the readiness check of a wait set (package waitset).
// It makes no system call and allocates nothing.
func (c *Client) Ready() bool {
	if c.resp.Ready() {
		return true
	}
	c.mu.Lock()
	n := c.nparked
	c.mu.Unlock()
	return n > 0
}

// AppendNotifiers appends the futex words a wait set sleeps on for c's
// responses, with their generation (see subscriber.Subscriber.AppendNotifiers).
func (c *Client) AppendNotifiers(dst []*ringbuf.Notifier) ([]*ringbuf.Notifier, uint64) {
	return c.resp.AppendNotifiers(dst)
}

// Ready reports whether a request arrived, so [Server.Receive] returns
// without sleeping: the readiness check of a wait set (package waitset).
// It takes no lock, makes no system call and allocates nothing.
func (s *Server) Ready() bool { return s.req.Ready() }

// AppendNotifiers appends the futex words a wait set sleeps on for s's
// requests, with their generation (see subscriber.Subscriber.AppendNotifiers).
func (s *Server) AppendNotifiers(dst []*ringbuf.Notifier) ([]*ringbuf.Notifier, uint64) {
	return s.req.AppendNotifiers(dst)
}

// LeaveWait and Changed complete the wait set protocol (see
// subscriber.Subscriber.LeaveWait). A wait set over c and a [Stream.Next]
// must not wait at the same time.
func (c *Client) LeaveWait() { c.resp.LeaveWait() }

// Changed reports whether the words c gave a wait set changed.
func (c *Client) Changed() bool { return c.resp.Changed() }

// LeaveWait and Changed complete the wait set protocol (see
// subscriber.Subscriber.LeaveWait). A wait set over s and a
// [Server.Receive] must not wait at the same time.
func (s *Server) LeaveWait() { s.req.LeaveWait() }

// Changed reports whether the words s gave a wait set changed.
func (s *Server) Changed() bool { return s.req.Changed() }
