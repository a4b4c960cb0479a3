package event

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/rpclink"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// pushSlice bounds each wait of a Signal for room in a full ring, so a
// connection removed meanwhile is let go within a slice.
const pushSlice = 5 * time.Millisecond

// A Notifier signals event ids to every listener of a service. Use
// [NewNotifier]; the zero value is invalid. Its methods are safe for
// concurrent use (signals are serialised: each ring has one producer).
type Notifier struct {
	service string
	opts    Options
	pub     *publisher.Publisher
	link    rpclink.Pub

	mu     sync.Mutex
	conns  []*nconn // live listener connections
	closed bool

	// cmu guards index, so that gone marks a connection without waiting
	// for a Signal that holds mu while it waits for room.
	cmu   sync.Mutex
	index map[uint32]*nconn
}

// nconn is one listener connection as the notifier pushes into it.
type nconn struct {
	id   uint32
	sub  uint32
	ring *ringbuf.Ring
	wake *ringbuf.Notifier
	gone atomic.Bool // removed: Signal lets go of the ring
	bad  bool        // the ring failed (corrupt): skipped; n.mu
	// pushed counts this side's pushes (the ring's tail, mod 2^32); at
	// is the push position of each id, so an id still queued (position
	// within the ring's length behind pushed) is not pushed again. n.mu.
	pushed uint32
	at     map[uint64]uint32
}

// NewNotifier returns a notifier of service. Access rules decide on the
// publish side ("may not notify"); the router must run the owned model.
func NewNotifier(ctx context.Context, service string, opts Options) (*Notifier, error) {
	if err := opts.check("notifier", service); err != nil {
		return nil, err
	}
	n := &Notifier{service: service, opts: opts, index: map[uint32]*nconn{}}
	n.link = rpclink.Pub{Kind: wire.EndpointEvent, Added: n.added, Gone: n.gone}
	// The router grants every publisher a data segment; a notifier asks
	// for the smallest and never loans from it.
	p, err := publisher.New(rpclink.WithPub(ctx, &n.link), service, publisher.Options{Domain: opts.Domain, Socket: opts.Socket,
		MaxPayload: 64, MaxLoans: 1})
	if err != nil {
		return nil, fmt.Errorf("event notifier of %q: %w", service, err)
	}
	n.pub = p
	return n, nil
}

func (n *Notifier) added(ci rpclink.ConnInfo) {
	if ci.Ring == nil {
		return
	}
	c := &nconn{id: ci.ID, sub: ci.SubID, ring: ci.Ring.DataRing(), wake: ci.Ring.DataWake(), at: map[uint64]uint32{}}
	n.cmu.Lock()
	n.index[c.id] = c
	n.cmu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conns = append(n.conns, c)
}

// gone runs before the publisher unmaps the connection: after it returns
// no Signal touches the ring.
func (n *Notifier) gone(id uint32, _ wire.RemovedCode) {
	n.cmu.Lock()
	if c := n.index[id]; c != nil {
		c.gone.Store(true) // a Signal waiting for room lets go within a slice
	}
	delete(n.index, id)
	n.cmu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, c := range n.conns {
		if c.id == id {
			n.conns = append(n.conns[:i], n.conns[i+1:]...)
			return
		}
	}
}

// Service returns the service name.
func (n *Notifier) Service() string { return n.service }

// Listeners returns how many listener connections the notifier signals.
func (n *Notifier) Listeners() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.conns)
}

// WaitForListeners waits until at least k listeners are connected.
func (n *Notifier) WaitForListeners(ctx context.Context, k int) error {
	if err := n.pub.WaitForSubscribers(ctx, k); err != nil {
		return fmt.Errorf("event notifier of %q: %w", n.service, err)
	}
	return nil
}

// Signal fires id at every listener. An id still queued for a listener
// (not read yet) is not queued again: the listener's next wake reports it
// once. A listener whose ring is full of other ids is woken and waited
// for, up to Options.BlockTimeout; nothing is dropped. With no listener
// asleep Signal makes no system call. Errors name the listener connection
// (the others were signalled).
func (n *Notifier) Signal(id uint64) error {
	if id == 1<<64-1 {
		return ErrInvalidID
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	var first error
	for _, c := range n.conns {
		if c.bad || c.gone.Load() {
			continue
		}
		if err := n.signal(c, id); err != nil && first == nil {
			first = fmt.Errorf("event notifier of %q: listener connection %d (subscriber %d): %w", n.service, c.id, c.sub, err)
		}
	}
	return first
}

// signal queues id on c unless it is queued there already. n.mu held.
func (n *Notifier) signal(c *nconn, id uint64) error {
	if p, ok := c.at[id]; ok {
		if d := c.pushed - p; d >= 1 && int(d) <= c.ring.Len() {
			return nil // still in the ring: the listener will read it
		}
	}
	ref := parallax.ChunkRef(id + 1)
	_, err := c.ring.TryPush(ref)
	if err == ringbuf.ErrFull {
		err = n.pushWaiting(c, ref)
	}
	if err != nil {
		if !errors.Is(err, parallax.ErrTimeout) {
			c.bad = true
			slog.Warn("parallax: event notifier stops signalling a connection", "service", n.service, "conn", c.id, "err", err)
		}
		return err
	}
	if len(c.at) >= 4*c.ring.Cap() {
		c.prune()
	}
	c.at[id] = c.pushed
	c.pushed++
	return c.wake.Notify()
}

// pushWaiting waits for room in c's full ring in slices, waking the
// listener first. n.mu held.
func (n *Notifier) pushWaiting(c *nconn, ref parallax.ChunkRef) error {
	if err := c.wake.Notify(); err != nil {
		return err
	}
	end := time.Now().Add(n.opts.BlockTimeout)
	for {
		d := time.Now().Add(pushSlice)
		if d.After(end) {
			d = end
		}
		_, err := c.ring.PushUntil(d, ref)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, parallax.ErrTimeout):
			return err
		case c.gone.Load():
			return nil // removed: nothing to deliver to
		case !time.Now().Before(end):
			return fmt.Errorf("ring full of %d unread ids for %v: %w", c.ring.Cap(), n.opts.BlockTimeout, parallax.ErrTimeout)
		}
	}
}

// prune forgets the positions of ids no longer in the ring.
func (c *nconn) prune() {
	l := c.ring.Len()
	for id, p := range c.at {
		if d := c.pushed - p; d < 1 || int(d) > l {
			delete(c.at, id)
		}
	}
}

// Close ends the notifier; listeners still read the ids it queued.
func (n *Notifier) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	return n.pub.Close()
}
