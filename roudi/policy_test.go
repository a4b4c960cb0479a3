package roudi

import (
	"testing"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// Every encoding of the queue-full policy agrees with the public one, and
// the ring mapping round-trips.
func TestPolicyEncodingsAgree(t *testing.T) {
	t.Parallel()
	for _, p := range []parallax.Policy{parallax.DiscardOldest, parallax.BlockProducer} {
		c := core.Policy(p)
		if uint8(c) != uint8(p) || c.String() != p.String() {
			t.Errorf("core %v (%d) differs from public %v (%d)", c, c, p, p)
		}
		w := uint8(p)
		if (w == wire.PolicyBlockProducer) != (p == parallax.BlockProducer) {
			t.Errorf("wire value %d of %v", w, p)
		}
		if back := corePolicy(ringPolicy(c)); back != c {
			t.Errorf("ring round trip of %v = %v", c, back)
		}
	}
	if ringPolicy(core.BlockProducer) != ringbuf.BlockProducer || ringPolicy(core.DiscardOldest) != ringbuf.DiscardOldest {
		t.Error("ringPolicy maps onto the wrong ring policy")
	}
}
