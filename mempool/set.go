package mempool

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/parallax-ipc/parallax"
)

// SetOptions configure a [Set]. The zero value is the default.
type SetOptions struct {
	// AllowLarger lets [Set.Loan] fall back to the next larger size class
	// when every pool of the smallest fitting class is exhausted. By
	// default it returns [parallax.ErrPoolExhausted] instead, so a burst in
	// one class cannot drain the others.
	AllowLarger bool
}

// A Set indexes the pools of a domain by pool id and by size class, and
// routes loans to the smallest class that fits.
//
// The zero value is an empty set with default options, ready to use; use
// [NewSet] for other options. A Set must not be copied after first use. It is
// safe for concurrent use: [Set.Add] may run while other goroutines loan and
// release, which read an immutable snapshot (copy-on-write behind an atomic
// pointer) and never block. A Set owns no memory and has no Close.
type Set struct {
	opts  SetOptions
	mu    sync.Mutex // serialises writers (Add); readers never take it
	state atomic.Pointer[setState]
}

// setState is an immutable snapshot of a Set's pools.
type setState struct {
	byID    []*Pool     // indexed by pool id; nil entries for unknown ids
	classes []sizeClass // ascending chunk size
}

// sizeClass groups the pools of one chunk size, in the order they were
// added (a grown class appends a pool).
type sizeClass struct {
	size  uint32
	pools []*Pool
}

// NewSet returns an empty set with the given options.
func NewSet(opts SetOptions) *Set { return &Set{opts: opts} }

// Add adds p to the set. Pools of an existing chunk size extend that class
// (a router grows a class by adding a pool in a new segment). Adding a pool
// id twice fails with [ErrDuplicatePool].
func (s *Set) Add(p *Pool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.state.Load()
	if old == nil {
		old = &setState{}
	}
	id := int(p.ID())
	if id < len(old.byID) && old.byID[id] != nil {
		return fmt.Errorf("add pool %d: %w", id, ErrDuplicatePool)
	}
	next := &setState{
		byID:    slices.Clone(old.byID),
		classes: make([]sizeClass, 0, len(old.classes)+1),
	}
	if id >= len(next.byID) {
		next.byID = append(next.byID, make([]*Pool, id+1-len(next.byID))...)
	}
	next.byID[id] = p
	added := false
	for _, c := range old.classes {
		if !added && p.chunkSize < c.size {
			next.classes = append(next.classes, sizeClass{size: p.chunkSize, pools: []*Pool{p}})
			added = true
		}
		if c.size == p.chunkSize {
			c.pools = append(slices.Clip(c.pools), p) // clip: never write into the old snapshot's array
			added = true
		}
		next.classes = append(next.classes, c)
	}
	if !added {
		next.classes = append(next.classes, sizeClass{size: p.chunkSize, pools: []*Pool{p}})
	}
	s.state.Store(next) // release: readers that load next see the fully built snapshot
	return nil
}

// Remove takes the pool with the given id out of the set and returns it,
// or nil when the set has no such pool. Readers that loaded the previous
// snapshot may still use the pool for a moment: a caller that unmaps the
// pool's memory afterwards must give them time (or know that nobody holds
// a reference into it).
func (s *Set) Remove(id uint16) *Pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.state.Load()
	if old == nil || int(id) >= len(old.byID) || old.byID[id] == nil {
		return nil
	}
	p := old.byID[id]
	next := &setState{byID: slices.Clone(old.byID), classes: make([]sizeClass, 0, len(old.classes))}
	next.byID[id] = nil
	for _, c := range old.classes {
		if c.size == p.chunkSize {
			c.pools = slices.DeleteFunc(slices.Clone(c.pools), func(q *Pool) bool { return q == p })
			if len(c.pools) == 0 {
				continue
			}
		}
		next.classes = append(next.classes, c)
	}
	s.state.Store(next) // release, as in Add
	return p
}

func (s *Set) snapshot() *setState {
	if st := s.state.Load(); st != nil { // acquire: pairs with Add's Store
		return st
	}
	return &emptyState
}

var emptyState setState

// Pool returns the pool with the given id, or nil.
func (s *Set) Pool(id uint16) *Pool {
	st := s.snapshot()
	if int(id) < len(st.byID) {
		return st.byID[id]
	}
	return nil
}

// Pools returns the pools in ascending chunk size, then in the order added.
func (s *Set) Pools() []*Pool {
	var out []*Pool
	for _, c := range s.snapshot().classes {
		out = append(out, c.pools...)
	}
	return out
}

// Loan takes a chunk of at least n bytes for owner from the smallest size
// class whose chunk size is >= n, trying that class's pools in order. If all
// of them are exhausted it returns at once an error wrapping
// [parallax.ErrPoolExhausted] and counts one failed loan on the class's first
// pool (unless [SetOptions.AllowLarger] is set and a larger class has a free
// chunk). A request larger than every class fails with [ErrTooLarge].
//
// Loan takes no lock, makes no syscall and allocates nothing (except for the
// ErrTooLarge error).
func (s *Set) Loan(n int, owner uint16) (parallax.ChunkRef, error) {
	classes := s.snapshot().classes
	first := -1
	for i := range classes {
		if int64(classes[i].size) >= int64(n) {
			first = i
			break
		}
	}
	if first < 0 {
		return parallax.NilRef, fmt.Errorf("loan %d bytes: %w", n, ErrTooLarge)
	}
	last := first
	if s.opts.AllowLarger {
		last = len(classes) - 1
	}
	for i := first; i <= last; i++ {
		for _, p := range classes[i].pools {
			if ref, ok := p.tryLoan(owner); ok {
				return ref, nil
			}
		}
	}
	atomic.AddUint64(&classes[first].pools[0].stats.failedLoans, 1) // statistic only
	return parallax.NilRef, errExhausted
}

// lookup returns the pool ref names.
func (s *Set) lookup(op string, ref parallax.ChunkRef) (*Pool, error) {
	if p := s.Pool(uint16(ref.Pool())); p != nil {
		return p, nil
	}
	return nil, refErr(op, ref, parallax.ErrInvalidRef)
}

// AddRef is [Pool.AddRef] on the pool ref names.
func (s *Set) AddRef(ref parallax.ChunkRef, n uint32) error {
	p, err := s.lookup("addref", ref)
	if err != nil {
		return err
	}
	return p.AddRef(ref, n)
}

// Release is [Pool.Release] on the pool ref names.
func (s *Set) Release(ref parallax.ChunkRef) (freed bool, err error) {
	p, err := s.lookup("release", ref)
	if err != nil {
		return false, err
	}
	return p.Release(ref)
}

// Validate is [Pool.Validate] on the pool ref names; an unknown pool wraps
// [parallax.ErrInvalidRef].
func (s *Set) Validate(ref parallax.ChunkRef) error {
	p, err := s.lookup("validate", ref)
	if err != nil {
		return err
	}
	return p.Validate(ref)
}

// Payload is [Pool.Payload] on the pool ref names.
func (s *Set) Payload(ref parallax.ChunkRef) ([]byte, error) {
	p, err := s.lookup("payload", ref)
	if err != nil {
		return nil, err
	}
	return p.Payload(ref)
}

// Data is [Pool.Data] on the pool ref names.
func (s *Set) Data(ref parallax.ChunkRef) ([]byte, error) {
	p, err := s.lookup("data", ref)
	if err != nil {
		return nil, err
	}
	return p.Data(ref)
}

// View is [Pool.View] on the pool ref names.
func (s *Set) View(ref parallax.ChunkRef) ([]byte, Meta, error) {
	p, err := s.lookup("view", ref)
	if err != nil {
		return nil, Meta{}, err
	}
	return p.View(ref)
}

// Meta is [Pool.Meta] on the pool ref names.
func (s *Set) Meta(ref parallax.ChunkRef) (Meta, error) {
	p, err := s.lookup("meta", ref)
	if err != nil {
		return Meta{}, err
	}
	return p.Meta(ref)
}

// SetMeta is [Pool.SetMeta] on the pool ref names.
func (s *Set) SetMeta(ref parallax.ChunkRef, m Meta) error {
	p, err := s.lookup("setmeta", ref)
	if err != nil {
		return err
	}
	return p.SetMeta(ref, m)
}

// Stats returns the statistics of every pool, in [Set.Pools] order.
func (s *Set) Stats() []Stats {
	pools := s.Pools()
	out := make([]Stats, len(pools))
	for i, p := range pools {
		out[i] = p.Stats()
	}
	return out
}
