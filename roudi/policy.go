package roudi

import (
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// The one mapping between the queue-full policy as the router core (and
// the public parallax.Policy and the wire, which share its values) encode
// it and the ring header's encoding (ringbuf.Policy, whose zero value is
// invalid on purpose).

// ringPolicy is p as a ring header stores it.
func ringPolicy(p core.Policy) ringbuf.Policy {
	if p == core.BlockProducer {
		return ringbuf.BlockProducer
	}
	return ringbuf.DiscardOldest
}

// corePolicy is the policy a ring header names, as the core encodes it.
func corePolicy(p ringbuf.Policy) core.Policy {
	if p == ringbuf.BlockProducer {
		return core.BlockProducer
	}
	return core.DiscardOldest
}
