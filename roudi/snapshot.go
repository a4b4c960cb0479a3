package roudi

import (
	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// A Snapshot is a copy of the router's registry: its clients, topics,
// endpoints and connections, its pending handshakes and the core's tick. It shares nothing with the server. [Introspection] adds the
// shared-memory counters; a Snapshot is the registry alone, cheaper and
// exact (tests wait on it).
type Snapshot struct {
	// Tick is the router core's logical clock (it advances with real time
	// while the router serves).
	Tick        uint64
	Clients     []ClientInfo     // sorted by id
	Topics      []TopicInfo      // sorted by name
	Connections []ConnectionInfo // sorted by id
	Pending     int              // accepted connections without handshake
}

// ClientInfo describes one registered client process.
type ClientInfo struct {
	ID          uint16
	PID         int32
	UID, GID    uint32
	Name        string
	Publishers  []uint32 // publisher ids
	Subscribers []uint32 // subscriber ids
	// Watches counts the client's open service watches (services.Watcher
	// instances of the process, which share its control connection).
	Watches int
}

// TopicInfo describes one topic of the registry.
type TopicInfo struct {
	Name        string
	Type        TypeInfo
	Publishers  []uint32
	Subscribers []uint32
	Connections int
}

// ConnectionInfo describes one publisher–subscriber connection (one
// connection segment).
type ConnectionInfo struct {
	ID                   uint32
	Topic                string
	Pub, Sub             uint32 // publisher and subscriber ids
	PubClient, SubClient uint16 // their client ids
	Capacity             int
	Policy               parallax.Policy
}

// publicSnapshot converts the core's snapshot.
func publicSnapshot(c core.Snapshot) Snapshot {
	s := Snapshot{Tick: c.Tick, Pending: c.Pending}
	for _, cl := range c.Clients {
		s.Clients = append(s.Clients, ClientInfo{ID: uint16(cl.ID), PID: cl.PID, UID: cl.UID, GID: cl.GID, Name: cl.Name,
			Publishers: ids(cl.Publishers), Subscribers: ids(cl.Subscribers), Watches: cl.Watches})
	}
	for _, t := range c.Topics {
		s.Topics = append(s.Topics, TopicInfo{Name: t.Name, Type: TypeInfo(t.Type), Publishers: ids(t.Publishers),
			Subscribers: ids(t.Subscribers), Connections: t.Connections})
	}
	for _, cn := range c.Connections {
		s.Connections = append(s.Connections, ConnectionInfo{ID: uint32(cn.ID), Topic: cn.Topic, Pub: uint32(cn.Pub), Sub: uint32(cn.Sub),
			PubClient: uint16(cn.PubClient), SubClient: uint16(cn.SubClient),
			Capacity: cn.Capacity, Policy: parallax.Policy(cn.Policy)})
	}
	return s
}

func ids[T ~uint32](in []T) []uint32 {
	if in == nil {
		return nil
	}
	out := make([]uint32, len(in))
	for i, v := range in {
		out[i] = uint32(v)
	}
	return out
}
