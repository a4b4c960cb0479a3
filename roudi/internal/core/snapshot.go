package core

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A Snapshot is a copy of the router's registry for introspection (the
// CLI's inspect, topics and top commands). Slices are sorted by ID or name.
// It shares nothing with the Router.
type Snapshot struct {
	Tick        uint64
	Clients     []ClientInfo
	Topics      []TopicInfo
	Connections []ConnectionInfo
	Pending     int // accepted connections without handshake
}

// ClientInfo describes one registered client.
type ClientInfo struct {
	ID          ClientID
	Conn        ConnID
	PID         int32
	UID, GID    uint32
	Name        string
	Publishers  []PubID
	Subscribers []SubID
	Watches     int // service watches open (WatchServices not unwatched)
}

// TopicInfo describes one topic.
type TopicInfo struct {
	Name        string
	Type        TypeInfo
	Publishers  []PubID
	Subscribers []SubID
	Connections int
}

// ConnectionInfo describes one publisher–subscriber connection.
type ConnectionInfo struct {
	ID        ConnectionID
	Topic     string
	Pub       PubID
	Sub       SubID
	PubClient ClientID
	SubClient ClientID
	Capacity  int
	Policy    Policy
}

// Snapshot returns a copy of the registry.
func (r *Router) Snapshot() Snapshot {
	s := Snapshot{Tick: r.now, Pending: len(r.pending)}
	for _, id := range slices.Sorted(maps.Keys(r.clients)) {
		c := r.clients[id]
		s.Clients = append(s.Clients, ClientInfo{
			ID: c.id, Conn: c.conn, PID: c.pid, UID: c.uid, GID: c.gid, Name: c.name,
			Publishers: slices.Clone(c.pubs), Subscribers: slices.Clone(c.subs), Watches: r.watches(c),
		})
	}
	for _, name := range slices.Sorted(maps.Keys(r.topics)) {
		t := r.topics[name]
		n := 0
		for _, id := range t.pubs {
			n += len(r.pubs[id].links)
		}
		s.Topics = append(s.Topics, TopicInfo{
			Name: name, Type: t.typ, Publishers: slices.Clone(t.pubs), Subscribers: slices.Clone(t.subs), Connections: n,
		})
	}
	for _, id := range slices.Sorted(maps.Keys(r.links)) {
		ci, _ := r.Connection(id)
		s.Connections = append(s.Connections, ci)
	}
	return s
}

// String formats s on several lines, deterministically.
func (s Snapshot) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tick %d pending=%d\n", s.Tick, s.Pending)
	for _, c := range s.Clients {
		fmt.Fprintf(&b, "client %d %v pid=%d uid=%d gid=%d name=%q pubs=%v subs=%v\n",
			c.ID, c.Conn, c.PID, c.UID, c.GID, c.Name, c.Publishers, c.Subscribers)
	}
	for _, t := range s.Topics {
		fmt.Fprintf(&b, "topic %q type=%v pubs=%v subs=%v conns=%d\n", t.Name, t.Type, t.Publishers, t.Subscribers, t.Connections)
	}
	for _, c := range s.Connections {
		fmt.Fprintf(&b, "conn %d topic=%q pub=%d(client %d) sub=%d(client %d) cap=%d policy=%v\n",
			c.ID, c.Topic, c.Pub, c.PubClient, c.Sub, c.SubClient, c.Capacity, c.Policy)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Connection returns what the registry knows of one connection, without
// copying the rest of it; false if there is no such connection. The server
// uses it to find the ring a report names before reading it.
func (r *Router) Connection(id ConnectionID) (ConnectionInfo, bool) {
	l, ok := r.links[id]
	if !ok {
		return ConnectionInfo{}, false
	}
	return ConnectionInfo{
		ID: id, Topic: l.pub.topic.name, Pub: l.pub.id, Sub: l.sub.id,
		PubClient: l.pub.client.id, SubClient: l.sub.client.id,
		Capacity: l.sub.capacity, Policy: l.sub.policy,
	}, true
}
