package mempool

import (
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/parallax-ipc/parallax/internal/sys"

	"github.com/parallax-ipc/parallax"
)

// A Pool is one size class of fixed-size chunks: a management area (header,
// statistics, free bitmap, chunk headers) shared read-write by every user
// of the pool, over a payload region that holds the chunk bytes.
//
// Use [Format] (the side that lays the pool out) or [Attach] (any other);
// the zero value is invalid. A Pool only borrows both regions: it owns no mapping, has no Close, and must
// not be used after the segments holding its regions are unmapped. A *Pool
// is safe for concurrent use by many goroutines, and the same management
// area may be attached by many processes at once, except for
// [Pool.SetPayload] (see there). Pool values must not be copied; share
// the pointer.
type Pool struct {
	mgmt    []byte // keeps the management area reachable
	payload []byte // nil until SetPayload; len >= count*chunkSize

	hdr    *header
	stats  *statsLine
	hint   *hintLine
	bitmap []uint64      // words*bitmapStride; see word
	chunks []chunkHeader // len count

	id         uint16
	chunkSize  uint32
	count      uint32
	words      uint32
	lastMask   uint64 // valid bits of the last bitmap word
	headersOff int

	// Process-local state of the loaners of this process (hints only:
	// any value is safe).
	//
	// cursor is the slot where the next loan starts looking (next fit):
	// loans walk through the pool instead of taking back the slot a
	// subscriber on another core released a moment ago, whose header,
	// payload and bitmap lines are still hot in that core's cache.
	cursor atomic.Uint32
	// freesSeen is a frees count read earlier; frees only grow, so
	// loans - freesSeen bounds in-use from above and the shared frees
	// word (the releasers' line) is read only when that bound passes the
	// high-water mark.
	freesSeen atomic.Uint64
}

// Format initialises mgmt as the management area of a new pool with the
// given id and class and returns it: all slots free at generation 1,
// statistics zero. mgmt must be at least [MgmtSize](c) bytes and 8-byte
// aligned ([RegionAlign] recommended). The returned pool has no payload
// region yet; see [Pool.SetPayload].
//
// Format lays the pool out; it must not run while anyone uses mgmt.
func Format(mgmt []byte, id uint16, c Class) (*Pool, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("format pool %d: %w", id, err)
	}
	if need := MgmtSize(c); len(mgmt) < need {
		return nil, fmt.Errorf("format pool %d (%v): management area has %d bytes, need %d: %w", id, c, len(mgmt), need, ErrRegion)
	}
	if !isAligned(mgmt, 8) {
		return nil, fmt.Errorf("format pool %d: management area not 8-byte aligned: %w", id, ErrRegion)
	}
	p, err := mapPool(mgmt, id, c)
	if err != nil {
		return nil, fmt.Errorf("format pool %d: %w", id, err)
	}
	h := p.hdr
	atomic.StoreUint64(&h.magic, 0) // invalidate while formatting
	h.version = LayoutVersion
	h.poolID = uint32(id)
	h.chunkSize = c.ChunkSize
	h.count = c.Count
	h.bitmapOff = BitmapOffset
	h.headersOff = uint64(c.headersOffset())
	h.mgmtSize = uint64(MgmtSize(c))
	h.payloadSize = uint64(c.PayloadSize())
	*p.stats = statsLine{}
	*p.hint = hintLine{}
	clear(p.bitmap)
	for wi := range p.words {
		*p.word(wi) = fullWord
	}
	*p.word(p.words - 1) = p.lastMask
	for i := range p.chunks {
		p.chunks[i] = chunkHeader{ctl: makeCtl(1, 0, 0)}
	}
	// Release: an attacher that reads Magic (Attach) sees the whole layout.
	atomic.StoreUint64(&h.magic, Magic)
	return p, nil
}

// Attach validates the management area mgmt written by [Format] and returns
// a Pool over it and the payload region payload, which may be nil and set
// later with [Pool.SetPayload]. Every size and offset in the header is
// checked against the layout this build computes and against len(mgmt) and
// len(payload); a mismatch returns an error wrapping [parallax.ErrCorrupt].
func Attach(mgmt []byte, payload []byte) (p *Pool, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("attach pool: %w", err)
		}
	}()
	if !isAligned(mgmt, 8) {
		return nil, fmt.Errorf("management area not 8-byte aligned: %w", ErrRegion)
	}
	h, err := view[header](mgmt, HeaderOffset)
	if err != nil {
		return nil, fmt.Errorf("management area of %d bytes: %w", len(mgmt), parallax.ErrCorrupt)
	}
	// Acquire: pairs with Format's final store of Magic.
	if m := atomic.LoadUint64(&h.magic); m != Magic {
		return nil, fmt.Errorf("bad magic %#x: %w", m, parallax.ErrCorrupt)
	}
	if h.version != LayoutVersion {
		return nil, fmt.Errorf("layout version %d, want %d: %w", h.version, LayoutVersion, parallax.ErrCorrupt)
	}
	if h.poolID > 0xffff {
		return nil, fmt.Errorf("pool id %d out of range: %w", h.poolID, parallax.ErrCorrupt)
	}
	c := Class{ChunkSize: h.chunkSize, Count: h.count}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", parallax.ErrCorrupt, err)
	}
	switch {
	case h.bitmapOff != BitmapOffset:
		return nil, fmt.Errorf("bitmap offset %d, want %d: %w", h.bitmapOff, BitmapOffset, parallax.ErrCorrupt)
	case h.headersOff != uint64(c.headersOffset()):
		return nil, fmt.Errorf("chunk header offset %d, want %d: %w", h.headersOff, c.headersOffset(), parallax.ErrCorrupt)
	case h.mgmtSize != uint64(MgmtSize(c)):
		return nil, fmt.Errorf("management size %d, want %d: %w", h.mgmtSize, MgmtSize(c), parallax.ErrCorrupt)
	case h.mgmtSize > uint64(len(mgmt)):
		return nil, fmt.Errorf("management size %d exceeds the %d-byte area: %w", h.mgmtSize, len(mgmt), parallax.ErrCorrupt)
	case h.payloadSize != uint64(c.PayloadSize()):
		return nil, fmt.Errorf("payload size %d, want %d: %w", h.payloadSize, c.PayloadSize(), parallax.ErrCorrupt)
	}
	p, err = mapPool(mgmt, uint16(h.poolID), c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", parallax.ErrCorrupt, err)
	}
	if payload != nil {
		if err := p.SetPayload(payload); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// mapPool builds the typed views over mgmt for class c. The caller has
// validated c and the header.
func mapPool(mgmt []byte, id uint16, c Class) (*Pool, error) {
	p := &Pool{mgmt: mgmt, id: id, chunkSize: c.ChunkSize, count: c.Count, words: uint32(c.bitmapWords()), headersOff: c.headersOffset()}
	var err error
	if p.hdr, err = view[header](mgmt, HeaderOffset); err != nil {
		return nil, err
	}
	if p.stats, err = view[statsLine](mgmt, StatsOffset); err != nil {
		return nil, err
	}
	if p.hint, err = view[hintLine](mgmt, HintOffset); err != nil {
		return nil, err
	}
	if p.bitmap, err = viewSlice[uint64](mgmt, BitmapOffset, int(p.words)*bitmapStride); err != nil {
		return nil, err
	}
	if p.chunks, err = viewSlice[chunkHeader](mgmt, c.headersOffset(), int(c.Count)); err != nil {
		return nil, err
	}
	p.lastMask = fullWord
	if r := c.Count % wordSlots; r != 0 {
		p.lastMask = 1<<r - 1
	}
	return p, nil
}

// SetPayload sets the payload region: chunk i occupies
// payload[i*ChunkSize : (i+1)*ChunkSize]. payload must hold at least
// Count*ChunkSize bytes; it may be a read-only mapping for subscribers.
// SetPayload must happen before the Pool is shared with other goroutines.
func (p *Pool) SetPayload(payload []byte) error {
	if need := p.Class().PayloadSize(); len(payload) < need {
		return fmt.Errorf("set payload of pool %d: region has %d bytes, need %d: %w", p.id, len(payload), need, ErrRegion)
	}
	p.payload = payload[:p.Class().PayloadSize():p.Class().PayloadSize()]
	return nil
}

// ID returns the pool id, the pool field of the refs it hands out.
func (p *Pool) ID() uint16 { return p.id }

// Class returns the pool's chunk size and count.
func (p *Pool) Class() Class { return Class{ChunkSize: p.chunkSize, Count: p.count} }

// Loan takes a free chunk for owner (the loaner's client id; 0 means
// anonymous) and returns a ref to it with a reference count of 1 and zeroed
// metadata. When no chunk is free it returns at once an error wrapping
// [parallax.ErrPoolExhausted] and counts a failed loan.
//
// Loan takes no lock, makes no syscall and allocates nothing.
func (p *Pool) Loan(owner uint16) (parallax.ChunkRef, error) {
	ref, ok := p.tryLoan(owner)
	if !ok && p.words > 1 {
		// One scan visits the words one after another: a chunk freed in a
		// word already visited, while a concurrent loaner took the last
		// one ahead of us, would make a single pass report exhaustion with
		// a chunk free at every instant. A second pass closes that window
		// in practice (it is still bounded: no retry loop).
		ref, ok = p.tryLoan(owner)
	}
	if !ok {
		atomic.AddUint64(&p.stats.failedLoans, 1) // statistic only; no ordering
		return parallax.NilRef, errExhausted
	}
	return ref, nil
}

// tryLoan is Loan without the failure statistic.
func (p *Pool) tryLoan(owner uint16) (parallax.ChunkRef, bool) {
	words := p.words
	// Next fit from the cursor: the first word is scanned from the
	// cursor's bit, and once more in full at the end.
	cur := p.cursor.Load() % p.count
	wi := cur / wordSlots
	for i := range words + 1 {
		bw := p.word(wi)
		mask := fullWord
		if wi == words-1 {
			mask = p.lastMask
		}
		if i == 0 {
			mask &= fullWord << (cur % wordSlots)
		}
		for {
			// Acquire: pairs with Release's OrUint64, so the ctl word
			// retired by the releaser is visible below.
			w := atomic.LoadUint64(bw)
			free := w & mask
			if free == 0 {
				break
			}
			bit := free & -free
			if !atomic.CompareAndSwapUint64(bw, w, w&^bit) {
				continue // another loaner or releaser changed the word; rescan it
			}
			// The cleared bit gives us exclusive right to claim the slot.
			slot := wi*wordSlots + uint32(bits.TrailingZeros64(bit))
			p.cursor.Store(slot + 1)
			if n := slot + prefetchAhead; n < p.count {
				sys.PrefetchW(p.mgmt[p.headersOff+int(n)*ChunkHeaderSize:])
				if p.payload != nil {
					sys.PrefetchW(p.payload[int(n)*int(p.chunkSize):])
				}
			}
			h := &p.chunks[slot]
			c := atomic.LoadUint64(&h.ctl)
			g := ctlGen(c)
			// The ctl word is the authority: claim only a slot it says is
			// free. The CAS makes us the owner (refcount 1) and orders our
			// metadata writes below before any later AddRef/Release.
			if c == makeCtl(g, 0, 0) && g != 0 && atomic.CompareAndSwapUint64(&h.ctl, c, makeCtl(g, owner, 1)) {
				// We own the slot exclusively until we publish the ref;
				// plain stores suffice (publication is the happens-before edge).
				h.length, h.seq, h.timestamp, h.origin = 0, 0, 0, 0
				// Statistics only, no ordering: in use = loans - frees.
				// Frees is read after our add, so it may include releases
				// of later loans; guard the subtraction.
				loans := atomic.AddUint64(&p.stats.loansTotal, 1)
				if hw := atomic.LoadUint64(&p.stats.highWater); loans-p.freesSeen.Load() > hw {
					// The bound passed the mark: look at the real frees.
					frees := atomic.LoadUint64(&p.hint.freesTotal)
					if frees <= loans {
						p.freesSeen.Store(frees)
						if n := loans - frees; n > hw {
							p.raiseHighWater(min(n, uint64(p.count)))
						}
					}
				}
				return parallax.MakeRef(uint32(p.id), slot, g), true
			}
			// The bit was set but ctl says the slot is held (or is
			// corrupt). Clear is the right bit for a held slot: leave it
			// and keep looking.
		}
		if wi++; wi == words {
			wi = 0
		}
	}
	return parallax.NilRef, false
}

// prefetchAhead is how many slots past a loan's the next-fit walk
// prefetches: far enough for the transfer to finish before that loan.
const prefetchAhead = 2

// word returns bitmap word wi (slots wordSlots*wi to wordSlots*wi+wordSlots-1).
func (p *Pool) word(wi uint32) *uint64 { return &p.bitmap[wi*bitmapStride] }

func (p *Pool) raiseHighWater(n uint64) {
	for {
		hw := atomic.LoadUint64(&p.stats.highWater)
		if n <= hw || atomic.CompareAndSwapUint64(&p.stats.highWater, hw, n) {
			return
		}
	}
}

// chunk bounds-checks ref against this pool and returns its header. It
// checks the pool, slot and that the generation is not 0; state checks
// against ctl are the caller's.
func (p *Pool) chunk(op string, ref parallax.ChunkRef) (*chunkHeader, error) {
	if ref.Pool() != uint32(p.id) || ref.Slot() >= p.count || ref.Gen() == 0 {
		return nil, refErr(op, ref, parallax.ErrInvalidRef)
	}
	return &p.chunks[ref.Slot()], nil
}

// checkCtl reports whether ctl word c is held under ref's generation.
func checkCtl(op string, ref parallax.ChunkRef, c uint64) error {
	if ctlGen(c) != ref.Gen() {
		return refErr(op, ref, parallax.ErrStaleRef)
	}
	if ctlRef(c) == 0 {
		return refErr(op, ref, parallax.ErrNotHeld)
	}
	return nil
}

// held validates ref: in range, generation current, refcount > 0.
func (p *Pool) held(op string, ref parallax.ChunkRef) (*chunkHeader, error) {
	h, err := p.chunk(op, ref)
	if err != nil {
		return nil, err
	}
	// Acquire: pairs with the loaner's CAS and with AddRef, so metadata
	// written before the ref was handed over is visible.
	if err := checkCtl(op, ref, atomic.LoadUint64(&h.ctl)); err != nil {
		return nil, err
	}
	return h, nil
}

// Validate reports whether ref names a chunk of this pool that is currently
// held: the error wraps [parallax.ErrInvalidRef] (pool, slot or generation 0
// out of range), [parallax.ErrStaleRef] (generation moved on) or
// [parallax.ErrNotHeld] (reference count 0).
func (p *Pool) Validate(ref parallax.ChunkRef) error {
	_, err := p.held("validate", ref)
	return err
}

// AddRef adds n holders to the chunk ref names. The caller must hold the
// chunk itself (AddRef on a stale or free chunk fails, so a ref can never be
// resurrected). Exceeding [MaxRefCount] fails with [ErrRefCountOverflow].
func (p *Pool) AddRef(ref parallax.ChunkRef, n uint32) error {
	h, err := p.chunk("addref", ref)
	if err != nil {
		return err
	}
	for {
		c := atomic.LoadUint64(&h.ctl)
		if err := checkCtl("addref", ref, c); err != nil {
			return err
		}
		if n > MaxRefCount-ctlRef(c) {
			return refErr("addref", ref, ErrRefCountOverflow)
		}
		// Release/acquire on ctl: orders the caller's writes (metadata)
		// before the holders it hands the ref to.
		if atomic.CompareAndSwapUint64(&h.ctl, c, c+uint64(n)) {
			return nil
		}
	}
}

// Release drops one holder of the chunk ref names. When the last holder
// goes, the slot's generation advances (every outstanding copy of ref
// becomes stale), and the slot returns to the free bitmap; freed reports
// this. A double release, a stale ref or a ref to a free slot returns an
// error and changes nothing.
func (p *Pool) Release(ref parallax.ChunkRef) (freed bool, err error) {
	h, err := p.chunk("release", ref)
	if err != nil {
		return false, err
	}
	for {
		c := atomic.LoadUint64(&h.ctl)
		if err := checkCtl("release", ref, c); err != nil {
			return false, err
		}
		if ctlRef(c) > 1 {
			// Release: our reads of the chunk happen before the last
			// holder's retiring CAS, which reads this value.
			if atomic.CompareAndSwapUint64(&h.ctl, c, c-1) {
				return false, nil
			}
			continue
		}
		// Last holder: retire the generation. From here the slot is free
		// by ctl but not yet in the bitmap (a crash here loses the slot:
		// Audit counts it as LostFree).
		if atomic.CompareAndSwapUint64(&h.ctl, c, makeCtl(parallax.NextGen(ctlGen(c)), 0, 0)) {
			// Statistic; counted before the bit is set so that in use
			// (loans - frees) never exceeds Count in a quiescent pool.
			atomic.AddUint64(&p.hint.freesTotal, 1)
			slot := ref.Slot()
			// Release: publishes the retired ctl (and our payload reads)
			// to the next loaner's bitmap CAS.
			atomic.OrUint64(p.word(slot/wordSlots), 1<<(slot%wordSlots))
			return true, nil
		}
	}
}

// Payload returns the whole chunk ref names (ChunkSize bytes). It aliases
// shared memory and is only valid while the caller holds ref; for
// subscribers the region may be read-only, so they must not write into it.
func (p *Pool) Payload(ref parallax.ChunkRef) ([]byte, error) {
	if _, err := p.held("payload", ref); err != nil {
		return nil, err
	}
	if p.payload == nil {
		return nil, refErr("payload", ref, ErrNoPayload)
	}
	off := int(ref.Slot()) * int(p.chunkSize)
	end := off + int(p.chunkSize)
	return p.payload[off:end:end], nil
}

// Data returns the used part of the chunk, Payload(ref)[:Length]. A length
// larger than the chunk (written by a faulty peer) yields an error wrapping
// [parallax.ErrCorrupt]. Like Payload it aliases shared memory and is only
// valid while the caller holds ref.
func (p *Pool) Data(ref parallax.ChunkRef) ([]byte, error) {
	b, _, err := p.view("data", ref)
	return b, err
}

// View returns [Pool.Data] and [Pool.Meta] of the chunk ref names after a
// single validation: what a holder reads to hand a sample out.
func (p *Pool) View(ref parallax.ChunkRef) ([]byte, Meta, error) { return p.view("view", ref) }

func (p *Pool) view(op string, ref parallax.ChunkRef) ([]byte, Meta, error) {
	h, err := p.held(op, ref)
	if err != nil {
		return nil, Meta{}, err
	}
	if p.payload == nil {
		return nil, Meta{}, refErr(op, ref, ErrNoPayload)
	}
	// Plain reads, once each into locals (a peer may change them): the
	// writes happened before the ref was handed to us.
	m := Meta{Length: h.length, Seq: h.seq, Timestamp: h.timestamp, Origin: h.origin}
	if m.Length > uint64(p.chunkSize) {
		return nil, Meta{}, refErr(op, ref, fmt.Errorf("length %d exceeds chunk size %d: %w", m.Length, p.chunkSize, parallax.ErrCorrupt))
	}
	off := int(ref.Slot()) * int(p.chunkSize)
	return p.payload[off : off+int(m.Length) : off+int(p.chunkSize)], m, nil
}

// Meta is the per-chunk metadata kept in the chunk header next to the
// reference count. Loan zeroes it.
type Meta struct {
	Length    uint64 // bytes of payload in use, at most ChunkSize
	Seq       uint64 // publisher sequence number
	Timestamp int64  // unix nanoseconds
	Origin    uint64 // publisher (or origin) id
}

// Meta returns the metadata of the chunk ref names. The caller must hold
// ref; the loaner writes metadata before publishing, holders read it after.
func (p *Pool) Meta(ref parallax.ChunkRef) (Meta, error) {
	h, err := p.held("meta", ref)
	if err != nil {
		return Meta{}, err
	}
	// Plain reads: the writes happened before the ref was handed to us
	// (ring push/pop or AddRef is the happens-before edge).
	return Meta{Length: h.length, Seq: h.seq, Timestamp: h.timestamp, Origin: h.origin}, nil
}

// SetMeta writes the metadata of the chunk ref names. Only the loaner
// writes it, before publishing; m.Length must not exceed ChunkSize.
func (p *Pool) SetMeta(ref parallax.ChunkRef, m Meta) error {
	h, err := p.held("setmeta", ref)
	if err != nil {
		return err
	}
	if m.Length > uint64(p.chunkSize) {
		return refErr("setmeta", ref, fmt.Errorf("length %d exceeds chunk size %d: %w", m.Length, p.chunkSize, ErrRegion))
	}
	h.length, h.seq, h.timestamp, h.origin = m.Length, m.Seq, m.Timestamp, m.Origin
	return nil
}

// SetLength sets only the Length field of the chunk's metadata.
func (p *Pool) SetLength(ref parallax.ChunkRef, n int) error {
	h, err := p.held("setlength", ref)
	if err != nil {
		return err
	}
	if n < 0 || n > int(p.chunkSize) {
		return refErr("setlength", ref, fmt.Errorf("length %d exceeds chunk size %d: %w", n, p.chunkSize, ErrRegion))
	}
	h.length = uint64(n) // loaner-owned until published
	return nil
}

// SlotState is the decoded ctl word of one slot.
type SlotState struct {
	Gen      uint32 // current generation (never 0 in a sound pool)
	Owner    uint16 // loaner id, 0 when free
	RefCount uint32 // holders; 0 = free
}

// Slot returns the state of slot i, for audits and inspection.
func (p *Pool) Slot(i uint32) (SlotState, error) {
	if i >= p.count {
		return SlotState{}, fmt.Errorf("slot %d of pool %d (count %d): %w", i, p.id, p.count, parallax.ErrInvalidRef)
	}
	c := atomic.LoadUint64(&p.chunks[i].ctl) // snapshot
	return SlotState{Gen: ctlGen(c), Owner: ctlOwner(c), RefCount: ctlRef(c)}, nil
}

// Stats is a snapshot of a pool's shared statistics.
type Stats struct {
	ID          uint16
	ChunkSize   uint32
	Count       uint32
	InUse       uint64 // chunks held now (Loans - frees; exact when quiescent)
	HighWater   uint64 // most chunks held at once
	FailedLoans uint64 // loans refused for exhaustion
	Loans       uint64 // successful loans
}

// Stats returns a snapshot of the pool's statistics (each word read
// atomically, the set not as one unit).
func (p *Pool) Stats() Stats {
	s := Stats{ID: p.id, ChunkSize: p.chunkSize, Count: p.count}
	// Frees first: loans read afterwards is at least as large, so the
	// difference cannot underflow for a sound pool.
	frees := atomic.LoadUint64(&p.hint.freesTotal)
	s.Loans = atomic.LoadUint64(&p.stats.loansTotal)
	if s.Loans > frees {
		s.InUse = min(s.Loans-frees, uint64(p.count))
	}
	s.HighWater = min(atomic.LoadUint64(&p.stats.highWater), uint64(p.count))
	s.FailedLoans = atomic.LoadUint64(&p.stats.failedLoans)
	return s
}
