package gateway

import (
	"fmt"
	"sync/atomic"
)

// Stats are a gateway's counters since [New] (the sums over its topics, see
// [TopicStats]). All are cumulative.
type Stats struct {
	// Exported counts samples published to NATS; Imported messages
	// published locally. Forwarded is their sum. A split message counts
	// once.
	Exported, Imported, Forwarded uint64
	// Dropped counts messages lost inside the gateway: discarded from an
	// exporter's full local queue, refused by NATS while disconnected
	// (reconnect buffer full, [PolicyDiscard]), not acknowledged by
	// JetStream, NATS messages the importer could not keep up with (slow
	// consumer), local publishes that failed (no router, pool exhausted,
	// a block-producer subscriber's timeout), and split messages that
	// lost a part or could not be reassembled.
	Dropped uint64
	// Refused counts messages refused with a logged error: type mismatches,
	// messages over [Options].MaxMessageSize, malformed Parallax headers,
	// and malformed NATS frames on the import connection (each closes
	// it; the gateway reconnects).
	Refused uint64
	// Looped counts messages not forwarded because they came from this
	// gateway (loop prevention).
	Looped uint64
	// Gaps counts origin sequence numbers that never arrived (per origin
	// gateway and publisher): at an importer, messages lost anywhere on
	// the way; at an exporter, samples its local queue never got (a local
	// publisher's block timeout under [PolicyBlock]). Reordered counts
	// messages that arrived with an older sequence than one already seen
	// (they are still forwarded).
	Gaps, Reordered uint64
	// Reconnects counts reconnections to NATS (of the nats.go connection
	// and of the import connection, which reconnect each on their own: a
	// gateway that imports counts a NATS outage twice) and re-creations
	// of the local endpoints after the router went away.
	Reconnects uint64
}

// TopicStats are the counters of one bridged topic in one direction.
type TopicStats struct {
	Topic string
	// Export is true for an exported topic, false for an imported one.
	Export bool
	// Forwarded counts samples exported (Export) or messages imported; the
	// others are as in [Stats].
	Forwarded, Dropped, Refused, Looped, Gaps, Reordered uint64
}

// String formats s on one line, as the periodic log does.
func (s Stats) String() string {
	return fmt.Sprintf("forwarded=%d exported=%d imported=%d dropped=%d refused=%d looped=%d gaps=%d reordered=%d reconnects=%d",
		s.Forwarded, s.Exported, s.Imported, s.Dropped, s.Refused, s.Looped, s.Gaps, s.Reordered, s.Reconnects)
}

// counters are the live atomics of one topic and direction. The
// forwarding goroutine adds to them once per batch, not per message.
type counters struct {
	forwarded, dropped, refused, looped, gaps, reordered atomic.Uint64
}

func (c *counters) load(topic string, export bool) TopicStats {
	return TopicStats{Topic: topic, Export: export,
		Forwarded: c.forwarded.Load(), Dropped: c.dropped.Load(), Refused: c.refused.Load(),
		Looped: c.looped.Load(), Gaps: c.gaps.Load(), Reordered: c.reordered.Load()}
}

// add adds t's counters (not the forwarded one) to s.
func (s *Stats) add(t TopicStats) {
	s.Dropped += t.Dropped
	s.Refused += t.Refused
	s.Looped += t.Looped
	s.Gaps += t.Gaps
	s.Reordered += t.Reordered
	if t.Export {
		s.Exported += t.Forwarded
	} else {
		s.Imported += t.Forwarded
	}
}

// seqTracker counts gaps and reorderings of origin sequence numbers. It
// keeps the current origin's last sequence outside the map, so that a
// steady stream from one origin costs no map lookup. It is used by one
// goroutine at a time.
type seqTracker struct {
	byGateway map[string]map[uint32]uint64
	origins   int  // entries in byGateway's maps
	have      bool // cur belongs to (curGW, curPub)
	curGW     string
	curPub    uint32
	cur       uint64
	gaps      uint64
	reordered uint64
}

// maxOrigins bounds the origins (gateway, publisher) a tracker remembers
// (a hostile peer could invent many); beyond it the tracker starts afresh,
// which at worst misses gaps across the reset.
const maxOrigins = 4096

// track records seq from origin (gateway, publisher).
func (t *seqTracker) track(gateway []byte, publisher uint32, seq uint64) {
	if !t.have || publisher != t.curPub || string(gateway) != t.curGW {
		t.switchTo(gateway, publisher)
	}
	switch last := t.cur; {
	case last == 0 || seq == 1: // first seen, or a restarted origin
	case seq > last+1:
		t.gaps += seq - last - 1
	case seq <= last:
		t.reordered++
		return
	}
	t.cur = seq
}

func (t *seqTracker) switchTo(gateway []byte, publisher uint32) {
	if t.byGateway == nil {
		t.byGateway = map[string]map[uint32]uint64{}
	}
	if t.have { // write the current origin back
		if pubs := t.byGateway[t.curGW]; pubs != nil {
			pubs[t.curPub] = t.cur
		}
	}
	pubs, ok := t.byGateway[string(gateway)]
	if last, known := pubs[publisher]; known {
		t.have, t.curGW, t.curPub, t.cur = true, string(gateway), publisher, last
		return
	}
	if t.origins >= maxOrigins {
		clear(t.byGateway)
		t.origins, ok = 0, false
	}
	if !ok {
		pubs = map[uint32]uint64{}
		t.byGateway[string(gateway)] = pubs
	}
	pubs[publisher] = 0
	t.origins++
	t.have, t.curGW, t.curPub, t.cur = true, string(gateway), publisher, 0
}

// flush moves the counted gaps and reorderings to c.
func (t *seqTracker) flush(c *counters) {
	if t.gaps > 0 {
		c.gaps.Add(t.gaps)
		t.gaps = 0
	}
	if t.reordered > 0 {
		c.reordered.Add(t.reordered)
		t.reordered = 0
	}
}
