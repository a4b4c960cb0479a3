package ownedpub

import "fmt"

// Retirement of a data segment (design §1.3, step 9): the publisher keeps a
// dedicated segment for reuse and retires it once it has stayed completely
// free for a while. Only the engine knows whether a chunk of it is out.

// SegmentIdle reports whether every chunk of segment index is free, with a
// checksum of their generations: the same checksum at a later look, free
// both times, means no chunk of it was loaned in between. ok is false for
// an index the engine does not have.
func (e *Engine) SegmentIdle(index uint16) (free bool, gens uint64, ok bool) {
	e.lock()
	defer e.unlock()
	return e.tr.SegmentIdle(index)
}

// RemoveSegment takes segment index out of the engine if every chunk of it
// is free (none loaned, delivered or in history): no loan uses it from
// then on, and the caller may retire and unmap it. Errors wrap
// [owner.ErrSegment] (not present, or chunks in use: nothing changed).
func (e *Engine) RemoveSegment(index uint16) error {
	e.lock()
	defer e.unlock()
	if err := e.tr.RemoveSegment(index); err != nil {
		return fmt.Errorf("remove data segment: %w", err)
	}
	e.segs[index] = nil
	return nil
}
