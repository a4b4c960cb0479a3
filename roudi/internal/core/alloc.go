package core

import (
	"cmp"
	"fmt"
	"slices"
)

// RegionAlign is the alignment of every region offset and size: two cache
// lines, so no two regions share a line (or an adjacent-line prefetch pair).
const RegionAlign = 128

// An arena is a deterministic first-fit allocator of [Region]s inside
// [base, base+size). Free extents are kept sorted by offset and coalesced
// on free. Use newArena; the zero value is an empty arena. Not safe for
// concurrent use (the Router is single-threaded).
type arena struct {
	base, size uint64
	free       []Region          // sorted by Offset, non-adjacent, non-overlapping
	used       map[uint64]uint64 // offset → size of allocated regions
	usedBytes  uint64
}

func newArena(base, size uint64) (*arena, error) {
	if base%RegionAlign != 0 {
		return nil, fmt.Errorf("arena base %d: must be %d-byte aligned", base, RegionAlign)
	}
	size -= size % RegionAlign
	if size == 0 || base+size < base {
		return nil, fmt.Errorf("arena [%d, +%d): must hold at least %d bytes and not wrap", base, size, RegionAlign)
	}
	return &arena{
		base: base, size: size,
		free: []Region{{Offset: base, Size: size}},
		used: make(map[uint64]uint64),
	}, nil
}

// alloc returns the lowest free region of at least n bytes (rounded up to
// RegionAlign), or false when no extent fits.
func (a *arena) alloc(n int) (Region, bool) {
	if n <= 0 {
		n = 1
	}
	sz := (uint64(n) + RegionAlign - 1) &^ (RegionAlign - 1)
	for i, f := range a.free {
		if f.Size < sz {
			continue
		}
		r := Region{Offset: f.Offset, Size: sz}
		if f.Size == sz {
			a.free = slices.Delete(a.free, i, i+1)
		} else {
			a.free[i] = Region{Offset: f.Offset + sz, Size: f.Size - sz}
		}
		a.used[r.Offset] = sz
		a.usedBytes += sz
		return r, true
	}
	return Region{}, false
}

// release returns r to the free list, merging it with its neighbours. It
// panics on a region that is not currently allocated: that is a core bug.
func (a *arena) release(r Region) {
	if sz, ok := a.used[r.Offset]; !ok || sz != r.Size {
		panic(fmt.Sprintf("roudi: release of unallocated region %v", r))
	}
	delete(a.used, r.Offset)
	a.usedBytes -= r.Size
	i, _ := slices.BinarySearchFunc(a.free, r.Offset, func(f Region, off uint64) int {
		switch {
		case f.Offset < off:
			return -1
		case f.Offset > off:
			return 1
		}
		return 0
	})
	a.free = slices.Insert(a.free, i, r)
	// Merge with the next extent, then with the previous one.
	if i+1 < len(a.free) && a.free[i].End() == a.free[i+1].Offset {
		a.free[i].Size += a.free[i+1].Size
		a.free = slices.Delete(a.free, i+1, i+2)
	}
	if i > 0 && a.free[i-1].End() == a.free[i].Offset {
		a.free[i-1].Size += a.free[i].Size
		a.free = slices.Delete(a.free, i, i+1)
	}
}

// check verifies the allocator's invariants: free extents sorted,
// coalesced and inside the arena; allocated regions inside the arena and
// overlapping neither each other nor a free extent; and used+free bytes
// covering the arena exactly.
func (a *arena) check() error {
	var all []Region
	var freeBytes uint64
	for i, f := range a.free {
		if i > 0 && a.free[i-1].End() >= f.Offset {
			return fmt.Errorf("free extents %v and %v overlap or touch", a.free[i-1], f)
		}
		freeBytes += f.Size
		all = append(all, f)
	}
	var usedBytes uint64
	for off, sz := range a.used {
		if off%RegionAlign != 0 || sz%RegionAlign != 0 || sz == 0 {
			return fmt.Errorf("region @%d+%d is misaligned", off, sz)
		}
		usedBytes += sz
		all = append(all, Region{Offset: off, Size: sz})
	}
	slices.SortFunc(all, func(x, y Region) int { return cmp.Compare(x.Offset, y.Offset) })
	for i, r := range all {
		if r.Offset < a.base || r.End() > a.base+a.size {
			return fmt.Errorf("region %v outside arena @%d+%d", r, a.base, a.size)
		}
		if i > 0 && all[i-1].End() > r.Offset {
			return fmt.Errorf("regions %v and %v overlap", all[i-1], r)
		}
	}
	if usedBytes != a.usedBytes {
		return fmt.Errorf("used bytes %d, accounted %d", usedBytes, a.usedBytes)
	}
	if usedBytes+freeBytes != a.size {
		return fmt.Errorf("used %d + free %d != arena size %d", usedBytes, freeBytes, a.size)
	}
	return nil
}
