package mempool

import (
	"errors"
	"fmt"
	"structs"
	"sync/atomic"

	"github.com/parallax-ipc/parallax"
)

// A HoldTable records, in shared memory, every chunk reference one client
// process is responsible for: loans not yet published, history entries and
// samples taken but not released. When the process dies the router releases
// exactly the refs the table lists, so a killed process leaks nothing.
//
// Layout (all little-endian, 8-byte aligned):
//
//	offset 0    magic "PLXHOLD\0" (u64), version (u32), capacity (u32)
//	offset 16   client id (u32), reserved
//	offset 64   scan hint (u64, atomic; only a starting point)
//	offset 128  capacity × u64 entries: 0 = free, otherwise a ChunkRef
//
// Ordering protocol (what makes reclamation exact):
//   - taking a reference: the ref is obtained (Loan, or a tracked ring pop
//     whose intent the ring records), then Add stores it here, then the
//     ring's pop intent is cleared; the router resolves a death in between
//     with the ring's PendingPop.
//   - giving one up: Remove clears the entry first, then the ctl word is
//     updated (Release). A death in between leaks the reference rather
//     than releasing it twice; [Pool.Sweep] recovers such leaks once the
//     domain is quiescent. A double release could free a chunk someone
//     still reads; a leak cannot corrupt anything.
//
// Add and Remove are safe for concurrent use by the goroutines of the owning
// process (entries are claimed by CAS). Use [FormatHoldTable] (router) or
// [AttachHoldTable] (client); the zero value is invalid.
type HoldTable struct {
	mem     []byte
	hdr     *holdHeader
	entries []uint64
	cap     uint32
}

// holdHeader is the first 128 bytes of a hold table.
type holdHeader struct {
	_        structs.HostLayout
	magic    uint64
	version  uint32
	capacity uint32
	client   uint32
	_        [44]byte
	hint     uint64
	_        [56]byte
}

// Hold table constants.
const (
	HoldMagic         uint64 = 0x00444c4f48584c50 // "PLXHOLD\0"
	HoldVersion       uint32 = 1
	holdEntriesOffset        = 128
)

// ErrHoldTableFull reports that a client holds as many references as its
// table can record (the router's limits.max_holds).
var ErrHoldTableFull = errors.New("hold table full")

// HoldTableSize returns the bytes a table of capacity entries occupies.
func HoldTableSize(capacity int) int { return holdEntriesOffset + 8*capacity }

func mapHoldTable(mem []byte, capacity int) (*HoldTable, error) {
	h := &HoldTable{mem: mem, cap: uint32(capacity)}
	var err error
	if h.hdr, err = view[holdHeader](mem, 0); err != nil {
		return nil, err
	}
	if h.entries, err = viewSlice[uint64](mem, holdEntriesOffset, capacity); err != nil {
		return nil, err
	}
	return h, nil
}

// FormatHoldTable initialises mem as an empty table for client.
func FormatHoldTable(mem []byte, capacity int, client uint16) (*HoldTable, error) {
	if capacity <= 0 || HoldTableSize(capacity) > len(mem) {
		return nil, fmt.Errorf("format hold table: capacity %d does not fit %d bytes: %w", capacity, len(mem), ErrRegion)
	}
	h, err := mapHoldTable(mem, capacity)
	if err != nil {
		return nil, err
	}
	for i := range h.entries {
		atomic.StoreUint64(&h.entries[i], 0)
	}
	h.hdr.version, h.hdr.capacity, h.hdr.client = HoldVersion, uint32(capacity), uint32(client)
	atomic.StoreUint64(&h.hdr.hint, 0)
	atomic.StoreUint64(&h.hdr.magic, HoldMagic) // release: the table is complete
	return h, nil
}

// AttachHoldTable maps a table formatted by the router, checking its header
// against len(mem).
func AttachHoldTable(mem []byte) (*HoldTable, error) {
	if len(mem) < holdEntriesOffset {
		return nil, fmt.Errorf("attach hold table: %d bytes: %w", len(mem), parallax.ErrCorrupt)
	}
	h, err := mapHoldTable(mem, 0)
	if err != nil {
		return nil, err
	}
	if m := atomic.LoadUint64(&h.hdr.magic); m != HoldMagic || h.hdr.version != HoldVersion {
		return nil, fmt.Errorf("attach hold table: magic %#x version %d: %w", m, h.hdr.version, parallax.ErrCorrupt)
	}
	capacity := int(h.hdr.capacity)
	if capacity <= 0 || HoldTableSize(capacity) > len(mem) {
		return nil, fmt.Errorf("attach hold table: capacity %d does not fit %d bytes: %w", capacity, len(mem), parallax.ErrCorrupt)
	}
	return mapHoldTable(mem, capacity)
}

// Client returns the client id the table was formatted for.
func (h *HoldTable) Client() uint16 { return uint16(h.hdr.client) }

// Cap returns the number of entries.
func (h *HoldTable) Cap() int { return int(h.cap) }

// Add records ref and returns its entry index, for Remove. It allocates
// nothing and takes no lock.
func (h *HoldTable) Add(ref parallax.ChunkRef) (int, error) {
	n := h.cap
	start := uint32(atomic.LoadUint64(&h.hdr.hint) % uint64(n))
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		// A CAS claims the entry: the process's goroutines add concurrently.
		if atomic.LoadUint64(&h.entries[i]) == 0 && atomic.CompareAndSwapUint64(&h.entries[i], 0, uint64(ref)) {
			atomic.StoreUint64(&h.hdr.hint, uint64(i+1)) // a guess for the next Add
			return int(i), nil
		}
	}
	return -1, ErrHoldTableFull
}

// Remove clears entry idx, which must hold ref (as returned by Add).
func (h *HoldTable) Remove(idx int, ref parallax.ChunkRef) error {
	if idx < 0 || uint32(idx) >= h.cap {
		return fmt.Errorf("remove hold %d of %v: %w", idx, ref, parallax.ErrNotHeld)
	}
	// The entry's owner is the only one that clears it; the CAS catches a
	// caller bug (wrong index) instead of erasing another hold.
	if !atomic.CompareAndSwapUint64(&h.entries[idx], uint64(ref), 0) {
		return fmt.Errorf("remove hold %d of %v: %w", idx, ref, parallax.ErrNotHeld)
	}
	return nil
}

// Has reports whether entry idx holds ref: a cheap check that a loan or
// sample is still the caller's before it is used.
func (h *HoldTable) Has(idx int, ref parallax.ChunkRef) bool {
	return idx >= 0 && uint32(idx) < h.cap && atomic.LoadUint64(&h.entries[idx]) == uint64(ref)
}

// Refs returns the recorded references (for the router after the owner
// died, when the table no longer changes).
func (h *HoldTable) Refs() []parallax.ChunkRef {
	var out []parallax.ChunkRef
	for i := range h.entries {
		if v := atomic.LoadUint64(&h.entries[i]); v != 0 {
			out = append(out, parallax.ChunkRef(v))
		}
	}
	return out
}

// Contains reports whether ref is recorded.
func (h *HoldTable) Contains(ref parallax.ChunkRef) bool {
	for i := range h.entries {
		if atomic.LoadUint64(&h.entries[i]) == uint64(ref) {
			return true
		}
	}
	return false
}

// Len returns the number of recorded references.
func (h *HoldTable) Len() int {
	n := 0
	for i := range h.entries {
		if atomic.LoadUint64(&h.entries[i]) != 0 {
			n++
		}
	}
	return n
}

// Clear empties the table (router, after releasing what it listed).
func (h *HoldTable) Clear() {
	for i := range h.entries {
		atomic.StoreUint64(&h.entries[i], 0)
	}
	atomic.StoreUint64(&h.hdr.hint, 0)
}
