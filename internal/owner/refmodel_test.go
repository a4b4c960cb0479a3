package owner

import (
	"slices"

	"github.com/parallax-ipc/parallax"
)

// model is a deliberately simple reference for a Tracker: maps and slices,
// no bitsets, no counters kept incrementally. Its free stacks state the
// LIFO rule directly: a chunk is appended when its last holder lets go, and
// the last element is the next loan.
type model struct {
	cfg     Config
	segs    map[uint16]mSeg
	class   []uint32 // chunk size per class
	chunkOf []mChunk // by global index
	loaned  map[uint32]bool
	hist    []uint32 // oldest first
	conns   []*mConn
	free    [][]uint32
}

type mSeg struct{ base, count uint32 }

type mChunk struct {
	seg   uint16
	slot  uint32
	class int
	gen   uint32
}

type mConn struct {
	id    uint32
	bound int
	state uint8
	bits  map[uint32]bool
}

func newModel(cfg Config) *model {
	return &model{cfg: cfg, segs: map[uint16]mSeg{}, loaned: map[uint32]bool{}}
}

func (m *model) held(idx uint32) bool {
	if m.loaned[idx] || slices.Contains(m.hist, idx) {
		return true
	}
	for _, c := range m.conns {
		if c.bits[idx] {
			return true
		}
	}
	return false
}

func (m *model) units(idx uint32) uint32 {
	n := uint32(0)
	if m.loaned[idx] {
		n++
	}
	if slices.Contains(m.hist, idx) {
		n++
	}
	for _, c := range m.conns {
		if c.bits[idx] {
			n++
		}
	}
	return n
}

// let is called after a unit of idx went away.
func (m *model) let(idx uint32) {
	if !m.held(idx) {
		cl := m.chunkOf[idx].class
		m.free[cl] = append(m.free[cl], idx)
	}
}

func (m *model) addSegment(index uint16, size, count uint32) string {
	if _, ok := m.segs[index]; ok || size == 0 || count == 0 || count > parallax.MaxSlots {
		return "segment"
	}
	cl := slices.Index(m.class, size)
	if cl < 0 {
		cl = len(m.class)
		m.class = append(m.class, size)
		m.free = append(m.free, nil)
	}
	base := uint32(len(m.chunkOf))
	m.segs[index] = mSeg{base, count}
	var fresh []uint32
	for s := range count {
		m.chunkOf = append(m.chunkOf, mChunk{seg: index, slot: s, class: cl})
		fresh = append([]uint32{base + s}, fresh...) // slot 0 ends up on top of the new ones
	}
	m.free[cl] = append(fresh, m.free[cl]...)
	return ""
}

func (m *model) loan(cl int) (uint32, parallax.ChunkRef, string) {
	switch {
	case cl < 0 || cl >= len(m.class):
		return 0, 0, "class"
	case m.cfg.MaxLoans > 0 && len(m.loaned) >= m.cfg.MaxLoans:
		return 0, 0, "limit"
	case len(m.free[cl]) == 0:
		return 0, 0, "exhausted"
	}
	idx := m.free[cl][len(m.free[cl])-1]
	m.free[cl] = m.free[cl][:len(m.free[cl])-1]
	ch := &m.chunkOf[idx]
	ch.gen = parallax.NextGen(ch.gen)
	m.loaned[idx] = true
	return idx, parallax.MakeRef(uint32(ch.seg), ch.slot, ch.gen), ""
}

func (m *model) published(idx uint32, unloan bool) string {
	if !m.loaned[idx] {
		return "notloaned"
	}
	if unloan && m.units(idx) != 1 {
		return "delivered"
	}
	delete(m.loaned, idx)
	m.let(idx)
	return ""
}

func (m *model) deliver(c *mConn, idx uint32) string {
	switch {
	case c.state != connLive:
		return "closed"
	case !m.loaned[idx] && !slices.Contains(m.hist, idx):
		return "notloaned"
	case c.bits[idx]:
		return "delivered"
	case len(c.bits) >= c.bound:
		return "bound"
	}
	c.bits[idx] = true
	return ""
}

func (m *model) historyPush(idx uint32) string {
	switch {
	case m.cfg.History == 0:
		return ""
	case !m.loaned[idx]:
		return "notloaned"
	case slices.Contains(m.hist, idx):
		return "delivered"
	}
	if len(m.hist) == m.cfg.History {
		old := m.hist[0]
		m.hist = m.hist[1:]
		m.let(old)
	}
	m.hist = append(m.hist, idx)
	return ""
}

func (m *model) ret(c *mConn, ref parallax.ChunkRef) string {
	s, ok := m.segs[uint16(ref.Pool())]
	if ref.Pool() >= 1<<16 || !ok || ref.Slot() >= s.count || ref.Gen() == 0 {
		return "invalid"
	}
	idx := s.base + ref.Slot()
	if !c.bits[idx] {
		return "notheld"
	}
	if m.chunkOf[idx].gen != ref.Gen() {
		return "stale"
	}
	delete(c.bits, idx)
	m.let(idx)
	return ""
}

func (m *model) reclaim(c *mConn) int {
	if c.state == connGone {
		return 0
	}
	idxs := sortedKeys(c.bits)
	for _, idx := range idxs {
		delete(c.bits, idx)
		m.let(idx)
	}
	c.state = connGone
	return len(idxs)
}

// live returns the connections that accept deliveries.
func (m *model) live() []int {
	var l []int
	for i, c := range m.conns {
		if c.state == connLive {
			l = append(l, i)
		}
	}
	return l
}

// withBits returns the connections with chunks outstanding.
func (m *model) withBits() []int {
	var w []int
	for i, c := range m.conns {
		if len(c.bits) > 0 {
			w = append(w, i)
		}
	}
	return w
}

func sortedKeys(s map[uint32]bool) []uint32 {
	var k []uint32
	for i := range s {
		k = append(k, i)
	}
	slices.Sort(k)
	return k
}
