package ringbuf

import (
	"fmt"

	"github.com/parallax-ipc/parallax"
)

var errDiscardPolicy = fmt.Errorf("discard from a ring whose policy is not discard-oldest: %w", ErrInvalidArgument)

// TryDiscard takes back the oldest entry of a [DiscardOldest] ring without
// pushing, and returns it: the caller now owns that reference. It is the
// take-back of [Ring.TryPush] on a full ring, for a producer that must make
// room before it pushes — an owned publisher whose connection is at its
// bound of outstanding chunks (design §2.3) takes one back, accounts for it
// and only then records the new delivery. Exactly one of TryDiscard and the
// consumer's pop obtains each entry.
//
// It returns [ErrEmpty] when the ring is empty, one wrapping
// [ErrInvalidArgument] on a ring of another policy, and one wrapping
// [ErrCorruptRing] (and [parallax.ErrCorrupt]) when the head word is
// impossible or keeps changing. Only the ring's one producer may call it
// (it counts as that side's operation, like TryPush). It allocates nothing
// and makes no system call. The ref comes from shared memory: validate it
// before use.
func (r *Ring) TryDiscard() (parallax.ChunkRef, error) {
	if r.policy != DiscardOldest {
		return parallax.NilRef, errDiscardPolicy
	}
	// Producer-owned: only this goroutine stores tail.
	t := uint32(r.tail.Load())
	// Each lost CAS means the consumer popped the entry we looked at. With
	// tail fixed (only we push) an honest consumer can pop at most a
	// capacity of entries before the ring is empty, so a capacity plus a
	// margin of lost races is contention; more means somebody keeps
	// rewriting head. (maxPushRetries alone, enough for TryPush, which needs
	// only one pop to find room, took a consumer popping a full small ring
	// under preemption for corruption.)
	for range int(r.mask) + 1 + maxPushRetries {
		// Acquire (loadHead): pairs with the consumer's head CAS.
		hw, err := r.loadHead(t)
		if err != nil {
			return parallax.NilRef, err
		}
		if hw.Pos() == t {
			return parallax.NilRef, ErrEmpty
		}
		// As in TryPush: read the slot first; the CAS decides whether the
		// value is ours. The consumer reads the same slot before its own
		// CAS on the same head word, so exactly one CAS succeeds.
		old := r.slots[hw.Pos()&r.mask].Load()
		// Seq-cst CAS: on success the entry is ours; on failure the
		// consumer popped it (or a corrupt peer moved head): look again.
		if r.head.CompareAndSwap(uint64(hw), uint64(hw.discarded())) {
			// Producer-owned counter; the atomic lets the consumer read it.
			r.dropped.Add(1)
			return parallax.ChunkRef(old), nil
		}
	}
	return parallax.NilRef, errHeadChurn
}
