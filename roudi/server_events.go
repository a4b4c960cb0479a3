package roudi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/ringbuf"
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
	case *wire.GrowPool:
		req = core.GrowPool{Size: m.Size, Known: m.Known}
	case *wire.GetSegments:
		req = core.GetSegments{Pool: m.PoolID, ReadOnly: m.ReadOnly}
	case *wire.Resume:
		s.resumeRequest(c, env.ReqID, m)
		return
	case *wire.GrowData, *wire.RetireData, *wire.GetDataSegment:
		req = ownedGrowRequest(m) // server_grow.go
	case *wire.WatchServices:
		req = core.WatchServices{} // server_watch.go
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
	if _, ok := ev.(core.Tick); ok {
		s.reportFreeDedicated()
	}
	s.growthReports() // server_growth.go
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
			RingOffset: a.Ring.Offset, RingSize: a.Ring.Size, Capacity: uint32(a.Capacity),
			Policy: uint8(a.Policy), NotifierOffset: a.Notifier.Offset, History: uint32(a.History),
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
	case core.FormatRing:
		if _, err := ringbuf.Format(s.region(a.Region), a.Capacity, ringPolicy(a.Policy)); err != nil {
			s.log.Error("format ring", "region", a.Region.String(), "err", err)
		}
	case core.FormatNotifier:
		if _, err := ringbuf.FormatNotifier(s.region(a.Region)); err != nil {
			s.log.Error("format notifier", "region", a.Region.String(), "err", err)
		}
	case core.FreeRegion:
		if a.Kind == core.RegionRing {
			if n := s.drainRing(a.Region); n > 0 {
				// Pushed after the subscriber closed or died, or left
				// by a subscriber that did not release the connection
				// within the quarantine (a stuck client, which then
				// lost them).
				s.log.Debug("released samples left in a removed connection's ring", "region", a.Region.String(), "samples", n)
			}
		}
	case core.ReclaimClient:
		s.reclaim(a)
	case core.CreatePool:
		s.createPool(a) // server_growth.go
	case core.RetirePool:
		s.retirePool(a)
	case core.TellPoolRetired:
		if c := s.conns[a.Conn]; c != nil && c.hello {
			s.push(c, &wire.PoolRetired{PoolID: a.Pool})
		}
	case core.CreateDataSegment, core.CreateConnSegment, core.GrantSegments, core.CloseDataSegments, core.CloseConnSegment:
		s.segmentAction(a) // server_segments.go
	case core.KeepAdopted:
		s.keepAdopted(a) // server_adopt.go
	case core.TellDataRetired:
		s.tellDataRetired(a) // server_grow.go
	case core.DrainOrphans:
		s.drainOrphanRings(a.Free) // server_resume.go
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

// holdRegion returns client c's hold table bytes.
func (s *Server) holdRegion(c core.ClientID) []byte {
	off := s.layout.HoldsOff + (int(c)-1)*s.layout.HoldsStride
	return s.mgmt.Bytes()[off : off+s.layout.HoldsStride]
}

// sweepIfQuiescent frees chunks leaked by processes killed inside a
// bookkeeping window (see mempool.HoldTable) when the core says the domain
// is idle (Router.Sweep): no client attached, connecting or due to resume,
// every ring region drained and freed. Any chunk still held is then leaked.
func (s *Server) sweepIfQuiescent() {
	switch s.core.Sweep() {
	case core.SweepNo:
		s.needSweep = false // the next departure or the resume deadline sets it again
		return
	case core.SweepLater:
		return // rings still waiting for their drain: try again next tick
	}
	if len(s.conns) != 0 {
		s.needSweep = false
		return
	}
	s.needSweep = false
	for _, p := range s.pools.Pools() {
		if p.Stats().InUse == 0 && p.Audit().AllFree() {
			continue
		}
		if n := p.Sweep(); n > 0 {
			s.stats.swept.Add(uint64(n))
			s.log.Warn("recovered leaked chunks with the domain idle", "pool", p.ID(), "chunks", n)
		}
	}
}

// region returns the management segment bytes of r; nil in the owned
// model, which has no management segment (the core places nothing there).
func (s *Server) region(r core.Region) []byte {
	if s.mgmt == nil {
		return nil
	}
	return s.mgmt.Bytes()[r.Offset : r.Offset+r.Size]
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
		if s.mgmt == nil {
			// Owned model: no management segment, pools or hold table.
			s.send(c, c.helloReqID, &wire.Welcome{Version: c.version, ClientID: uint16(r.Client), RouterPID: int32(os.Getpid()),
				Domain: s.cfg.Domain, ResumeToken: r.Token[:], Model: s.wireModel()}, nil)
			return
		}
		if _, err := mempool.FormatHoldTable(s.holdRegion(r.Client), s.layout.HoldsCap, uint16(r.Client)); err != nil {
			s.log.Error("format hold table", "client", r.Client, "err", err)
		}
		w := &wire.Welcome{
			Version: c.version, ClientID: uint16(r.Client), RouterPID: int32(os.Getpid()), Domain: s.cfg.Domain,
			ResumeToken: r.Token[:], Model: s.wireModel(),
			Mgmt: wire.SegmentDesc{ID: 0, Role: wire.RoleManagement, Kind: wire.KindMemfd, Size: uint64(s.layout.Size), PageSize: uint32(s.mgmt.PageSize())},
		}
		for i, pa := range s.layout.Pools {
			w.Pools = append(w.Pools, wire.PoolDesc{ID: pa.ID, ChunkSize: pa.Class.ChunkSize, Count: pa.Class.Count,
				MgmtOffset: uint64(pa.Offset), MgmtSize: uint64(pa.Size), SegmentID: uint32(i + 1)})
		}
		s.send(c, c.helloReqID, w, []*os.File{s.mgmt.File()})
	case core.PublisherCreated:
		m := &wire.PublisherCreated{PubID: uint32(r.Pub)}
		var files []*os.File
		if !c.sentRW && s.mgmt != nil { // the owned model grants data segments instead (server_segments.go)
			m.Segments, files = s.payloadGrant(false)
			c.sentRW = true
		}
		s.send(c, a.ReqID, m, files)
	case core.SubscriberCreated:
		m := &wire.SubscriberCreated{SubID: uint32(r.Sub), NotifierOffset: r.Notifier.Offset}
		var files []*os.File
		if !c.sentRO && s.mgmt != nil { // the owned model: data segments come with each connection
			m.Segments, files = s.payloadGrant(true)
			c.sentRO = true
		}
		s.send(c, a.ReqID, m, files)
	case core.Closed, core.Noted, core.Watching:
		s.send(c, a.ReqID, &wire.Ack{}, nil)
	case core.PoolsGranted:
		s.grantPools(c, a.ReqID, r) // server_growth.go
	case core.DataSegmentGranted:
		s.replyDataSeg(c, a.ReqID, r) // server_grow.go
	case core.Resumed:
		c.client = r.Client
		s.send(c, a.ReqID, &wire.Resumed{ClientID: uint16(r.Client)}, nil)
	}
}

// payloadGrant describes every payload segment with the fd to send:
// read-write for publishers, the read-only reopened fd for subscribers.
func (s *Server) payloadGrant(readOnly bool) ([]wire.SegmentDesc, []*os.File) {
	descs := make([]wire.SegmentDesc, 0, len(s.payload))
	files := make([]*os.File, 0, len(s.payload))
	for i, seg := range s.payload {
		kind := wire.KindMemfd
		if seg.PageSize() > os.Getpagesize() {
			kind = wire.KindHugetlb
		}
		descs = append(descs, wire.SegmentDesc{ID: uint32(i + 1), Role: wire.RolePayload, Kind: kind, Size: uint64(seg.Len()),
			PageSize: uint32(seg.PageSize()), ReadOnly: readOnly, PoolID: s.layout.Pools[i].ID})
		if readOnly {
			files = append(files, s.roFiles[i])
		} else {
			files = append(files, seg.File())
		}
	}
	return descs, files
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

// drainRing releases the refs still queued in a ring whose connection is
// gone (every side released it or died, or the quarantine ended: nobody
// pops it any more): at most its capacity, stopping at corrupt indices.
func (s *Server) drainRing(r core.Region) (n int) {
	ring, err := ringbuf.Attach(s.region(r))
	if err != nil {
		s.log.Error("attach ring to drain it", "region", r.String(), "err", err)
		return 0
	}
	return s.drainBounded(ring, "ring", r) // server_ringcheck.go
}

func (s *Server) releaseReclaimed(ref parallax.ChunkRef, where string) {
	if _, err := s.pools.Release(ref); err != nil {
		s.log.Warn("reclaim: bad ref", "where", where, "ref", ref.String(), "err", err)
		return
	}
	s.stats.reclaimed.Add(1)
}

// reclaim returns what a dead client held: refs queued in the rings it was
// the consumer of (drained now: nobody else pops them), and its notifier's
// waiters are woken so nothing waits on a dead peer.
func (s *Server) reclaim(a core.ReclaimClient) {
	if a.PID != 0 { // 0: an adopted client that never resumed (never counted)
		s.stats.clients.Add(-1)
	}
	before := s.stats.reclaimed.Load()
	defer func() {
		r := Reclaim{PID: a.PID, Chunks: int(s.stats.reclaimed.Load() - before), Exited: s.mon.exited[a.PID], Done: time.Now()}
		if !r.Exited.IsZero() && a.PID != 0 {
			s.metricsState().reclaim.Observe(max(r.Done.Sub(r.Exited), 0).Seconds())
		}
		if s.opts.OnReclaim != nil {
			s.opts.OnReclaim(r)
		}
	}()
	if s.mgmt == nil {
		// Owned model: the router holds nothing of a client's; its
		// publishers' peers take back what they delivered (death.go).
		return
	}
	s.needSweep = true
	holds, err := mempool.AttachHoldTable(s.holdRegion(a.Client))
	if err != nil {
		s.log.Error("reclaim: attach hold table", "client", a.Client, "err", err)
		holds = nil
	}
	for _, r := range a.SubRings {
		ring, err := ringbuf.Attach(s.region(r))
		if err != nil {
			s.log.Error("reclaim: attach ring", "region", r.String(), "err", err)
			continue
		}
		_ = ring.Close() // a publisher blocked on it returns
		// A pop that the dead consumer had claimed but not yet recorded
		// in its hold table: the ring's pop intent tells.
		if ref, popped := ring.PendingPop(); popped && !ref.IsNil() && (holds == nil || !holds.Contains(ref)) {
			s.releaseReclaimed(ref, "pending pop")
		}
		s.drainRing(r)
	}
	for _, r := range a.PubRings {
		if ring, err := ringbuf.Attach(s.region(r)); err == nil {
			_ = ring.Close()
		}
	}
	// Everything the process recorded as held: loans, history, samples.
	var held int
	if holds != nil {
		for _, ref := range holds.Refs() {
			s.releaseReclaimed(ref, "hold")
			held++
		}
		holds.Clear()
	}
	for _, r := range a.Notifiers {
		if n, err := ringbuf.AttachNotifier(s.region(r)); err == nil {
			_ = n.Close()
		}
	}
	s.log.Info("reclaimed client", "client", a.Client, "pid", a.PID, slog.Int("sub_rings", len(a.SubRings)), slog.Int("pub_rings", len(a.PubRings)), slog.Int("holds", held))
}
