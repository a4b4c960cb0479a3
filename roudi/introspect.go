package roudi

import (
	"context"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/roudi/procmon"
)

// rateInterval is how often the server samples the rings' counters to
// update rates (and, between introspection requests, the totals).
const rateInterval = time.Second

// observer holds the router's introspection state: per-connection counters
// derived from the rings in the management segment (pushes from the tail
// position, pops from the head word's pop count, drops from the ring's
// dropped word), per-topic totals, rates, reclaim and monitor counters.
//
// The zero value is ready to use (maps are made lazily). It is owned by the
// Serve goroutine: every method runs there, except the metrics fields, which
// are safe for concurrent use.
type observer struct {
	start    time.Time
	lastRate time.Time

	conns  map[core.ConnectionID]*connCounters
	byRing map[uint64]core.ConnectionID // ring offset -> connection, until FreeRegion
	topics map[string]*topicCounters

	reclaims      uint64
	monitorEvents map[string]uint64

	components componentReports            // latest component counter reports (server_counters.go)
	pubMem     map[core.PubID]pubMemReport // latest publisher memory reports (server_memory.go)

	metricsOnce sync.Once
	metrics     *metrics // set by metricsState; safe for concurrent use
}

type connCounters struct {
	id       core.ConnectionID
	topic    string
	pub      core.PubID
	ring     *ringbuf.Ring
	notifier *ringbuf.Notifier // the subscriber's; nil if unknown

	lastTail, lastPops uint32
	lastDropped        uint64

	pushed, popped, dropped uint64
	ratePushed, ratePopped  uint64 // values at the last rate sample
	pushRate, popRate       float64
	retired                 bool // left the registry; counted until FreeRegion
}

type topicCounters struct {
	published, delivered, dropped uint64
	ratePub, rateDel, rateDrop    uint64
	pubRate, delRate, dropRate    float64
}

func (o *observer) init(now time.Time) {
	if o.conns != nil {
		return
	}
	o.start, o.lastRate = now, now
	o.conns = map[core.ConnectionID]*connCounters{}
	o.byRing = map[uint64]core.ConnectionID{}
	o.topics = map[string]*topicCounters{}
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

// observeAction keeps the counters in step with the core's actions. It runs
// before the action is executed, so a ring is sampled one last time before
// FreeRegion drains it and before a reclaim drains a dead consumer's rings
// (those pops are not deliveries).
func (s *Server) observeAction(a core.Action) {
	o := &s.obs
	o.init(time.Now())
	switch a := a.(type) {
	case core.ConnectionAdded:
		c := o.conn(s, a.Connection, a.Ring)
		if c != nil && c.notifier == nil {
			c.notifier, _ = ringbuf.AttachNotifier(s.region(a.Notifier))
		}
	case core.FreeRegion:
		if a.Kind == core.RegionRing {
			o.retireRing(a.Region.Offset)
		}
	case core.ReclaimClient:
		o.reclaims++
		for _, r := range a.SubRings {
			o.retireRing(r.Offset)
		}
	}
}

// conn returns the counters of a connection, creating them (and attaching
// its ring) on first sight.
func (o *observer) conn(s *Server, id core.ConnectionID, ring core.Region) *connCounters {
	if c := o.conns[id]; c != nil {
		return c
	}
	r, err := ringbuf.Attach(s.region(ring))
	if err != nil {
		return nil // not formatted (yet): nothing to count
	}
	c := &connCounters{id: id, ring: r}
	o.conns[id] = c
	o.byRing[ring.Offset] = id
	return c
}

// retireRing samples a ring a last time and forgets it.
func (o *observer) retireRing(off uint64) {
	id, ok := o.byRing[off]
	if !ok {
		return
	}
	delete(o.byRing, off)
	if c := o.conns[id]; c != nil {
		o.sampleConn(c, nil)
		delete(o.conns, id)
	}
}

// sampleConn adds the ring's progress since the last sample to c and to its
// topic. pubMax collects, per publisher, the largest push delta among its
// connections (a publish is pushed once into every ring of the publisher);
// nil adds the connection's push delta to the topic directly.
func (o *observer) sampleConn(c *connCounters, pubMax map[core.PubID]uint64) {
	if c.topic == "" {
		return // not in a snapshot yet: leave the progress for the first sample that names the topic
	}
	tail := c.ring.Tail()
	pops := c.ring.Head().Pops()
	dropped := c.ring.Dropped()
	dPush := uint64(tail - c.lastTail) // free-running uint32 positions
	dPop := uint64(pops - c.lastPops)
	dDrop := dropped - c.lastDropped
	c.lastTail, c.lastPops, c.lastDropped = tail, pops, dropped
	c.pushed += dPush
	c.popped += dPop
	c.dropped += dDrop
	t := o.topics[c.topic]
	if t == nil {
		return
	}
	t.delivered += dPop
	t.dropped += dDrop
	if pubMax == nil {
		t.published += dPush
	} else if dPush > pubMax[c.pub] {
		pubMax[c.pub] = dPush
	}
}

// sample brings every counter up to date with snap and, once per
// rateInterval, recomputes the rates.
func (s *Server) sample(snap *core.Snapshot, now time.Time) {
	o := &s.obs
	o.init(now)
	live := make(map[core.ConnectionID]bool, len(snap.Connections))
	topicOf := make(map[core.PubID]string, len(snap.Connections))
	for _, t := range snap.Topics {
		if o.topics[t.Name] == nil {
			o.topics[t.Name] = &topicCounters{}
		}
	}
	for name := range o.topics {
		if !hasTopic(snap, name) {
			delete(o.topics, name)
		}
	}
	pubMax := map[core.PubID]uint64{}
	for _, ci := range snap.Connections {
		live[ci.ID] = true
		c := o.conn(s, ci.ID, ci.Ring)
		if c == nil {
			continue
		}
		c.topic, c.pub = ci.Topic, ci.Pub
		topicOf[ci.Pub] = ci.Topic
		o.sampleConn(c, pubMax)
	}
	for id, c := range o.conns {
		if !live[id] {
			c.retired = true
			o.sampleConn(c, pubMax)
		}
	}
	for pub, d := range pubMax {
		if t := o.topics[topicOf[pub]]; t != nil {
			t.published += d
		}
	}
	dt := now.Sub(o.lastRate).Seconds()
	if dt < rateInterval.Seconds()/2 {
		return
	}
	o.lastRate = now
	for _, c := range o.conns {
		c.pushRate, c.ratePushed = rate(c.pushed, c.ratePushed, dt)
		c.popRate, c.ratePopped = rate(c.popped, c.ratePopped, dt)
	}
	for _, t := range o.topics {
		t.pubRate, t.ratePub = rate(t.published, t.ratePub, dt)
		t.delRate, t.rateDel = rate(t.delivered, t.rateDel, dt)
		t.dropRate, t.rateDrop = rate(t.dropped, t.rateDrop, dt)
	}
}

func hasTopic(snap *core.Snapshot, name string) bool {
	for _, t := range snap.Topics {
		if t.Name == name {
			return true
		}
	}
	return false
}

func rate(now, then uint64, dt float64) (float64, uint64) {
	if dt <= 0 || now < then {
		return 0, now
	}
	r := float64(now-then) / dt
	if math.IsNaN(r) || math.IsInf(r, 0) {
		r = 0
	}
	return r, now
}

// observeTick runs on every core tick and samples once per rateInterval.
func (s *Server) observeTick(now time.Time) {
	s.obs.init(now)
	if now.Sub(s.obs.lastRate) < rateInterval {
		return
	}
	snap := s.core.Snapshot()
	s.sample(&snap, now)
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
	s.sample(&snap, now)
	o := &s.obs
	in := &wireIntrospection{MonitorEvents: make(map[string]uint64, len(o.monitorEvents))}
	for k, v := range o.monitorEvents {
		in.MonitorEvents[k] = v
	}
	in.Router = wire.RouterInfo{
		Version: parallax.Version, PID: int32(os.Getpid()), Domain: s.cfg.Domain, Socket: s.path,
		UptimeMs: uint64(now.Sub(o.start).Milliseconds()), Monitor: s.monitorName(),
		Processes: uint32(len(snap.Clients)), Topics: uint32(len(snap.Topics)), Connections: uint32(len(snap.Connections)),
		Reclaims: o.reclaims, Reclaimed: s.stats.reclaimed.Load(), ArenaUsed: snap.Arena.UsedBytes, ArenaSize: snap.Arena.Size,
	}
	pids := make(map[core.ClientID]int32, len(snap.Clients))
	for _, c := range snap.Clients {
		pids[c.ID] = c.PID
		in.Processes = append(in.Processes, wire.ProcessStat{
			ClientID: uint16(c.ID), PID: c.PID, UID: c.UID, GID: c.GID, Name: clip(c.Name, wire.MaxNameLen),
			Monitor: s.monitorName(), Publishers: uint32(len(c.Publishers)), Subscribers: uint32(len(c.Subscribers)),
		})
	}
	depth := map[string]uint64{}
	capacity := map[string]uint64{}
	for _, ci := range snap.Connections {
		cs := wire.ConnStat{
			ConnID: uint32(ci.ID), Topic: ci.Topic, PubID: uint32(ci.Pub), SubID: uint32(ci.Sub),
			PubPID: pids[ci.PubClient], SubPID: pids[ci.SubClient], Capacity: uint32(ci.Capacity), Policy: uint8(ci.Policy),
		}
		if c := o.conns[ci.ID]; c != nil {
			cs.Depth = uint32(c.ring.Len())
			cs.Pushed, cs.Popped, cs.Dropped = c.pushed, c.popped, c.dropped
			cs.PushRate, cs.PopRate = c.pushRate, c.popRate
			if c.notifier != nil {
				cs.SubSleeps = c.notifier.Sleeping()
			}
		}
		depth[ci.Topic] += uint64(cs.Depth)
		capacity[ci.Topic] += uint64(ci.Capacity)
		in.Connections = append(in.Connections, cs)
	}
	for _, t := range snap.Topics {
		ts := wire.TopicStat{
			Name: t.Name, Type: wire.TypeInfo(t.Type), Publishers: uint32(len(t.Publishers)), Subscribers: uint32(len(t.Subscribers)),
			Connections: uint32(t.Connections), QueueDepth: depth[t.Name], QueueCapacity: capacity[t.Name],
		}
		if tc := o.topics[t.Name]; tc != nil {
			ts.Published, ts.Delivered, ts.Dropped = tc.published, tc.delivered, tc.dropped
			ts.PublishRate, ts.DeliverRate, ts.DropRate = tc.pubRate, tc.delRate, tc.dropRate
		}
		in.Topics = append(in.Topics, ts)
	}
	in.Pools = s.poolStats()
	in.PublisherSegments = s.publisherSegStats(now)
	in.Components = s.componentStats(now)
	return in
}

// poolStats reads the pools' shared statistics and their segments' backing.
func (s *Server) poolStats() []wire.PoolStat {
	if s.pools == nil {
		return nil // the owned model has no router-wide pools
	}
	stats := s.pools.Stats()
	out := make([]wire.PoolStat, 0, len(stats))
	for i, st := range stats {
		ps := wire.PoolStat{ID: st.ID, ChunkSize: st.ChunkSize, Count: st.Count, InUse: st.InUse, HighWater: st.HighWater,
			Loans: st.Loans, FailedLoans: st.FailedLoans, Segments: 1}
		if i < len(s.payload) {
			seg := s.payload[i]
			ps.PageSize = uint32(seg.PageSize())
			ps.Hugepages = seg.PageSize() > os.Getpagesize()
			ps.Fallback = clip(seg.FallbackReason(), wire.MaxTextLen/8)
		}
		out = append(out, ps)
	}
	return out
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
	case *wire.ListPools:
		items := s.poolStats()
		lo, hi, next := page(len(items), m.Offset)
		reply = &wire.PoolList{Pools: items[lo:hi], Next: next}
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
