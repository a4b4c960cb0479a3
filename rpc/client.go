package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/rpclink"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// A Client calls one service. Its methods are safe for concurrent use;
// each goroutine waits for its own calls. Use [NewClient]; Close it when
// done (after its calls returned).
type Client struct {
	service string
	opts    Options
	link    rpclink.Pub
	req     *publisher.Publisher
	resp    *subscriber.Subscriber
	eng     *ownedpub.Engine

	// taker is held by the goroutine that takes from resp for everyone
	// (responses of other calls are parked in their slots).
	taker sync.Mutex

	mu      sync.Mutex // guards the fields below
	servers []server
	rr      int
	slots   []slot
	free    []int32
	nodes   []node // parked responses, linked per slot
	freeN   int32  // first free node, -1 when none
	nparked int    // parked responses (Ready of a wait set)
	seq     uint64
	changed chan struct{} // closed and replaced when servers change
	closed  bool
	next    int // where handoff looks first (fairness)
	// idle counts wakes of waiting calls that found neither a response
	// nor the taker free: woken for nothing (tests).
	idle uint64
}

// server is one connected server: the client's request connection to it.
type server struct {
	id   uint32
	conn *ownedpub.Conn
}

// slot is one pending call.
type slot struct {
	id         uint64 // request id (seq<<16 | slot index); 0: free
	conn       uint32 // the server's request connection
	err        error  // the server ended before the call did
	head, tail int32  // parked responses, -1 when none
	wake       chan struct{}
	// waiting: the call's goroutine sleeps (or is about to) on wake with
	// no response and no failure; handoff may pick it. baton: handoff
	// picked it to take next; it passes the baton on if it returns
	// without taking.
	waiting, baton bool
}

// node is one parked response.
type node struct {
	s    subscriber.Sample
	next int32
}

// NewClient connects a client to service. The router must run the owned
// memory model.
func NewClient(ctx context.Context, service string, opts Options) (*Client, error) {
	if err := opts.check(service); err != nil {
		return nil, err
	}
	c := &Client{service: service, opts: opts, changed: make(chan struct{})}
	n := opts.MaxInFlight
	held := parked * n
	c.slots = make([]slot, n)
	c.free = make([]int32, n)
	for i := range c.slots {
		c.slots[i] = slot{head: -1, tail: -1, wake: make(chan struct{}, 1)}
		c.free[i] = int32(n - 1 - i)
	}
	// One node per sample the response subscriber may hold (MaxHeld
	// below), so parking never fails.
	c.nodes = make([]node, held+n)
	for i := range c.nodes {
		c.nodes[i].next = int32(i + 1)
	}
	c.nodes[len(c.nodes)-1].next = -1
	c.link = rpclink.Pub{Kind: wire.EndpointRequest, Added: c.serverAdded, Gone: c.serverGone}
	req, err := publisher.New(rpclink.WithPub(ctx, &c.link), service, publisher.Options{Domain: opts.Domain, Socket: opts.Socket,
		TypeName: opts.Request.Name, TypeSize: opts.Request.Size, TypeAlign: opts.Request.Align,
		MaxPayload: opts.MaxRequest, MaxLoans: n, ExpectedSubscribers: 1})
	if err != nil {
		return nil, fmt.Errorf("rpc client of %q: %w", service, err)
	}
	c.req, c.eng = req, c.link.Engine
	resp, err := subscriber.New(rpclink.WithSub(ctx, &rpclink.Sub{Kind: wire.EndpointResponse, Pair: req.ID()}), service, subscriber.Options{
		Domain: opts.Domain, Socket: opts.Socket,
		TypeName: opts.Response.Name, TypeSize: opts.Response.Size, TypeAlign: opts.Response.Align,
		QueueCapacity: held, Policy: subscriber.BlockProducer, MaxHeld: held + n, Spin: opts.Spin, BusyPoll: opts.BusyPoll})
	if err != nil {
		_ = req.Close()
		return nil, fmt.Errorf("rpc client of %q: %w", service, err)
	}
	c.resp = resp
	return c, nil
}

// Service returns the service name.
func (c *Client) Service() string { return c.service }

// Servers returns how many servers the client is connected to.
func (c *Client) Servers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.servers)
}

// WaitForServers waits until the client is connected to at least n
// servers, or ctx ends.
func (c *Client) WaitForServers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		have, ch := len(c.servers), c.changed
		c.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d servers of %q (have %d): %w", n, c.service, have, ctx.Err())
		}
	}
}

// serverAdded is the request publisher's rpclink Added hook.
func (c *Client) serverAdded(ci rpclink.ConnInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.servers = append(c.servers, server{id: ci.ID, conn: ci.Conn})
	close(c.changed)
	c.changed = make(chan struct{})
}

// serverGone is the request publisher's rpclink Gone hook: every call
// pending on that server fails at once.
func (c *Client) serverGone(id uint32, code wire.RemovedCode) {
	why := "closed"
	if code != wire.RemovedUnspecified {
		why = "removed: " + code.String()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.servers {
		if s.id == id {
			c.servers = append(c.servers[:i], c.servers[i+1:]...)
			close(c.changed)
			c.changed = make(chan struct{})
			break
		}
	}
	for i := range c.slots {
		sl := &c.slots[i]
		if sl.id != 0 && sl.conn == id && sl.err == nil {
			sl.err = fmt.Errorf("call %d on %q: server connection %d %s: %w", sl.id, c.service, id, why, ErrServerGone)
			wake(sl)
		}
	}
}

// Loan loans a request chunk of n bytes from the client's own segment.
func (c *Client) Loan(n int) (Chunk, error) {
	l, err := c.eng.Loan(n)
	if err != nil {
		return Chunk{}, fmt.Errorf("loan a %d-byte request for %q: %w", n, c.service, err)
	}
	return Chunk{l: l}, nil
}

// Release gives back a loaned chunk that was not sent.
func (c *Client) Release(ch *Chunk) error {
	if err := c.eng.Release(&ch.l); err != nil {
		return fmt.Errorf("release a request chunk of %q: %w", c.service, err)
	}
	return nil
}

// Start sends the loaned request ch to one server (round-robin) and
// returns the call's stream of responses. The chunk is spent whatever the
// result. It fails at once with [ErrInFlight] when [Options.MaxInFlight]
// calls are pending, with [ErrNoServer] when no server is connected, and
// with [ErrServerGone] when the chosen server goes before the send.
// When the server's request queue is full, Start waits for room until
// ctx ends (an error wrapping ctx.Err(), and parallax.ErrTimeout for a
// deadline; the request is not sent) or, for a ctx without deadline, up to
// the publisher's block timeout (1 s).
func (c *Client) Start(ctx context.Context, ch *Chunk) (Stream, error) {
	c.mu.Lock()
	var err error
	switch {
	case c.closed:
		err = ErrClosed
	case len(c.free) == 0:
		err = ErrInFlight
	case len(c.servers) == 0:
		err = ErrNoServer
	}
	if err != nil {
		c.mu.Unlock()
		_ = c.eng.Release(&ch.l)
		return Stream{}, fmt.Errorf("call %q: %w", c.service, err)
	}
	idx := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	c.seq++
	id := c.seq<<16 | uint64(idx)
	srv := c.servers[c.rr%len(c.servers)]
	c.rr++
	sl := &c.slots[idx]
	sl.id, sl.conn, sl.err = id, srv.id, nil
	select { // a stale token from the slot's last call
	case <-sl.wake:
	default:
	}
	c.mu.Unlock()
	ch.l.SetMeta(metaFor(id, 0))
	if err := c.eng.PublishTo(ctx, &ch.l, srv.conn); err != nil {
		c.mu.Lock()
		c.freeSlot(idx)
		c.mu.Unlock()
		if errors.Is(err, ownedpub.ErrConnGone) {
			// The server went between its choice above and the send
			// (its Gone hook ran meanwhile): the call fails as one
			// pending on it does.
			err = ErrServerGone
		}
		return Stream{}, fmt.Errorf("call %q: send to server connection %d: %w", c.service, srv.id, err)
	}
	return Stream{c: c, idx: idx, id: id}, nil
}

// Call sends b as a request and returns the first response; the caller
// releases it. Further responses of a stream are dropped.
func (c *Client) Call(ctx context.Context, b []byte) (Response, error) {
	ch, err := c.Loan(len(b))
	if err != nil {
		return Response{}, err
	}
	copy(ch.Bytes(), b)
	st, err := c.Start(ctx, &ch)
	if err != nil {
		return Response{}, err
	}
	r, err := st.Next(ctx)
	if err != nil || !r.End() {
		st.Close()
	}
	return r, err
}

// Stats returns the client's request memory as its owner counts it.
func (c *Client) Stats() publisher.MemoryStats { return c.req.Stats().Memory }

// Close fails the pending calls with [ErrClosed] and disconnects. Call it
// after the calls returned.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for i := range c.slots {
		if sl := &c.slots[i]; sl.id != 0 && sl.err == nil {
			sl.err = fmt.Errorf("call %d on %q: %w", sl.id, c.service, ErrClosed)
			wake(sl)
		}
	}
	c.mu.Unlock()
	err1 := c.resp.Close()
	err2 := c.req.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

// freeSlot ends slot idx, releasing what is parked in it; c.mu held.
func (c *Client) freeSlot(idx int32) {
	sl := &c.slots[idx]
	for sl.head >= 0 {
		s := c.unpark(sl)
		_ = s.Release()
	}
	sl.id, sl.err, sl.waiting, sl.baton = 0, nil, false, false
	c.free = append(c.free, idx)
}

// park appends s to slot sl; c.mu held. It reports false when no node is
// free (cannot happen while held samples ≤ nodes, see NewClient).
func (c *Client) park(sl *slot, s subscriber.Sample) bool {
	n := c.freeN
	if n < 0 {
		return false
	}
	c.freeN = c.nodes[n].next
	c.nodes[n] = node{s: s, next: -1}
	c.nparked++
	if sl.tail >= 0 {
		c.nodes[sl.tail].next = n
	} else {
		sl.head = n
	}
	sl.tail = n
	return true
}

// unpark removes the first parked response of sl; c.mu held, sl.head ≥ 0.
func (c *Client) unpark(sl *slot) subscriber.Sample {
	n := sl.head
	s := c.nodes[n].s
	sl.head = c.nodes[n].next
	if sl.head < 0 {
		sl.tail = -1
	}
	c.nodes[n] = node{next: c.freeN}
	c.freeN = n
	c.nparked--
	return s
}

// wake gives sl's waiter a token.
func wake(sl *slot) {
	select {
	case sl.wake <- struct{}{}:
	default:
	}
}
