package gateway

import (
	"fmt"
	"sync/atomic"
)

// Stats are a gateway's counters since [New]. All are cumulative.
type Stats struct {
	// Exported counts samples published to NATS; Imported messages
	// published locally. Forwarded is their sum.
	Exported, Imported, Forwarded uint64
	// Dropped counts samples lost inside the gateway: discarded from an
	// exporter's full local queue, refused by NATS while disconnected
	// (reconnect buffer full), NATS messages the importer could not keep
	// up with (slow consumer), or local publishes that failed (no router,
	// pool exhausted).
	Dropped uint64
	// Refused counts messages refused with a logged error: type mismatches,
	// payloads over the NATS maximum, malformed Parallax headers.
	Refused uint64
	// Looped counts messages not forwarded because they came from this
	// gateway (loop prevention).
	Looped uint64
	// Gaps counts origin sequence numbers that never arrived at an
	// importer (per origin gateway and publisher); Reordered counts
	// messages that arrived with an older sequence than one already seen.
	Gaps, Reordered uint64
	// Reconnects counts reconnections to NATS and re-creations of the local
	// endpoints after the router went away.
	Reconnects uint64
}

// String formats s on one line, as the periodic log does.
func (s Stats) String() string {
	return fmt.Sprintf("forwarded=%d exported=%d imported=%d dropped=%d refused=%d looped=%d gaps=%d reordered=%d reconnects=%d",
		s.Forwarded, s.Exported, s.Imported, s.Dropped, s.Refused, s.Looped, s.Gaps, s.Reordered, s.Reconnects)
}

// counters are the live atomics behind Stats.
type counters struct {
	exported, imported, dropped, refused, looped, gaps, reordered, reconnects atomic.Uint64
}
