package main

import (
	"time"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// topicStat is a topic as `parallax topics -json` shows it: the wire form
// without the fields the router no longer fills (queue depth and rates:
// the rings are the clients' memory, which it never reads). Published,
// Delivered and Dropped are what the topic's publishers reported, summed
// with the last reports of publishers gone.
type topicStat struct {
	Name          string
	Type          wire.TypeInfo
	Publishers    uint32
	Subscribers   uint32
	Connections   uint32
	Published     uint64
	Delivered     uint64
	Dropped       uint64
	QueueCapacity uint64 // sum of the capacities of the topic's rings
}

func newTopicStat(t wire.TopicStat) topicStat {
	return topicStat{Name: t.Name, Type: t.Type, Publishers: t.Publishers, Subscribers: t.Subscribers, Connections: t.Connections,
		Published: t.Published, Delivered: t.Delivered, Dropped: t.Dropped, QueueCapacity: t.QueueCapacity}
}

// connStat is a connection as `parallax clients -json` and `parallax
// connections -json` show it. Delivered, Dropped and Returned are what the
// connection's publisher last reported (Reported false until it did):
// pushes into the subscriber's queue, samples the subscriber missed
// (discard-oldest take-backs, full-queue drops, block-producer timeouts)
// and chunks it gave back.
type connStat struct {
	ConnID    uint32
	Topic     string
	PubID     uint32
	SubID     uint32
	PubPID    int32
	SubPID    int32
	Capacity  uint32
	Policy    uint8
	Reported  bool
	AgeMs     uint64
	Delivered uint64
	Dropped   uint64
	Returned  uint64
}

func newConnStat(c wire.ConnStat) connStat {
	return connStat{ConnID: c.ConnID, Topic: c.Topic, PubID: c.PubID, SubID: c.SubID, PubPID: c.PubPID, SubPID: c.SubPID,
		Capacity: c.Capacity, Policy: c.Policy, Reported: c.Reported, AgeMs: c.AgeMs,
		Delivered: c.Delivered, Dropped: c.Dropped, Returned: c.Returned}
}

// topicRates are a topic's per-second rates between two refreshes of top;
// Known is false on the first refresh or when a counter went back (the
// topic went away and came back).
type topicRates struct {
	Known                  bool
	Publish, Deliver, Drop float64
}

// ratesBetween computes the topics' rates from prev (dt earlier) to cur; it
// returns a non-nil map (topics it cannot rate are missing).
func ratesBetween(prev, cur *view, dt time.Duration) map[string]topicRates {
	out := map[string]topicRates{}
	if prev == nil || dt <= 0 {
		return out
	}
	before := make(map[string]topicStat, len(prev.Topics))
	for _, t := range prev.Topics {
		before[t.Name] = t
	}
	s := dt.Seconds()
	for _, t := range cur.Topics {
		b, ok := before[t.Name]
		if !ok || t.Published < b.Published || t.Delivered < b.Delivered || t.Dropped < b.Dropped {
			continue
		}
		out[t.Name] = topicRates{Known: true, Publish: float64(t.Published-b.Published) / s,
			Deliver: float64(t.Delivered-b.Delivered) / s, Drop: float64(t.Dropped-b.Dropped) / s}
	}
	return out
}
