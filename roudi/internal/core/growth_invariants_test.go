package core

import "fmt"

// checkGrowth verifies that the growth accounting covers exactly the pools
// that exist or are being created: bytes of pools not retired, areas of
// every pool (retired ones keep theirs for the run), and the limits.
func (r *Router) checkGrowth() error {
	g := &r.growth
	var live, ded uint64
	grown := make([]bool, len(g.grownUsed))
	dedicated := make([]bool, len(g.dedUsed))
	for id, p := range g.pools {
		if p.id != id {
			return fmt.Errorf("pool %d indexed as %d", p.id, id)
		}
		used := grown
		if p.dedicated() {
			used = dedicated
		}
		if p.area < 0 || p.area >= len(used) || used[p.area] {
			return fmt.Errorf("pool %d: area %d out of range or claimed twice", id, p.area)
		}
		used[p.area] = true
		if p.state == poolRetired {
			continue
		}
		live += p.bytes
		if p.dedicated() {
			ded += p.bytes
		}
	}
	for i := range grown {
		if grown[i] != g.grownUsed[i] {
			return fmt.Errorf("grown area %d: marked used %v, pool present %v", i, g.grownUsed[i], grown[i])
		}
	}
	for i := range dedicated {
		if dedicated[i] != g.dedUsed[i] {
			return fmt.Errorf("dedicated area %d: marked used %v, pool present %v", i, g.dedUsed[i], dedicated[i])
		}
	}
	if live != g.liveBytes || ded != g.dedBytes {
		return fmt.Errorf("accounted %d live and %d dedicated bytes, pools hold %d and %d", g.liveBytes, g.dedBytes, live, ded)
	}
	if lim := r.cfg.Growth; live > lim.MaxTotalBytes && live > 0 || ded > lim.MaxDedicatedBytes && ded > 0 {
		return fmt.Errorf("%d live and %d dedicated bytes exceed the limits %d and %d", live, ded, lim.MaxTotalBytes, lim.MaxDedicatedBytes)
	}
	return nil
}
