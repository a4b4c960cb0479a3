package mempool

import (
	"fmt"
	"sync/atomic"
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
	// unusable.
	LostFree uint32
	// FalseFree counts slots whose bit is set while ctl says held. Loan
	// skips them safely.
	FalseFree uint32
	// Corrupt counts ctl words no code path writes: generation 0, or
	// refcount 0 with a loaner id.
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
