package buffer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/segment"
)

// DefaultClasses are the size classes of a [Pool] built with zero
// [PoolOptions]: 26 MiB of address space, touched only as used.
var DefaultClasses = []mempool.Class{
	{ChunkSize: 256, Count: 1024},
	{ChunkSize: 4 << 10, Count: 512},
	{ChunkSize: 64 << 10, Count: 128},
	{ChunkSize: 1 << 20, Count: 16},
}

// PoolOptions configure a [Pool]. The zero value is the default.
type PoolOptions struct {
	// Classes are the size classes; nil means [DefaultClasses].
	Classes []mempool.Class
	// Block makes Alloc wait (until its context is done) for a chunk of the
	// fitting class to be released when all are in use. By default Alloc
	// falls back to Go memory instead and counts it in
	// [PoolStats].HeapFallbacks; requests larger than every class always
	// fall back.
	Block bool
}

// PoolStats counts a pool's activity.
type PoolStats struct {
	Allocs        uint64 // allocations served from a chunk
	HeapFallbacks uint64 // allocations served from Go memory
	Waits         uint64 // allocations that had to wait for a free chunk
	InUse         int64  // chunks held now
}

// Pool is an [Allocator] over size-class chunk pools (package mempool) laid
// out in one heap segment ([segment.NewHeap]). Each chunk has one [Memory]
// struct, re-armed on every allocation, so allocating and releasing buffers
// allocates nothing.
//
// Use [NewPool]; the zero value is invalid. A Pool is safe for concurrent use
// and must not be copied. Close unmaps the segment; it refuses (with
// [ErrInUse]) while buffers are held.
type Pool struct {
	seg     *segment.Heap
	set     mempool.Set
	mems    [][]Memory // [pool id][slot]
	bases   []int      // [pool id] offset of the class's payload in seg
	block   bool
	closed  atomic.Bool
	waiters atomic.Int32
	wake    chan struct{}

	fallbacks, waits atomic.Uint64
}

// Close must not race with Alloc: the owner closes the pool after its users
// stopped allocating.

// NewPool maps one heap segment holding every class's chunks and formats
// the pools.
func NewPool(opts PoolOptions) (_ *Pool, err error) {
	classes := opts.Classes
	if classes == nil {
		classes = DefaultClasses
	}
	if len(classes) == 0 || len(classes) > parallax.MaxPools {
		return nil, fmt.Errorf("create buffer pool with %d classes: %w", len(classes), mempool.ErrBadClass)
	}
	total := 0
	for _, c := range classes {
		if mempool.MgmtSize(c) == 0 {
			return nil, fmt.Errorf("create buffer pool: class %v: %w", c, mempool.ErrBadClass)
		}
		total += c.PayloadSize()
	}
	seg, err := segment.NewHeap(total)
	if err != nil {
		return nil, fmt.Errorf("create buffer pool: %w", err)
	}
	p := &Pool{seg: seg, block: opts.Block, wake: make(chan struct{}, 1), mems: make([][]Memory, len(classes))}
	off := 0
	mem := seg.Bytes()
	for i, c := range classes {
		mp, err := mempool.Format(mempool.HeapRegion(mempool.MgmtSize(c)), uint16(i), c)
		if err == nil {
			err = mp.SetPayload(mem[off : off+c.PayloadSize()])
		}
		if err == nil {
			err = p.set.Add(mp)
		}
		if err != nil {
			seg.Close()
			return nil, fmt.Errorf("create buffer pool: class %v: %w", c, err)
		}
		p.mems[i] = make([]Memory, c.Count)
		p.bases = append(p.bases, off)
		off += c.PayloadSize()
	}
	return p, nil
}

// Alloc returns a buffer of n bytes from the smallest class that fits (see
// [PoolOptions] for exhaustion). It allocates nothing when served from a
// chunk.
func (p *Pool) Alloc(ctx context.Context, n int) (*Buffer, error) {
	if p.closed.Load() {
		return nil, fmt.Errorf("allocate %d bytes: %w", n, ErrClosed)
	}
	if n < 0 {
		return nil, fmt.Errorf("allocate %d bytes: %w", n, ErrRange)
	}
	ref, err := p.set.Loan(n, 0)
	if err != nil && p.block && errors.Is(err, parallax.ErrPoolExhausted) {
		ref, err = p.wait(ctx, n)
	}
	if err != nil {
		if errors.Is(err, parallax.ErrPoolExhausted) || errors.Is(err, mempool.ErrTooLarge) {
			p.fallbacks.Add(1)
			return Heap{}.Alloc(ctx, n)
		}
		return nil, fmt.Errorf("allocate %d bytes: %w", n, err)
	}
	data, err := p.set.Payload(ref)
	if err != nil { // cannot happen for a ref just loaned
		_, _ = p.set.Release(ref)
		return nil, fmt.Errorf("allocate %d bytes: %w", n, err)
	}
	m := &p.mems[ref.Pool()][ref.Slot()]
	segOff := p.bases[ref.Pool()] + int(ref.Slot())*len(data)
	m.Init(data, p, p.seg, segOff, ref)
	return m.NewBuffer(n), nil
}

// wait blocks until a chunk of the class is released or ctx is done.
func (p *Pool) wait(ctx context.Context, n int) (parallax.ChunkRef, error) {
	p.waits.Add(1)
	p.waiters.Add(1)
	defer p.waiters.Add(-1)
	for {
		// Registered as a waiter before retrying, so a Free after this
		// Loan fails sees waiters > 0 and signals.
		ref, err := p.set.Loan(n, 0)
		if err == nil || !errors.Is(err, parallax.ErrPoolExhausted) {
			return ref, err
		}
		if p.closed.Load() {
			return 0, ErrClosed
		}
		select {
		case <-p.wake:
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for a free chunk: %w", context.Cause(ctx))
		}
	}
}

// Free returns a chunk to its pool ([Owner]). Buffers call it.
func (p *Pool) Free(m *Memory) {
	if _, err := p.set.Release(m.ref); err != nil {
		panic(fmt.Sprintf("buffer: pool release of %v: %v", m.ref, err))
	}
	if p.waiters.Load() > 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	s := PoolStats{HeapFallbacks: p.fallbacks.Load(), Waits: p.waits.Load()}
	for _, ps := range p.set.Stats() {
		s.Allocs += ps.Loans
		s.InUse += int64(ps.InUse)
	}
	return s
}

// Classes describes the pool's size classes, for logs.
func (p *Pool) String() string {
	var s []string
	for _, mp := range p.set.Pools() {
		s = append(s, mp.Class().String())
	}
	return "pool(" + strings.Join(s, ", ") + ")"
}

// Close unmaps the pool's segment. It fails with [ErrInUse], and changes
// nothing, while buffers from the pool are held. It is idempotent.
func (p *Pool) Close() error {
	if n := p.Stats().InUse; n > 0 {
		return fmt.Errorf("close buffer pool: %d %w", n, ErrInUse)
	}
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return p.seg.Close()
}
