package core

import (
	"fmt"
	"slices"
)

// checkInvariants verifies the registry and memory invariants that must
// hold after every Step.
func (r *Router) checkInvariants() error {
	if err := r.checkMemory(); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if len(r.clients) != len(r.conns) {
		return fmt.Errorf("%d clients but %d registered conns", len(r.clients), len(r.conns))
	}
	for id, c := range r.clients {
		if c.id != id || r.conns[c.conn] != c {
			return fmt.Errorf("client %d not indexed consistently", id)
		}
		if _, p := r.pending[c.conn]; p {
			return fmt.Errorf("client %d's conn is still pending", id)
		}
		for _, pid := range c.pubs {
			if p := r.pubs[pid]; p == nil || p.client != c {
				return fmt.Errorf("client %d lists publisher %d it does not own", id, pid)
			}
		}
		for _, sid := range c.subs {
			if s := r.subs[sid]; s == nil || s.client != c {
				return fmt.Errorf("client %d lists subscriber %d it does not own", id, sid)
			}
		}
	}
	for id, p := range r.pubs {
		if r.clients[p.client.id] != p.client || !slices.Contains(p.client.pubs, id) {
			return fmt.Errorf("publisher %d belongs to a dead or unaware client %d", id, p.client.id)
		}
		if r.topicOf(p.topic.kind, p.topic.name) != p.topic || !slices.Contains(p.topic.pubs, id) {
			return fmt.Errorf("publisher %d not on its topic %q", id, p.topic.name)
		}
		if n := len(p.links) + r.cutsOf(func(c cutPair) bool { return c.pub == id }); n != len(p.topic.subs) {
			return fmt.Errorf("publisher %d has %d connections (with cut ones), topic %q has %d subscribers", id, n, p.topic.name, len(p.topic.subs))
		}
	}
	for id, s := range r.subs {
		if r.clients[s.client.id] != s.client || !slices.Contains(s.client.subs, id) {
			return fmt.Errorf("subscriber %d belongs to a dead or unaware client %d", id, s.client.id)
		}
		if r.topicOf(s.topic.kind, s.topic.name) != s.topic || !slices.Contains(s.topic.subs, id) {
			return fmt.Errorf("subscriber %d not on its topic %q", id, s.topic.name)
		}
		if n := len(s.links) + r.cutsOf(func(c cutPair) bool { return c.sub == id }); n != len(s.topic.pubs) {
			return fmt.Errorf("subscriber %d has %d connections (with cut ones), topic %q has %d publishers", id, n, s.topic.name, len(s.topic.pubs))
		}
		if s.capacity < 2 || s.capacity&(s.capacity-1) != 0 {
			return fmt.Errorf("subscriber %d capacity %d is not a power of two", id, s.capacity)
		}
	}
	pairs := make(map[[2]uint32]bool)
	for id, l := range r.links {
		if l.id != id || r.pubs[l.pub.id] != l.pub || r.subs[l.sub.id] != l.sub {
			return fmt.Errorf("connection %d names a removed endpoint", id)
		}
		if l.pub.topic != l.sub.topic {
			return fmt.Errorf("connection %d joins topics %q and %q", id, l.pub.topic.name, l.sub.topic.name)
		}
		if !slices.Contains(l.pub.links, id) || !slices.Contains(l.sub.links, id) {
			return fmt.Errorf("connection %d not listed by its endpoints", id)
		}
		key := [2]uint32{uint32(l.pub.id), uint32(l.sub.id)}
		if pairs[key] {
			return fmt.Errorf("two connections for pub %d sub %d", l.pub.id, l.sub.id)
		}
		pairs[key] = true
	}
	for c := range r.cuts {
		p, s := r.pubs[c.pub], r.subs[c.sub]
		if p == nil || s == nil || p.topic != s.topic {
			return fmt.Errorf("cut pair pub %d sub %d names a removed endpoint or two topics", c.pub, c.sub)
		}
		if pairs[[2]uint32{uint32(c.pub), uint32(c.sub)}] {
			return fmt.Errorf("cut pair pub %d sub %d is connected", c.pub, c.sub)
		}
	}
	for id, pl := range r.pendingLinks {
		if pl.ID != id {
			return fmt.Errorf("pending connection %d recorded as %d", id, pl.ID)
		}
	}
	for name, t := range r.topics {
		if t.name != name || t.kind != KindTopic || len(t.pubs)+len(t.subs) == 0 {
			return fmt.Errorf("topic %q is empty, misnamed or of kind %d", name, t.kind)
		}
	}
	for k, t := range r.rpc {
		if t.name != k.name || t.kind != k.kind || k.kind == KindTopic || len(t.pubs)+len(t.subs) == 0 {
			return fmt.Errorf("service topic %q of kind %d is empty or misnamed", k.name, k.kind)
		}
	}
	l := r.cfg.Limits
	if len(r.clients) > l.MaxClients || len(r.topics)+len(r.rpc) > l.MaxTopics || len(r.pubs) > l.MaxPublishers ||
		len(r.subs) > l.MaxSubscribers || len(r.links) > l.MaxConnections {
		return fmt.Errorf("a limit is exceeded: clients %d topics %d pubs %d subs %d conns %d",
			len(r.clients), len(r.topics), len(r.pubs), len(r.subs), len(r.links))
	}
	return nil
}

// cutsOf counts the cut pairs matching pred.
func (r *Router) cutsOf(pred func(cutPair) bool) int {
	n := 0
	for c := range r.cuts {
		if pred(c) {
			n++
		}
	}
	return n
}
