package roudi

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Events that the connection goroutines send to the Serve goroutine.
type event interface{ isServerEvent() }

type evAccepted struct {
	c  *serverConn
	sc *discovery.ServerConn
}
type evHello struct {
	c     *serverConn
	reqID uint32
	hello *wire.Hello
}
type evRequest struct {
	c     *serverConn
	env   wire.Envelope
	files []*os.File
}
type evGone struct {
	c   *serverConn
	err error
}
type evSnapshot struct{ reply chan<- core.Snapshot }

func (evAccepted) isServerEvent() {}
func (evHello) isServerEvent()    {}
func (evRequest) isServerEvent()  {}
func (evGone) isServerEvent()     {}
func (evSnapshot) isServerEvent() {}

// handle runs on the Serve goroutine.
func (s *Server) handle(ev event) {
	switch ev := ev.(type) {
	case evAccepted:
		s.nextID++
		ev.c.id = s.nextID
		s.conns[ev.c.id] = ev.c
		s.step(core.ConnAccepted{Conn: ev.c.id})
	case evHello:
		if s.conns[ev.c.id] != ev.c {
			return // already gone
		}
		ev.c.version = ev.c.sc.Version
		ev.c.hello = true
		ev.c.helloReq(ev.reqID)
		cred := ev.c.sc.Cred
		s.step(core.ClientConnected{Conn: ev.c.id, PID: cred.PID, UID: cred.UID, GID: cred.GID, Name: ev.hello.Name})
		s.watchPeer(ev.c)
	case evRequest:
		if _, ok := ev.env.Msg.(*wire.Resume); ok {
			s.resumeFds = ev.files // owned segments handed back (server_adopt.go)
		} else {
			closeFiles(ev.files) // no other request carries fds
		}
		if s.conns[ev.c.id] == ev.c {
			s.timedRequest(ev.c, ev.env)
		}
		closeFiles(s.resumeFds) // not taken over
		s.resumeFds = nil
	case evGone:
		if s.conns[ev.c.id] != ev.c {
			return
		}
		if ev.err != nil && !errors.Is(ev.err, io.EOF) && !errors.Is(ev.err, os.ErrClosed) {
			s.log.Warn("client connection failed", "conn", ev.c.id, "pid", ev.c.sc.Cred.PID, "err", ev.err)
		}
		s.step(core.ClientDisconnected{Conn: ev.c.id})
		s.idents.clear(ev.c.client) // it left: nothing to resume after a restart
		s.dropConn(ev.c)
		s.confirmWithoutMonitor(ev.c) // server_lifecycle.go
	case evSnapshot:
		ev.reply <- s.core.Snapshot()
	case evFunc:
		ev.fn()
	}
}

// helloReq remembers the handshake's request id for the Welcome reply.
func (c *serverConn) helloReq(id uint32) { c.helloReqID = id }

func (s *Server) dropConn(c *serverConn) {
	s.unwatchPeer(c)
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
		s.obs.forgetComponents(c.id)
		s.obs.forgetMemory(c.id)
		c.sc.CloseWhenFlushed() // a reply queued before the close still goes out
	}
}

// request translates a wire request into a core event (or answers it
// directly when the core has no part in it).
func (s *Server) request(c *serverConn, env wire.Envelope) {
	if s.introspect(c, env) {
		return
	}
	var req core.Request
	switch m := env.Msg.(type) {
	case *wire.Ping:
		s.send(c, env.ReqID, &wire.Pong{}, nil)
		return
	case *wire.ReportPeer:
		s.reportPeer(c, env.ReqID, m) // server_guard.go
		return
	case *wire.ReportCounters:
		s.reportCounters(c, env.ReqID, m) // server_counters.go
		return
	case *wire.ReportMemory:
		s.reportMemory(c, env.ReqID, m) // server_memory.go
		return
	case *wire.CreatePublisher:
		req = core.CreatePublisher{Topic: m.Topic, Type: core.TypeInfo(m.Type), History: int(m.History),
			MaxPayload: m.MaxPayload, MaxLoans: int(m.MaxLoans), ExpectedSubscribers: int(m.ExpectedSubscribers),
			Kind: core.EndpointKind(m.Kind)}
	case *wire.CreateSubscriber:
		req = core.CreateSubscriber{Topic: m.Topic, Type: core.TypeInfo(m.Type), QueueCapacity: int(m.QueueCapacity), History: int(m.History), Policy: core.Policy(m.Policy),
			MaxHeld: int(m.MaxHeld), Kind: core.EndpointKind(m.Kind), Pair: core.PubID(m.Pair)}
	case *wire.ClosePublisher:
		req = core.ClosePublisher{Pub: core.PubID(m.PubID)}
	case *wire.CloseSubscriber:
		req = core.CloseSubscriber{Sub: core.SubID(m.SubID)}
	case *wire.ReleaseConnection:
		req = core.ReleaseConnection{Connection: core.ConnectionID(m.ConnID)}
	case *wire.Resume:
		s.resumeRequest(c, env.ReqID, m)
		return
	case *wire.GrowData, *wire.RetireData, *wire.GetDataSegment:
		req = ownedGrowRequest(m) // server_grow.go
	case *wire.WatchServices:
		req = core.WatchServices{} // server_watch.go
	case *wire.UnwatchServices:
		req = core.UnwatchServices{} // server_watch.go
	default:
		s.replyError(c, env.ReqID, fmt.Errorf("unexpected %T request: %w", env.Msg, parallax.ErrProtocol))
		return
	}
	s.step(core.ClientRequest{Conn: c.id, ReqID: env.ReqID, Req: req})
}

// step feeds the core one event and executes the actions it produces.
func (s *Server) step(ev core.Event) {
	s.observeEvent(ev)
	s.core.Step(ev)
	actions := s.core.Ready()
	if err := s.idMarks.note(s.core.IDMarks()); err != nil { // server_idmarks.go
		s.log.Warn("a successor router may reuse ids", "err", err)
	}
	// Replies go after the step's other actions (and before its connection
	// closes): the pushes that wire a new endpoint to its peers then reach
	// the requesting client before the reply, so publisher.New and
	// subscriber.New can return with every existing peer attached (they
	// wait with a discovery Barrier after the reply).
	// A dead client's memory first: its reclaim touches only shared
	// memory, and the pushes that tell its peers (system calls, one per
	// peer) can follow.
	for _, a := range actions {
		if _, ok := a.(core.ReclaimClient); ok {
			s.execute(a)
		}
	}
	for _, a := range actions {
		switch a.(type) {
		case core.Reply, core.CloseConn, core.ReclaimClient:
		default:
			s.execute(a)
		}
	}
	for _, a := range actions {
		if _, ok := a.(core.Reply); ok {
			s.execute(a)
		}
	}
	for _, a := range actions {
		if _, ok := a.(core.CloseConn); ok {
			s.execute(a)
		}
	}
	s.segmentReports() // server_segments.go
}

func (s *Server) execute(a core.Action) {
	s.observeAction(a)
	switch a := a.(type) {
	case core.Reply:
		s.reply(a)
	case core.ConnectionAdded:
		c := s.conns[a.Conn]
		if c == nil {
			return
		}
		s.push(c, &wire.ConnectionAdded{
			ConnID: uint32(a.Connection), PubID: uint32(a.Pub), SubID: uint32(a.Sub),
			Capacity: uint32(a.Capacity), Policy: uint8(a.Policy), History: uint32(a.History),
			Pair: uint32(a.Pair),
		})
	case core.ConnectionRemoved:
		c := s.conns[a.Conn]
		if c == nil {
			return
		}
		s.push(c, &wire.ConnectionRemoved{ConnID: uint32(a.Connection), PubID: uint32(a.Pub), SubID: uint32(a.Sub), Reason: a.Reason, Code: wireRemovedCode(a.Code)})
	case core.ConnectionClosing:
		s.connectionClosing(a) // server_lifecycle.go
	case core.ReclaimClient:
		s.reclaim(a)
	case core.CreateDataSegment, core.CreateConnSegment, core.GrantSegments, core.CloseDataSegments, core.CloseConnSegment:
		s.segmentAction(a) // server_segments.go
	case core.KeepAdopted:
		s.keepAdopted(a) // server_adopt.go
	case core.TellDataRetired:
		s.tellDataRetired(a) // server_grow.go
	case core.Count:
		s.countGuard(a) // server_guard.go
	case core.ServiceChanged, core.WatchSynced:
		s.watchAction(a) // server_watch.go
	case core.CloseConn:
		if c := s.conns[a.Conn]; c != nil {
			s.log.Info("closing client connection", "conn", a.Conn, "reason", a.Reason)
			s.dropConn(c)
		}
	case core.Log:
		args := make([]any, 0, len(a.Attrs))
		for _, at := range a.Attrs {
			args = append(args, at)
		}
		s.log.Log(nil, a.Level, a.Msg, args...) //nolint:staticcheck // slog accepts a nil context
	}
}

func (s *Server) reply(a core.Reply) {
	c := s.conns[a.Conn]
	if c == nil {
		return
	}
	if a.Err != nil {
		s.replyError(c, a.ReqID, wireError(a.Err))
		return
	}
	switch r := a.Result.(type) {
	case core.Welcome:
		c.client = r.Client
		s.stats.clients.Add(1)
		if err := s.idents.put(r.Identity); err != nil {
			s.log.Error("the client will not be able to resume after a router restart", "client", r.Client, "err", err)
		}
		s.send(c, c.helloReqID, &wire.Welcome{Version: c.version, ClientID: uint16(r.Client), RouterPID: int32(os.Getpid()),
			Domain: s.cfg.Domain, ResumeToken: r.Token[:]}, nil)
	case core.PublisherCreated:
		s.send(c, a.ReqID, &wire.PublisherCreated{PubID: uint32(r.Pub)}, nil)
	case core.SubscriberCreated:
		s.send(c, a.ReqID, &wire.SubscriberCreated{SubID: uint32(r.Sub)}, nil)
	case core.Closed, core.Noted, core.Watching, core.Unwatched:
		s.send(c, a.ReqID, &wire.Ack{}, nil)
	case core.DataSegmentGranted:
		s.replyDataSeg(c, a.ReqID, r) // server_grow.go
	case core.Resumed:
		c.client = r.Client
		s.send(c, a.ReqID, &wire.Resumed{ClientID: uint16(r.Client)}, nil)
	}
}

// sendTimeout bounds the write of one message to a client (its writer's
// write timeout, server_outq.go): a client that lets a write wait longer is
// cut.
const sendTimeout = 2 * time.Second

// send queues m for c; it never blocks on the client (server_outq.go).
func (s *Server) send(c *serverConn, reqID uint32, m wire.Message, files []*os.File) {
	if err := c.sc.Reply(reqID, m, files); sendFailed(err) {
		s.log.Warn("send to client failed; dropping it", "conn", c.id, "msg", fmt.Sprintf("%T", m), "err", err)
		s.step(core.ClientDisconnected{Conn: c.id})
		s.dropConn(c)
	}
}

func (s *Server) push(c *serverConn, m wire.Message) { s.send(c, 0, m, nil) }

func (s *Server) replyError(c *serverConn, reqID uint32, err error) {
	s.log.Debug("request refused", "conn", c.id, "req", reqID, "err", err)
	if e := c.sc.ReplyError(reqID, err); sendFailed(e) {
		s.log.Warn("send error reply failed", "conn", c.id, "err", e)
	}
}

// reclaim accounts for a dead client: the count of clients, the reclaim
// latency metric and Options.OnReclaim.
func (s *Server) reclaim(a core.ReclaimClient) {
	if a.PID != 0 { // 0: an adopted client that never resumed (never counted)
		s.stats.clients.Add(-1)
	}
	defer func() {
		r := Reclaim{PID: a.PID, Exited: s.mon.exited[a.PID], Done: time.Now()}
		if !r.Exited.IsZero() && a.PID != 0 {
			s.metricsState().reclaim.Observe(max(r.Done.Sub(r.Exited), 0).Seconds())
		}
		if s.opts.OnReclaim != nil {
			s.opts.OnReclaim(r)
		}
	}()
	// The router holds nothing of a client's: its publishers' peers take
	// back what they delivered (death.go).
	s.log.Info("reclaimed client", "client", a.Client, "pid", a.PID)
}

// notFoundErr carries the core's ErrNotFound as the protocol's.
type notFoundErr struct{ error }

func (e notFoundErr) Is(target error) bool { return target == wire.ErrNotFound }

// wireError maps the core's own sentinels onto the protocol's.
func wireError(err error) error {
	if errors.Is(err, core.ErrNotFound) {
		return notFoundErr{err}
	}
	return err
}
