package roudi

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/procmon"
)

// observer holds the router's introspection state: reclaim and monitor
// counters, the components' and publishers' latest reports.
//
// The zero value is ready to use (maps are made lazily). It is owned by the
// Serve goroutine: every method runs there, except the metrics fields, which
// are safe for concurrent use.
type observer struct {
	start time.Time

	reclaims      uint64
	monitorEvents map[string]uint64

	components componentReports            // latest component counter reports (server_counters.go)
	pubMem     map[core.PubID]pubMemReport // latest publisher memory reports (server_memory.go)
	// connTraffic holds the latest traffic reports of live connections
	// (server_conntraffic.go).
	connTraffic map[core.ConnectionID]connTrafficReport
	// connTrafficPruneAt is the size of connTraffic that triggers the next
	// prune of ended connections (server_conntraffic.go).
	connTrafficPruneAt int
	departed           map[string]*topicCounters // by topic: last reports of publishers gone (server_topiccounters.go)

	metricsOnce sync.Once
	metrics     *metrics // set by metricsState; safe for concurrent use
}

func (o *observer) init(now time.Time) {
	if o.monitorEvents != nil {
		return
	}
	o.start = now
	o.monitorEvents = map[string]uint64{}
}

// monitorName names the process-exit detection in use: the process
// monitor's kind ("ebpf" or "pidfd"), or "socket" when exits are only seen
// as control-socket EOF.
func (s *Server) monitorName() string {
	if k := s.MonitorKind(); k != procmon.KindNone {
		return k
	}
	return "socket"
}

// observeEvent counts what the monitors report; it runs before the core
// sees ev.
func (s *Server) observeEvent(ev core.Event) {
	s.obs.init(time.Now())
	switch ev.(type) {
	case core.ClientDisconnected:
		s.obs.monitorEvents["socket"]++
	case core.ProcessExited:
		s.obs.monitorEvents["process-exit"]++
	}
}

// observeAction counts the core's reclaims.
func (s *Server) observeAction(a core.Action) {
	o := &s.obs
	o.init(time.Now())
	if _, ok := a.(core.ReclaimClient); ok {
		o.reclaims++
	}
}

// Introspect returns an [Introspection] of the running server. It is safe to
// call from any goroutine while Serve runs; it fails with ctx's error if
// Serve does not answer in time.
func (s *Server) Introspect(ctx context.Context) (*Introspection, error) {
	reply := make(chan *Introspection, 1)
	fn := func() { reply <- s.introspection().public() }
	select {
	case s.events <- evFunc{fn: fn}:
	case <-ctx.Done():
		return nil, fmt.Errorf("introspect: %w", ctx.Err())
	}
	select {
	case in := <-reply:
		return in, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("introspect: %w", ctx.Err())
	}
}

// introspection builds the wire form of an Introspection on the Serve
// goroutine.
func (s *Server) introspection() *wireIntrospection {
	now := time.Now()
	snap := s.core.Snapshot()
	o := &s.obs
	o.init(now)
	in := &wireIntrospection{MonitorEvents: make(map[string]uint64, len(o.monitorEvents))}
	for k, v := range o.monitorEvents {
		in.MonitorEvents[k] = v
	}
	in.Router = wire.RouterInfo{
		Version: parallax.Version, PID: int32(os.Getpid()), Domain: s.cfg.Domain, Socket: s.path,
		UptimeMs: uint64(now.Sub(o.start).Milliseconds()), Monitor: s.monitorName(),
		Processes: uint32(len(snap.Clients)), Topics: uint32(len(snap.Topics)), Connections: uint32(len(snap.Connections)),
		Reclaims: o.reclaims,
	}
	pids := make(map[core.ClientID]int32, len(snap.Clients))
	for _, c := range snap.Clients {
		pids[c.ID] = c.PID
		in.Processes = append(in.Processes, wire.ProcessStat{
			ClientID: uint16(c.ID), PID: c.PID, UID: c.UID, GID: c.GID, Name: clip(c.Name, wire.MaxNameLen),
			Monitor: s.monitorName(), Publishers: uint32(len(c.Publishers)), Subscribers: uint32(len(c.Subscribers)),
		})
	}
	// A connection's traffic is what its publisher reported
	// (server_conntraffic.go): the rings are the clients' own memory,
	// which the router never reads.
	s.pruneConnTraffic()
	capacity := map[string]uint64{}
	for _, ci := range snap.Connections {
		cs := wire.ConnStat{
			ConnID: uint32(ci.ID), Topic: ci.Topic, PubID: uint32(ci.Pub), SubID: uint32(ci.Sub),
			PubPID: pids[ci.PubClient], SubPID: pids[ci.SubClient], Capacity: uint32(ci.Capacity), Policy: uint8(ci.Policy),
		}
		s.connTrafficStat(&cs, now)
		capacity[ci.Topic] += uint64(ci.Capacity)
		in.Connections = append(in.Connections, cs)
	}
	counters := s.topicCounters(snap)
	for _, t := range snap.Topics {
		tc := counters[t.Name]
		ts := wire.TopicStat{
			Name: t.Name, Type: wire.TypeInfo(t.Type), Publishers: uint32(len(t.Publishers)), Subscribers: uint32(len(t.Subscribers)),
			Connections: uint32(t.Connections), Published: tc.published, Delivered: tc.delivered, Dropped: tc.dropped,
			QueueCapacity: capacity[t.Name],
		}
		in.Topics = append(in.Topics, ts)
	}
	in.PublisherSegments = s.publisherSegStats(now)
	in.Components = s.componentStats(now)
	return in
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// introspect answers an introspection request on the Serve goroutine. It
// reports false for any other request.
func (s *Server) introspect(c *serverConn, env wire.Envelope) bool {
	var reply wire.Message
	switch m := env.Msg.(type) {
	case *wire.GetRouterInfo:
		in := s.introspection()
		reply = &in.Router
	case *wire.ListProcesses:
		items := s.introspection().Processes
		lo, hi, next := page(len(items), m.Offset)
		reply = &wire.ProcessList{Processes: items[lo:hi], Next: next}
	case *wire.ListTopics:
		items := s.introspection().Topics
		lo, hi, next := page(len(items), m.Offset)
		reply = &wire.TopicList{Topics: items[lo:hi], Next: next}
	case *wire.ListConnections:
		items := s.introspection().Connections
		lo, hi, next := page(len(items), m.Offset)
		reply = &wire.ConnectionList{Connections: items[lo:hi], Next: next}
	case *wire.ListPublisherSegments:
		items := s.publisherSegStats(time.Now())
		lo, hi, next := page(len(items), m.Offset)
		reply = &wire.PublisherSegmentList{Segments: items[lo:hi], Next: next}
	case *wire.ListComponents:
		items := s.componentStats(time.Now())
		lo, hi, next := pageOf(len(items), m.Offset, wire.MaxComponentPage)
		reply = &wire.ComponentList{Components: items[lo:hi], Next: next}
	default:
		return false
	}
	s.send(c, env.ReqID, reply, nil)
	return true
}

// page returns the bounds of the page starting at off and the offset of
// the next one (0 at the end).
func page(n int, off uint32) (lo, hi int, next uint32) {
	return pageOf(n, off, wire.MaxIntrospectPage)
}

// pageOf is page with a page size of size entries.
func pageOf(n int, off uint32, size int) (lo, hi int, next uint32) {
	lo = min(int(off), n)
	hi = min(lo+size, n)
	if hi < n {
		next = uint32(hi)
	}
	return lo, hi, next
}

// evFunc runs fn on the Serve goroutine.
type evFunc struct{ fn func() }

func (evFunc) isServerEvent() {}
