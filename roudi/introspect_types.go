package roudi

import (
	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// An Introspection is a consistent view of the router for tools and
// metrics: the core's registry plus what clients reported (publishers'
// counters and memory, components' counters). It shares nothing with the
// server. The same figures are
// what `parallax topics` and friends show.
type Introspection struct {
	Router      RouterInfo
	Processes   []ProcessStat // sorted by client id
	Topics      []TopicStat   // sorted by name
	Connections []ConnStat    // sorted by connection id
	// PublisherSegments are the owned model's publisher data segments,
	// sorted by publisher id and index (none in the shared model).
	PublisherSegments []PublisherSegStat
	// Components are the latest counter reports of client-side
	// components (gateways), sorted by component, instance and client.
	Components []ComponentStat
	// MonitorEvents counts process-exit reports by source ("socket" for
	// control-socket EOF, "process-exit" for the process monitor).
	MonitorEvents map[string]uint64
}

// RouterInfo describes the router as a whole.
type RouterInfo struct {
	Version     string // Parallax version of the router build
	PID         int32
	Domain      string
	Socket      string
	UptimeMs    uint64
	Monitor     string // process-exit monitor in use: "ebpf", "pidfd" or "socket"
	Processes   uint32 // registered client processes
	Topics      uint32
	Connections uint32
	Reclaims    uint64 // dead clients whose resources were reclaimed
}

// ProcessStat describes one client process.
type ProcessStat struct {
	ClientID    uint16
	PID         int32
	UID, GID    uint32
	Name        string
	Monitor     string // how its exit is detected: "ebpf", "pidfd" or "socket"
	Publishers  uint32
	Subscribers uint32
}

// TypeInfo is a topic's payload type: name, size and alignment in bytes
// (all zero for untyped bytes).
type TypeInfo struct {
	Name  string
	Size  uint32
	Align uint32
}

// TopicStat describes one topic. The router never sees a ring move (the
// rings are the clients' memory, which it does not read), so Published,
// Delivered and Dropped are what the topic's publishers reported of their
// own counters (publisher.Stats, about once a second): the sum over its
// live publishers plus the last reports of those that are gone, so they
// never go backwards while the topic exists. Published counts samples
// published (once however many subscribers; including those published
// while nobody was connected), Delivered pushes into subscribers' queues
// (a sample to three subscribers counts 3), Dropped samples subscribers
// missed (discard-oldest overwrites, block-producer timeouts). A publisher
// that closes reports its final counters first; what a killed publisher
// counted after its last report is not included.
type TopicStat struct {
	Name          string
	Type          TypeInfo
	Publishers    uint32
	Subscribers   uint32
	Connections   uint32
	Published     uint64
	Delivered     uint64
	Dropped       uint64
	QueueCapacity uint64 // sum of the capacities of the topic's rings
}

// ConnStat describes one publisher–subscriber connection (one ring). Its
// traffic is counted only by its publisher (the router never sees an owned
// ring move): Delivered, Dropped and Returned are what the publisher last
// reported for this connection, AgeMs ago (with its memory, about once a
// second while they change); all 0 with Reported false until it did.
// Delivered counts pushes into the subscriber's queue (history replays
// included), Dropped the samples the subscriber missed (discard-oldest
// take-backs, full-queue drops, block-producer timeouts), Returned the
// chunks the subscriber gave back and the publisher took back.
type ConnStat struct {
	ConnID    uint32
	Topic     string
	PubID     uint32
	SubID     uint32
	PubPID    int32
	SubPID    int32
	Capacity  uint32
	Policy    parallax.Policy
	Reported  bool
	AgeMs     uint64
	Delivered uint64
	Dropped   uint64
	Returned  uint64
}

// PublisherSegStat is one data segment of a publisher in the owned memory
// model: what the router knows itself (segment index, chunk size and
// count, bytes, page size) and the publisher's latest report of its own
// accounting (Memory, the same on every segment of one publisher). Only
// the publisher's process knows which chunks are in use; the router never
// reads memory a client can write, so Memory is what the publisher said,
// AgeMs ago, checked only against the segments' sizes: a lying client can
// misstate its own use and nobody else's. Reported is false until the first
// report. Dead marks a tombstone: the publisher is gone while subscribers
// may still map its segments (its accounting died with it).
type PublisherSegStat struct {
	PubID     uint32
	Topic     string
	ClientID  uint16
	PID       int32
	Dead      bool
	Index     uint16
	ChunkSize uint32
	Count     uint32
	Bytes     uint64
	PageSize  uint32
	Hugepages bool
	Reported  bool
	AgeMs     uint64
	Memory    PublisherMemory
}

// PublisherMemory is a publisher's report of its own chunks (its
// publisher.Stats().Memory).
type PublisherMemory struct {
	PubID       uint32
	Segments    uint32 // data segments the publisher has mapped
	Chunks      uint32
	Free        uint32
	InUse       uint32 // loaned, in history or delivered and not returned
	Loans       uint32
	History     uint32
	Outstanding uint32 // delivered and not yet returned, over all connections
	HighWater   uint32
	Reclaimed   uint64 // taken back from removed connections
	BadReturns  uint64
	// The publisher's message counters, as its Stats count them.
	Published   uint64 // samples published
	Delivered   uint64 // pushes into subscribers' queues, summed over connections
	Dropped     uint64 // samples subscribers missed (discard-oldest, block timeouts)
	Unconnected uint64 // samples published while no subscriber was connected (nobody got them)
	Removed     uint64 // connections that ended (closed, dead or cut subscribers)
}

// ComponentStat is the latest counter report of one client-side component
// (a gateway instance).
type ComponentStat struct {
	ClientID  uint16
	PID       int32
	Component string
	Instance  string
	AgeMs     uint64 // since the router received the report
	Counters  []Counter
}

// Counter is one named counter of a [ComponentStat].
type Counter struct {
	Name  string
	Value uint64
}

// public converts the wire form the server builds (and sends to tools)
// into the public one.
func (in *wireIntrospection) public() *Introspection {
	out := &Introspection{Router: RouterInfo(in.Router), MonitorEvents: in.MonitorEvents}
	for _, p := range in.Processes {
		out.Processes = append(out.Processes, ProcessStat(p))
	}
	for _, t := range in.Topics {
		out.Topics = append(out.Topics, TopicStat{
			Name: t.Name, Type: TypeInfo(t.Type), Publishers: t.Publishers, Subscribers: t.Subscribers, Connections: t.Connections,
			Published: t.Published, Delivered: t.Delivered, Dropped: t.Dropped, QueueCapacity: t.QueueCapacity,
		})
	}
	for _, c := range in.Connections {
		out.Connections = append(out.Connections, ConnStat{
			ConnID: c.ConnID, Topic: c.Topic, PubID: c.PubID, SubID: c.SubID, PubPID: c.PubPID, SubPID: c.SubPID,
			Capacity: c.Capacity, Policy: parallax.Policy(c.Policy), Reported: c.Reported, AgeMs: c.AgeMs,
			Delivered: c.Delivered, Dropped: c.Dropped, Returned: c.Returned,
		})
	}
	for _, p := range in.PublisherSegments {
		out.PublisherSegments = append(out.PublisherSegments, PublisherSegStat{
			PubID: p.PubID, Topic: p.Topic, ClientID: p.ClientID, PID: p.PID, Dead: p.Dead, Index: p.Index, ChunkSize: p.ChunkSize,
			Count: p.Count, Bytes: p.Bytes, PageSize: p.PageSize, Hugepages: p.Hugepages, Reported: p.Reported, AgeMs: p.AgeMs,
			Memory: PublisherMemory(p.Mem),
		})
	}
	for _, c := range in.Components {
		cs := ComponentStat{ClientID: c.ClientID, PID: c.PID, Component: c.Component, Instance: c.Instance, AgeMs: c.AgeMs}
		for _, ctr := range c.Counters {
			cs.Counters = append(cs.Counters, Counter(ctr))
		}
		out.Components = append(out.Components, cs)
	}
	return out
}

// wireIntrospection is an Introspection as the control protocol carries
// it; the server builds it on the Serve goroutine (introspect.go).
type wireIntrospection struct {
	Router            wire.RouterInfo
	Processes         []wire.ProcessStat
	Topics            []wire.TopicStat
	Connections       []wire.ConnStat
	PublisherSegments []wire.PublisherSegStat
	Components        []wire.ComponentStat
	MonitorEvents     map[string]uint64
}
