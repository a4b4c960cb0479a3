package owner

import (
	"fmt"
	"math"

	"github.com/parallax-ipc/parallax"
)

// Config sets a Tracker's limits. The zero value means no loan limit and no
// history.
type Config struct {
	// MaxLoans caps the chunks loaned and not yet published or unloaned;
	// a Loan beyond it fails with an error wrapping [parallax.ErrLimit].
	// 0 means no cap.
	MaxLoans int
	// History is the number of published chunks kept for late joiners.
	History int
}

// A Tracker is one publisher's chunk accounting: which chunks are free
// (a LIFO stack per size class), loaned, kept in history or outstanding on
// which connection, and each chunk's generation. It lives in process memory
// only and is the sole authority on whether a chunk of the publisher's data
// segments is in use.
//
// Chunks are named by a global index: segment by segment in the order they
// were added, slot by slot. [Tracker.Loan] returns both the index (for the
// publisher's own calls) and the [parallax.ChunkRef] (segment index, slot,
// generation) that travels through the rings.
//
// Use [New]; the zero value is invalid. A Tracker is not safe for concurrent
// use: the publisher serialises every call, including the accessors of its
// [ConnTrack]s, with one mutex. It must not be copied.
type Tracker struct {
	cfg     Config
	segs    []segInfo // by segment index; present marks the used ones
	chunks  []chunk   // by global chunk index
	classes []class
	conns   []*ConnTrack // live and closing connections
	holes   []span       // chunk index ranges of removed segments

	hist     []uint32 // ring of chunk indices, len = cfg.History
	histHead int      // oldest entry
	histLen  int

	loans, inUse, units, outstanding, hiWater int
	loaned, returned, badReturns, reclaimed   uint64
}

type segInfo struct {
	base, count uint32
	class       int32
	present     bool
}

// span is a range of global chunk indices a removed segment left; a later
// segment of at most count chunks reuses it (RemoveSegment, AddSegment).
type span struct{ base, count uint32 }

// Chunk states.
const (
	stateFree   uint8 = iota // on its class's free stack, fanout 0
	stateLoaned              // the loan unit is held (between Loan and Published/Unloan)
	stateLive                // published; held by deliveries and/or history
)

// chunk is 12 bytes: 4 356 chunks (64 B payloads, 16 subscribers) = 51 KiB.
type chunk struct {
	gen    uint32 // generation of the current (or last) loan; 0 only before the first
	fanout uint32 // units holding it: 1 while loaned + 1 if in history + 1 per connection bit
	seg    uint16
	state  uint8
	hist   bool
}

type class struct {
	size   uint32
	segs   int      // segments present in the class; ClassFor skips a class without any
	chunks int      // chunks of those segments
	free   []uint32 // LIFO: the top is the end; capacity = every chunk of the class
}

// New returns an empty Tracker; add memory with [Tracker.AddSegment].
func New(cfg Config) *Tracker {
	return &Tracker{cfg: cfg, hist: make([]uint32, max(cfg.History, 0))}
}

// AddSegment registers data segment index with count chunks of chunkSize
// bytes, for example after the router created it (the first segment or a
// growth segment). Segments of one chunk size form one size class; the
// return value is its class index, stable for the Tracker's life.
//
// The new chunks go onto the class's free stack *below* the chunks already
// free there, so recently freed (cache-hot) chunks keep being reused first;
// among the new ones slot 0 is loaned first. AddSegment allocates (bitsets
// of every connection grow); it belongs on the control path. Errors wrap
// [ErrSegment].
func (t *Tracker) AddSegment(index uint16, chunkSize, count uint32) (int, error) {
	switch {
	case int(index) < len(t.segs) && t.segs[index].present:
		return 0, fmt.Errorf("add segment %d: index in use: %w", index, ErrSegment)
	case chunkSize == 0:
		return 0, fmt.Errorf("add segment %d: chunk size 0: %w", index, ErrSegment)
	case count == 0 || count > parallax.MaxSlots:
		return 0, fmt.Errorf("add segment %d: count %d not in [1, %d]: %w", index, count, parallax.MaxSlots, ErrSegment)
	case uint64(len(t.chunks))+uint64(count) > math.MaxInt32:
		return 0, fmt.Errorf("add segment %d: %d chunks in all exceed %d: %w", index, len(t.chunks)+int(count), math.MaxInt32, ErrSegment)
	}
	ci := -1
	for i := range t.classes {
		if t.classes[i].size == chunkSize {
			ci = i
		}
	}
	if ci < 0 {
		ci = len(t.classes)
		t.classes = append(t.classes, class{size: chunkSize})
	}
	base, reused := t.takeHole(count)
	if reused {
		for i := base; i < base+count; i++ {
			t.chunks[i] = chunk{gen: t.chunks[i].gen, seg: index} // keep gen: a stale ref stays stale
		}
	} else {
		base = uint32(len(t.chunks))
		for range count {
			t.chunks = append(t.chunks, chunk{seg: index})
		}
	}
	for len(t.segs) <= int(index) {
		t.segs = append(t.segs, segInfo{})
	}
	t.segs[index] = segInfo{base: base, count: count, class: int32(ci), present: true}

	c := &t.classes[ci]
	c.segs++
	c.chunks += int(count)
	free := make([]uint32, 0, c.chunks)
	for i := count; i > 0; i-- {
		free = append(free, base+i-1)
	}
	c.free = append(free, c.free...)
	for _, ct := range t.conns {
		ct.delivered.grow(len(t.chunks))
	}
	return ci, nil
}

// ClassFor returns the smallest size class whose chunks hold n bytes.
func (t *Tracker) ClassFor(n int) (int, bool) {
	best := -1
	for i, c := range t.classes {
		if c.segs > 0 && int64(c.size) >= int64(n) && (best < 0 || c.size < t.classes[best].size) {
			best = i
		}
	}
	return best, best >= 0
}

// LargerFree returns the smallest size class larger than class that has a
// free chunk: where a loan goes when its own class is empty, so that a
// small class never fails a loan a larger one could serve.
func (t *Tracker) LargerFree(class int) (int, bool) {
	if class < 0 || class >= len(t.classes) {
		return -1, false
	}
	size, best := t.classes[class].size, -1
	for i, c := range t.classes {
		if c.size > size && len(c.free) > 0 && (best < 0 || c.size < t.classes[best].size) {
			best = i
		}
	}
	return best, best >= 0
}

// ClassFree returns how many chunks of class are free (0 if there is no
// such class).
func (t *Tracker) ClassFree(class int) int {
	if class < 0 || class >= len(t.classes) {
		return 0
	}
	return len(t.classes[class].free)
}

// ClassSize returns the chunk size of class, or 0 if there is no such class.
func (t *Tracker) ClassSize(class int) uint32 {
	if class < 0 || class >= len(t.classes) {
		return 0
	}
	return t.classes[class].size
}

// Loan takes the most recently freed chunk of class, bumps its generation
// (never to 0) and returns its index and ref. The caller holds the loan
// unit until [Tracker.Published] or [Tracker.Unloan].
//
// Errors: [ErrClass]; [parallax.ErrLimit] when MaxLoans chunks are loaned;
// [parallax.ErrPoolExhausted] when the class has no free chunk (the
// publisher drains its connections' return rings and retries). Loan
// allocates nothing.
func (t *Tracker) Loan(class int) (uint32, parallax.ChunkRef, error) {
	if class < 0 || class >= len(t.classes) {
		return 0, 0, ErrClass
	}
	if t.cfg.MaxLoans > 0 && t.loans >= t.cfg.MaxLoans {
		return 0, 0, errLoanLimit
	}
	c := &t.classes[class]
	n := len(c.free)
	if n == 0 {
		return 0, 0, errExhausted
	}
	idx := c.free[n-1]
	c.free = c.free[:n-1]
	ch := &t.chunks[idx]
	ch.gen = parallax.NextGen(ch.gen)
	ch.state = stateLoaned
	ch.fanout = 1
	t.loans++
	t.units++
	t.inUse++
	t.loaned++
	t.hiWater = max(t.hiWater, t.inUse)
	return idx, t.ref(idx), nil
}

// Published drops the loan unit of idx after the publisher delivered it on
// every connection it goes to (and pushed it into history). A chunk that
// nobody received is freed at once. Errors: [ErrNotLoaned].
func (t *Tracker) Published(idx uint32) error {
	if int(idx) >= len(t.chunks) || t.chunks[idx].state != stateLoaned {
		return ErrNotLoaned
	}
	t.chunks[idx].state = stateLive
	t.loans--
	t.drop(idx)
	return nil
}

// Unloan gives back a loaned chunk that was never delivered nor put in
// history (a sample released without publishing). Errors: [ErrNotLoaned],
// or [ErrDelivered] if it was delivered or pushed to history (use
// [Tracker.Published] then).
func (t *Tracker) Unloan(idx uint32) error {
	if int(idx) >= len(t.chunks) || t.chunks[idx].state != stateLoaned {
		return ErrNotLoaned
	}
	if t.chunks[idx].fanout != 1 {
		return ErrDelivered
	}
	t.loans--
	t.drop(idx)
	return nil
}

// Ref returns the ref of chunk idx under its current generation, or
// [parallax.NilRef] if idx is out of range or free.
func (t *Tracker) Ref(idx uint32) parallax.ChunkRef {
	if int(idx) >= len(t.chunks) || t.chunks[idx].state == stateFree {
		return parallax.NilRef
	}
	return t.ref(idx)
}

// Loaned reports whether chunk idx is loaned: between [Tracker.Loan] and
// [Tracker.Published] or [Tracker.Unloan]. A publisher checks it before
// delivering a loan its caller hands back, so a second publish of one loan
// (whose chunk may be in history, which Deliver accepts) is refused.
func (t *Tracker) Loaned(idx uint32) bool {
	return int(idx) < len(t.chunks) && t.chunks[idx].state == stateLoaned
}

func (t *Tracker) ref(idx uint32) parallax.ChunkRef {
	ch := &t.chunks[idx]
	return parallax.MakeRef(uint32(ch.seg), idx-t.segs[ch.seg].base, ch.gen)
}

// drop removes one unit from idx and frees it when none is left.
func (t *Tracker) drop(idx uint32) {
	ch := &t.chunks[idx]
	ch.fanout--
	t.units--
	if ch.fanout > 0 {
		return
	}
	ch.state = stateFree
	t.inUse--
	c := &t.classes[t.segs[ch.seg].class]
	c.free = append(c.free, idx) // within capacity: never allocates
}

// Stats is a snapshot of a Tracker's accounting.
type Stats struct {
	Segments, Classes int
	Chunks            int // chunks in all segments
	Free              int // on the free stacks
	InUse             int // chunks held by at least one unit (Chunks - Free)
	Loans             int // loaned, not yet published or unloaned
	History           int // chunks in history
	Outstanding       int // Σ over live and closing connections of chunks delivered and not returned
	Units             int // Σ fan-out = Loans + History + Outstanding; ≥ InUse (equal without sharing)
	HighWater         int // largest InUse so far

	Loaned, Returned, BadReturns, Reclaimed uint64 // totals since New
}

// Loans returns the chunks loaned and not yet published or unloaned.
func (t *Tracker) Loans() int { return t.loans }

// Stats returns the current accounting.
func (t *Tracker) Stats() Stats {
	s := Stats{
		Classes: len(t.classes), InUse: t.inUse,
		Loans: t.loans, History: t.histLen, Outstanding: t.outstanding, Units: t.units,
		HighWater: t.hiWater, Loaned: t.loaned, Returned: t.returned,
		BadReturns: t.badReturns, Reclaimed: t.reclaimed,
	}
	for _, sg := range t.segs {
		if sg.present {
			s.Segments++
			s.Chunks += int(sg.count)
		}
	}
	for _, c := range t.classes {
		s.Free += len(c.free)
	}
	return s
}
