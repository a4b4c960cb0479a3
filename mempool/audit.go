package mempool

import (
	"fmt"
	"sync/atomic"

	"github.com/parallax-ipc/parallax"
)

// An Audit counts a pool's slots by state. Taken while the pool is in use it
// is a snapshot of racing words; taken when nobody loans or releases it is
// exact.
type Audit struct {
	Count   uint32 // slots in the pool
	Free    uint32 // ctl says free (refcount 0, sound)
	InUse   uint32 // ctl says held (refcount > 0)
	BitFree uint32 // bitmap bits set
	// LostFree counts slots free by ctl whose bitmap bit is clear: a
	// process died between clearing the bit and claiming ctl in Loan, or
	// between retiring ctl and setting the bit in Release. They are
	// unusable until [Pool.Repair].
	LostFree uint32
	// FalseFree counts slots whose bit is set while ctl says held. Loan
	// skips them safely; Repair clears the bits.
	FalseFree uint32
	// Corrupt counts ctl words no code path writes: generation 0, or
	// refcount 0 with a loaner id. Repair resets them to free.
	Corrupt uint32
}

// AllFree reports whether every slot is free and consistently so.
func (a Audit) AllFree() bool {
	return a.Free == a.Count && a.BitFree == a.Count && a.InUse == 0 &&
		a.LostFree == 0 && a.FalseFree == 0 && a.Corrupt == 0
}

// String summarises a.
func (a Audit) String() string {
	return fmt.Sprintf("count=%d free=%d inuse=%d bitfree=%d lostfree=%d falsefree=%d corrupt=%d",
		a.Count, a.Free, a.InUse, a.BitFree, a.LostFree, a.FalseFree, a.Corrupt)
}

// Audit scans every slot's ctl word and bitmap bit and counts them.
func (p *Pool) Audit() Audit {
	a := Audit{Count: p.count}
	for i := range p.count {
		c := atomic.LoadUint64(&p.chunks[i].ctl)                              // snapshot
		bit := atomic.LoadUint64(p.word(i/wordSlots))&(1<<(i%wordSlots)) != 0 // snapshot
		if bit {
			a.BitFree++
		}
		switch {
		case ctlGen(c) == 0 || (ctlRef(c) == 0 && ctlOwner(c) != 0):
			a.Corrupt++
		case ctlRef(c) == 0:
			a.Free++
			if !bit {
				a.LostFree++
			}
		default:
			a.InUse++
			if bit {
				a.FalseFree++
			}
		}
	}
	return a
}

// Repair rebuilds the free bitmap and the in-use statistic from the ctl
// words, which are the authority: free slots get their bit set, held slots
// get it cleared, corrupt ctl words are reset to a free slot at the next
// generation (or 1). It returns the audit taken before repairing.
//
// Repair must run only when no process loans from or releases into this
// pool (while its users are stopped, or after the last one died);
// concurrent Loans could otherwise hand out a slot twice.
func (p *Pool) Repair() Audit {
	before := p.Audit()
	var inUse uint64
	for wi := range p.words {
		var w uint64
		for b := range uint32(wordSlots) {
			i := wi*wordSlots + b
			if i >= p.count {
				break
			}
			h := &p.chunks[i]
			c := atomic.LoadUint64(&h.ctl)
			switch {
			case ctlGen(c) == 0:
				atomic.StoreUint64(&h.ctl, makeCtl(1, 0, 0))
				w |= 1 << b
			case ctlRef(c) == 0 && ctlOwner(c) != 0:
				atomic.StoreUint64(&h.ctl, makeCtl(parallax.NextGen(ctlGen(c)), 0, 0))
				w |= 1 << b
			case ctlRef(c) == 0:
				w |= 1 << b
			default:
				inUse++
			}
		}
		atomic.StoreUint64(p.word(wi), w) // quiescent; ordered by whatever resumes the clients
	}
	// Make in use (loans - frees) match the ctl words.
	loans := atomic.LoadUint64(&p.stats.loansTotal)
	atomic.StoreUint64(&p.hint.freesTotal, loans-inUse)
	return before
}
