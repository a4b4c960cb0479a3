package owner

import "fmt"

// Retirement of a segment (design §1.3: the publisher retires a dedicated
// segment once it has stayed completely free for a while; only it knows
// that, exactly). The chunk index range a removed segment leaves is reused
// by a later segment that fits in it, so grow/retire cycles do not grow the
// Tracker.

// SegmentIdle reports whether every chunk of segment index is free, and a
// checksum of their generations: equal checksums at two instants with the
// segment free at both mean no chunk of it was loaned in between (a loan
// bumps its chunk's generation). ok is false for an index not present.
func (t *Tracker) SegmentIdle(index uint16) (free bool, gens uint64, ok bool) {
	if int(index) >= len(t.segs) || !t.segs[index].present {
		return false, 0, false
	}
	sg := t.segs[index]
	free = true
	for i := sg.base; i < sg.base+sg.count; i++ {
		ch := &t.chunks[i]
		if ch.state != stateFree {
			free = false
		}
		gens += uint64(ch.gen)
	}
	return free, gens, true
}

// RemoveSegment forgets segment index, whose chunks must all be free: they
// leave their class's free stack, and refs naming them are refused from
// then on (no connection holds them). The index may be added again.
// RemoveSegment allocates nothing but walks the class's free stack; it
// belongs on the control path. Errors wrap [ErrSegment].
func (t *Tracker) RemoveSegment(index uint16) error {
	free, _, ok := t.SegmentIdle(index)
	switch {
	case !ok:
		return fmt.Errorf("remove segment %d: not present: %w", index, ErrSegment)
	case !free:
		return fmt.Errorf("remove segment %d: chunks in use: %w", index, ErrSegment)
	}
	sg := t.segs[index]
	c := &t.classes[sg.class]
	kept := c.free[:0]
	for _, idx := range c.free {
		if idx < sg.base || idx >= sg.base+sg.count {
			kept = append(kept, idx)
		}
	}
	c.free = kept
	c.segs--
	c.chunks -= int(sg.count)
	t.segs[index] = segInfo{}
	t.holes = append(t.holes, span{sg.base, sg.count})
	return nil
}

// takeHole returns the start of a removed segment's chunk range that holds
// count chunks (the rest of the range stays a hole), or false.
func (t *Tracker) takeHole(count uint32) (uint32, bool) {
	for i, h := range t.holes {
		if h.count < count {
			continue
		}
		if h.count == count {
			t.holes = append(t.holes[:i], t.holes[i+1:]...)
		} else {
			t.holes[i] = span{h.base + count, h.count - count}
		}
		return h.base, true
	}
	return 0, false
}
