package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/rpclink"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// pairWait bounds how long Send waits for the response connection of a
// client whose request arrived first (the router announces both at the
// client's connect; the response segment may be mapped a moment later).
const pairWait = 2 * time.Second

// maxGone bounds the remembered departed clients (then forgotten at once).
const maxGone = 4096

// A Server serves one service. Receive, Send and Respond are safe for
// concurrent use (Receive calls are serialised). Use [NewServer].
type Server struct {
	service string
	link    rpclink.Pub
	req     *subscriber.Subscriber
	resp    *publisher.Publisher
	eng     *ownedpub.Engine
	recv    sync.Mutex

	mu      sync.Mutex
	pairs   map[uint32]*ownedpub.Conn // client's request publisher → its response connection
	byConn  map[uint32]uint32         // response connection → client's request publisher
	gone    map[uint32]bool           // clients whose response connection ended
	changed chan struct{}
}

// A Request is one received request. Its bytes alias the client's memory
// (read-only) and are valid until Release; release it exactly once (the
// responses may be sent before or after).
type Request struct {
	s subscriber.Sample
}

// Bytes returns the request payload (read-only: do not write).
func (r Request) Bytes() []byte { return r.s.Bytes() }

// ID returns the request id the responses carry.
func (r Request) ID() uint64 { return r.s.Header().UserSeq }

// Client returns the id of the calling client's request publisher.
func (r Request) Client() uint32 { return r.s.Header().PublisherID }

// Release gives the request chunk back to the client.
func (r Request) Release() error { return r.s.Release() }

// NewServer starts serving service. The router must run the owned memory
// model.
func NewServer(ctx context.Context, service string, opts Options) (*Server, error) {
	if err := opts.check(service); err != nil {
		return nil, err
	}
	s := &Server{service: service, pairs: map[uint32]*ownedpub.Conn{}, byConn: map[uint32]uint32{},
		gone: map[uint32]bool{}, changed: make(chan struct{})}
	s.link = rpclink.Pub{Kind: wire.EndpointResponse, Added: s.clientAdded, Gone: s.clientGone}
	resp, err := publisher.New(rpclink.WithPub(ctx, &s.link), service, publisher.Options{Domain: opts.Domain, Socket: opts.Socket,
		TypeName: opts.Response.Name, TypeSize: opts.Response.Size, TypeAlign: opts.Response.Align,
		MaxPayload: opts.MaxResponse, ExpectedSubscribers: opts.ExpectedClients})
	if err != nil {
		return nil, fmt.Errorf("rpc server of %q: %w", service, err)
	}
	s.resp, s.eng = resp, s.link.Engine
	req, err := subscriber.New(rpclink.WithSub(ctx, &rpclink.Sub{Kind: wire.EndpointRequest}), service, subscriber.Options{
		Domain: opts.Domain, Socket: opts.Socket,
		TypeName: opts.Request.Name, TypeSize: opts.Request.Size, TypeAlign: opts.Request.Align,
		QueueCapacity: max(2*opts.MaxInFlight, 64), Policy: subscriber.BlockProducer, MaxHeld: opts.MaxInFlight,
		Spin: opts.Spin, BusyPoll: opts.BusyPoll})
	if err != nil {
		_ = resp.Close()
		return nil, fmt.Errorf("rpc server of %q: %w", service, err)
	}
	s.req = req
	return s, nil
}

// Service returns the service name.
func (s *Server) Service() string { return s.service }

// Clients returns how many clients are connected.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pairs)
}

func (s *Server) clientAdded(ci rpclink.ConnInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ci.Pair == 0 {
		return // not a client's response connection (the router pairs every one)
	}
	s.pairs[ci.Pair] = ci.Conn
	s.byConn[ci.ID] = ci.Pair
	delete(s.gone, ci.Pair)
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) clientGone(id uint32, _ wire.RemovedCode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pair, ok := s.byConn[id]
	if !ok {
		return
	}
	delete(s.byConn, id)
	delete(s.pairs, pair)
	if len(s.gone) >= maxGone {
		clear(s.gone)
	}
	s.gone[pair] = true
}

// recvSlice bounds one sleep of Receive under a context that can end: the
// end is noticed within it. A context that never ends (Background) sleeps
// until a request comes.
const recvSlice = 20 * time.Millisecond

// Receive returns the next request, waiting until one arrives or ctx
// ends (an error wrapping ctx.Err()). It allocates nothing, also when it
// sleeps (a cancellation is polled every 20 ms rather than registered).
func (s *Server) Receive(ctx context.Context) (Request, error) {
	s.recv.Lock()
	defer s.recv.Unlock()
	if ctx.Done() == nil {
		x, err := s.req.Take(ctx)
		if err != nil {
			return Request{}, fmt.Errorf("receive a request of %q: %w", s.service, err)
		}
		return Request{s: x}, nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return Request{}, fmt.Errorf("receive a request of %q: %w", s.service, err)
		}
		wait := recvSlice
		if d, ok := ctx.Deadline(); ok {
			wait = min(wait, max(time.Until(d), time.Microsecond))
		}
		x, err := s.req.TakeTimeout(wait)
		if err == nil {
			return Request{s: x}, nil
		}
		if !errors.Is(err, parallax.ErrTimeout) {
			return Request{}, fmt.Errorf("receive a request of %q: %w", s.service, err)
		}
	}
}

// Loan loans a response chunk of n bytes from the server's own segment.
func (s *Server) Loan(n int) (Chunk, error) {
	l, err := s.eng.Loan(n)
	if err != nil {
		return Chunk{}, fmt.Errorf("loan a %d-byte response for %q: %w", n, s.service, err)
	}
	return Chunk{l: l}, nil
}

// Release gives back a loaned chunk that was not sent.
func (s *Server) Release(ch *Chunk) error {
	if err := s.eng.Release(&ch.l); err != nil {
		return fmt.Errorf("release a response chunk of %q: %w", s.service, err)
	}
	return nil
}

// Send sends ch as a response to req, to req's client only; end marks the
// last response of the call. The chunk is spent whatever the result. A
// client that is gone gives an error wrapping [ErrClientGone]. When the
// client's response queue is full (or its response connection is not
// attached yet), Send waits until ctx ends (an error wrapping ctx.Err(),
// and parallax.ErrTimeout for a deadline; nothing is sent) or, for a ctx
// without deadline, up to the block timeout (1 s; 2 s for the
// connection).
func (s *Server) Send(ctx context.Context, req Request, ch *Chunk, end bool) error {
	client := req.Client()
	conn, err := s.pairConn(ctx, client)
	if err != nil {
		_ = s.eng.Release(&ch.l)
		return err
	}
	var flags uint32
	if end {
		flags = FlagEnd
	}
	ch.l.SetMeta(metaFor(req.ID(), flags))
	if err := s.eng.PublishTo(ctx, &ch.l, conn); err != nil {
		if errors.Is(err, ownedpub.ErrConnGone) {
			err = ErrClientGone
		}
		return fmt.Errorf("respond to call %d of client %d on %q: %w", req.ID(), client, s.service, err)
	}
	return nil
}

// Respond copies b into a response chunk and sends it as req's last
// response (ctx as for [Server.Send]).
func (s *Server) Respond(ctx context.Context, req Request, b []byte) error {
	ch, err := s.Loan(len(b))
	if err != nil {
		return err
	}
	copy(ch.Bytes(), b)
	return s.Send(ctx, req, &ch, true)
}

// pairConn returns the response connection of client, waiting up to
// pairWait (or ctx's end) for one that has not been attached yet.
func (s *Server) pairConn(ctx context.Context, client uint32) (*ownedpub.Conn, error) {
	var deadline time.Time
	for {
		s.mu.Lock()
		conn, gone, ch := s.pairs[client], s.gone[client], s.changed
		s.mu.Unlock()
		if conn != nil {
			return conn, nil
		}
		if gone {
			return nil, fmt.Errorf("respond to client %d on %q: %w", client, s.service, ErrClientGone)
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(pairWait)
		}
		d := time.Until(deadline)
		if d <= 0 {
			return nil, fmt.Errorf("respond to client %d on %q: no response connection after %v: %w", client, s.service, pairWait, ErrClientGone)
		}
		t := time.NewTimer(d)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if err := ctx.Err(); err != nil {
			return nil, ctxErr(fmt.Sprintf("respond to client %d on %q: wait for its response connection", client, s.service), err)
		}
	}
}

// Stats returns the server's response memory as its owner counts it.
func (s *Server) Stats() publisher.MemoryStats { return s.resp.Stats().Memory }

// Close stops serving: pending calls of its clients fail with
// [ErrServerGone].
func (s *Server) Close() error {
	err1 := s.req.Close()
	err2 := s.resp.Close()
	if err1 != nil {
		return err1
	}
	return err2
}
