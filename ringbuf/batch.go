package ringbuf

import (
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
)

// errHeadMoved reports a head word that changed under a batch pop on a ring
// whose producer never writes head (every policy but DiscardOldest).
var errHeadMoved = fmt.Errorf("ring head moved under its only writer (the consumer): %w: %w", ErrCorruptRing, parallax.ErrCorrupt)

// PopBatch removes up to len(dst) of the oldest entries, stores them in
// dst in order and returns how many it removed (0 when the ring is empty,
// which is not an error). It is the drain of a connection's return ring
// (design §2.3): one load of the shared tail and one head CAS for the whole
// batch, instead of one of each per entry.
//
// The indices are validated as [Ring.TryPop] validates them: a tail word
// with garbage in its high half, or a tail more than a capacity ahead of
// head, yields an error wrapping [ErrCorruptRing] (and [parallax.ErrCorrupt])
// and pops nothing. On a ring whose producer never moves head (policies
// other than [DiscardOldest]) a head that changes between the load and the
// CAS is corruption too; under DiscardOldest it is a discard, and PopBatch
// retries (a bounded number of times, then reports nothing popped). At most
// [Ring.Cap] entries are popped, however large dst is. Like TryPop it wakes
// a producer waiting for space on a [BlockProducer] ring; it allocates
// nothing. The refs come from shared memory: validate them before use.
//
// Only the ring's one consumer may call PopBatch (it counts as a pop).
func (r *Ring) PopBatch(dst []parallax.ChunkRef) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	for range maxPopRetries {
		// Acquire on both loads, head first (see pop): head never passes
		// tail, so tail-head >= 0 for honest indices.
		hw := HeadWord(r.head.Load())
		tw := r.tail.Load()
		if tw>>32 != 0 {
			return 0, errTailHigh
		}
		t := uint32(tw)
		if err := r.distance(t, hw.Pos()); err != nil {
			// As in pop: only a discard that moved head after we loaded it
			// makes this honest; head unchanged means corrupt indices.
			if r.head.Load() != uint64(hw) {
				continue
			}
			return 0, err
		}
		n := min(t-hw.Pos(), uint32(min(len(dst), int(r.capacity))))
		if n == 0 {
			return 0, nil
		}
		// Ordered after the tail load, so every slot below t is visible.
		// The values are ours only if the CAS below succeeds.
		for i := range n {
			dst[i] = parallax.ChunkRef(r.slots[(hw.Pos()+i)&r.mask].Load())
		}
		next := HeadWord(uint64(hw.Pos()+n) | uint64(hw.Pops()+n)<<32)
		// Seq-cst CAS: claims positions [head, head+n) against a
		// discarding producer (which CASes head one entry at a time, so
		// exactly one of us wins each position). The producer overwrites
		// these slots only after it loads a head past them, i.e. after
		// this CAS, which follows our slot loads.
		if r.head.CompareAndSwap(uint64(hw), uint64(next)) {
			sys.StoreRelease32(&r.tailView, t)
			// Dekker with Push's wait loop, as in pop (t-head-n entries
			// are left: n <= t-head).
			if r.policy == BlockProducer && r.waitFlag.Load() != 0 &&
				t-hw.Pos()-n <= r.wakeLevel {
				r.wakeProducer()
			}
			return int(n), nil
		}
		if r.policy != DiscardOldest {
			return 0, errHeadMoved
		}
	}
	// Lost every claim to a discarding producer: nothing for now.
	return 0, nil
}
