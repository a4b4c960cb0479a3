package core

import (
	"fmt"
	"log/slog"
	"math/bits"
	"slices"
	"strings"

	"github.com/parallax-ipc/parallax"
)

func (r *Router) request(ev ClientRequest) {
	reply := func(res Result, err error) {
		r.emit(Reply{Conn: ev.Conn, ReqID: ev.ReqID, Result: res, Err: err})
	}
	c, ok := r.conns[ev.Conn]
	if !ok {
		reply(nil, fmt.Errorf("request %d: %w: no handshake on this connection", ev.ReqID, parallax.ErrProtocol))
		return
	}
	switch req := ev.Req.(type) {
	case CreatePublisher:
		r.createOwnedPublisher(c, ev, req, reply) // memory.go
	case CreateSubscriber:
		r.createSubscriber(c, req, reply)
	case ResumeClient:
		r.resume(c, req, reply)
	case ClosePublisher:
		p, ok := r.pubs[req.Pub]
		switch {
		case !ok:
			reply(nil, fmt.Errorf("close publisher %d: %w: no such publisher", req.Pub, parallax.ErrProtocol))
		case p.client != c:
			reply(nil, fmt.Errorf("close publisher %d: %w: owned by client %d", req.Pub, parallax.ErrPermissionDenied, p.client.id))
		default:
			for _, lid := range slices.Clone(p.links) {
				l := r.links[lid]
				r.unlink(l, true, false, "publisher closed", endClosed)
			}
			r.dropPublisher(p)
			reply(Closed{}, nil)
		}
	case CloseSubscriber:
		s, ok := r.subs[req.Sub]
		switch {
		case !ok:
			reply(nil, fmt.Errorf("close subscriber %d: %w: no such subscriber", req.Sub, parallax.ErrProtocol))
		case s.client != c:
			reply(nil, fmt.Errorf("close subscriber %d: %w: owned by client %d", req.Sub, parallax.ErrPermissionDenied, s.client.id))
		default:
			for _, lid := range slices.Clone(s.links) {
				r.unlink(r.links[lid], false, true, "subscriber closed", endClosed)
			}
			r.dropSubscriber(s)
			reply(Closed{}, nil)
		}
	case WatchServices:
		r.watchRequest(c, ev, reply) // watch.go
	case UnwatchServices:
		r.unwatchRequest(c, reply) // watch.go
	case GrowData, RetireData, GetDataSegment:
		r.dataRequest(c, ev, reply) // memory_grow.go
	case ReleaseConnection:
		// Idempotent: a connection already freed is acknowledged too; a
		// client that is not an endpoint of a recorded connection is
		// refused (death.go).
		if err := r.memRelease(c, req.Connection); err != nil {
			reply(nil, err)
			return
		}
		reply(Closed{}, nil)
	default:
		reply(nil, fmt.Errorf("request %d: %w: unknown request %T", ev.ReqID, parallax.ErrProtocol, ev.Req))
	}
}

// checkEndpoint applies the checks common to publishers and subscribers
// and returns the topic (nil when it does not exist yet).
func (r *Router) checkEndpoint(c *client, kind EndpointKind, name string, typ TypeInfo, history int, publish bool) (*topic, error) {
	if err := r.checkKind(kind, history); err != nil { // kind.go
		return nil, err
	}
	if name == "" || len(name) > maxTopicLen || strings.ContainsAny(name, "*\x00") {
		return nil, fmt.Errorf("%w: topic name %q must be 1 to %d bytes without '*' or NUL", parallax.ErrProtocol, name, maxTopicLen)
	}
	if typ.Align != 0 && bits.OnesCount32(typ.Align) != 1 {
		return nil, fmt.Errorf("%w: type %v: alignment must be a power of two", parallax.ErrProtocol, typ)
	}
	if maxMsg := r.cfg.Limits.MaxMessageSize; maxMsg != 0 && uint64(typ.Size) > maxMsg {
		return nil, fmt.Errorf("%w: type %v is larger than the %d-byte message size limit", parallax.ErrLimit, typ, maxMsg)
	}
	if history < 0 {
		return nil, fmt.Errorf("%w: negative history %d", parallax.ErrProtocol, history)
	}
	if history > r.cfg.Limits.MaxHistory {
		return nil, fmt.Errorf("%w: history %d exceeds limits.max_history %d", parallax.ErrLimit, history, r.cfg.Limits.MaxHistory)
	}
	if side, verb := accessSide(kind, publish); !r.allowed(name, c.uid, c.gid, side) {
		return nil, fmt.Errorf("%w: uid %d gid %d may not %s %q", parallax.ErrPermissionDenied, c.uid, c.gid, verb, name)
	}
	t := r.topicOf(kind, name)
	if t != nil && t.typ != typ {
		return nil, fmt.Errorf("%w: topic %q carries %v, request has %v", parallax.ErrIncompatibleType, name, t.typ, typ)
	}
	if t == nil && len(r.topics)+len(r.rpc) >= r.cfg.Limits.MaxTopics {
		return nil, fmt.Errorf("%w: %d topics (limits.max_topics)", parallax.ErrLimit, len(r.topics)+len(r.rpc))
	}
	return t, nil
}

// checkConnections refuses n new connections beyond
// limits.max_connections. Each connection lives in its own segment
// (memory.go).
func (r *Router) checkConnections(n int) error {
	if len(r.links)+n > r.cfg.Limits.MaxConnections {
		return fmt.Errorf("%w: %d connections plus %d new exceed limits.max_connections %d",
			parallax.ErrLimit, len(r.links), n, r.cfg.Limits.MaxConnections)
	}
	return nil
}

// createPublisher registers a publisher. m is its memory, whose first
// data segment exists, and its id; it returns nil when the request
// failed.
func (r *Router) createPublisher(c *client, req CreatePublisher, reply func(Result, error), m *pubMem) *publisher {
	fail := func(err error) {
		reply(nil, fmt.Errorf("create publisher on %q: %w", req.Topic, err))
	}
	t, err := r.checkEndpoint(c, req.Kind, req.Topic, req.Type, req.History, true)
	if err != nil {
		fail(err)
		return nil
	}
	if len(r.pubs) >= r.cfg.Limits.MaxPublishers {
		fail(fmt.Errorf("%w: %d publishers (limits.max_publishers)", parallax.ErrLimit, len(r.pubs)))
		return nil
	}
	var subs []*subscriber
	if t != nil {
		for _, id := range t.subs {
			subs = append(subs, r.subs[id])
		}
	}
	if err := r.checkConnections(len(subs)); err != nil {
		fail(err)
		return nil
	}
	if t == nil {
		t = r.addTopic(req.Kind, req.Topic, req.Type)
	}
	p := &publisher{id: m.id, client: c, topic: t, history: req.History} // id reserved when its segment was asked for
	r.pubs[p.id] = p
	c.pubs = append(c.pubs, p.id)
	t.pubs = append(t.pubs, p.id)
	links := make([]*connection, len(subs))
	for i, s := range subs {
		links[i] = r.link(p, s)
	}
	r.memPublisherAdded(p, m)
	reply(PublisherCreated{Pub: p.id, History: p.history}, nil)
	for _, l := range links {
		r.announce(l)
	}
	r.memLinks(links)
	r.log(slog.LevelDebug, "publisher created", slog.Int("pub", int(p.id)), slog.String("topic", t.name), slog.Int("client", int(c.id)))
	return p
}

func (r *Router) createSubscriber(c *client, req CreateSubscriber, reply func(Result, error)) {
	fail := func(err error) {
		reply(nil, fmt.Errorf("create subscriber on %q: %w", req.Topic, err))
	}
	t, err := r.checkEndpoint(c, req.Kind, req.Topic, req.Type, req.History, false)
	if err == nil {
		err = r.checkPair(c, req) // kind.go
	}
	if err != nil {
		fail(err)
		return
	}
	if req.Policy != DiscardOldest && req.Policy != BlockProducer {
		fail(fmt.Errorf("%w: unknown queue policy %d", parallax.ErrProtocol, req.Policy))
		return
	}
	capacity := req.QueueCapacity
	switch {
	case capacity < 0:
		fail(fmt.Errorf("%w: negative queue capacity %d", parallax.ErrProtocol, capacity))
		return
	case capacity == 0:
		capacity = r.cfg.Rings.DefaultCapacity
	case capacity > 1<<30:
		fail(fmt.Errorf("%w: queue capacity %d too large", parallax.ErrLimit, capacity))
		return
	default:
		capacity = max(2, 1<<bits.Len(uint(capacity-1)))
	}
	if maxCap := min(r.cfg.Rings.MaxCapacity, r.cfg.Limits.MaxQueueCapacity); capacity > maxCap {
		fail(fmt.Errorf("%w: queue capacity %d exceeds %d (rings.max_capacity, limits.max_queue_capacity)", parallax.ErrLimit, capacity, maxCap))
		return
	}
	if len(r.subs) >= r.cfg.Limits.MaxSubscribers {
		fail(fmt.Errorf("%w: %d subscribers (limits.max_subscribers)", parallax.ErrLimit, len(r.subs)))
		return
	}
	var pubs []*publisher
	if t != nil {
		for _, id := range t.pubs {
			pubs = append(pubs, r.pubs[id])
		}
	}
	// A subscriber's wake words are in its connection segments.
	err = r.checkConnections(len(pubs))
	if err == nil && req.MaxHeld < 0 {
		err = fmt.Errorf("%w: negative max held %d", parallax.ErrProtocol, req.MaxHeld)
	}
	if err == nil {
		err = r.memCheckSubscriber(pubs, capacity, req.MaxHeld) // memory.go
	}
	if err != nil {
		fail(err)
		return
	}
	if t == nil {
		t = r.addTopic(req.Kind, req.Topic, req.Type)
	}
	r.nextSub++
	s := &subscriber{id: r.nextSub, pair: req.Pair, client: c, topic: t, capacity: capacity, history: req.History, policy: req.Policy, maxHeld: req.MaxHeld}
	r.subs[s.id] = s
	c.subs = append(c.subs, s.id)
	t.subs = append(t.subs, s.id)
	links := make([]*connection, len(pubs))
	for i, p := range pubs {
		links[i] = r.link(p, s)
	}
	reply(SubscriberCreated{Sub: s.id, Capacity: capacity}, nil)
	for _, l := range links {
		r.announce(l)
	}
	r.memLinks(links)
	r.log(slog.LevelDebug, "subscriber created", slog.Int("sub", int(s.id)), slog.String("topic", t.name), slog.Int("client", int(c.id)))
}

func (r *Router) link(p *publisher, s *subscriber) *connection {
	r.nextLink++
	l := &connection{id: r.nextLink, pub: p, sub: s}
	r.links[l.id] = l
	p.links = append(p.links, l.id)
	s.links = append(s.links, l.id)
	return l
}

// announce emits ConnectionAdded to the subscriber's client, then to the
// publisher's; once when one client owns both ends.
func (r *Router) announce(l *connection) {
	a := ConnectionAdded{
		Connection: l.id, Pub: l.pub.id, Sub: l.sub.id,
		Capacity: l.sub.capacity, Policy: l.sub.policy,
		History: min(l.pub.history, l.sub.history), Pair: l.sub.pair,
	}
	a.Conn = l.sub.client.conn
	r.emit(a)
	if l.pub.client != l.sub.client {
		a.Conn = l.pub.client.conn
		r.emit(a)
	}
}

// allowed applies the most specific access rule matching topic.
func (r *Router) allowed(topic string, uid, gid uint32, publish bool) bool {
	var best *AccessRule
	bestLen := -1
	for i := range r.cfg.Access {
		rule := &r.cfg.Access[i]
		if rule.Topic == topic {
			best = rule
			break
		}
		if prefix, ok := strings.CutSuffix(rule.Topic, "*"); ok && strings.HasPrefix(topic, prefix) && len(prefix) > bestLen {
			best, bestLen = rule, len(prefix)
		}
	}
	if best == nil {
		return true
	}
	uids, gids := best.SubscribeUIDs, best.SubscribeGIDs
	if publish {
		uids, gids = best.PublishUIDs, best.PublishGIDs
	}
	if len(uids) == 0 && len(gids) == 0 {
		return true
	}
	return slices.Contains(uids, uid) || slices.Contains(gids, gid)
}
