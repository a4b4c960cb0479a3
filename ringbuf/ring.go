package ringbuf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
)

// Layout identification.
const (
	// LayoutVersion is the version of the ring and notifier layouts. It
	// changes whenever a size or an offset does.
	LayoutVersion = 2
	// MaxCapacity is the largest ring capacity: positions wrap modulo 2^32,
	// and the distance between head and tail must stay unambiguous.
	MaxCapacity = 1 << 30

	ringMagic     = 0x31474e52584c5050 // "PPLXRNG1" little-endian
	notifierMagic = 0x3146544e584c5050 // "PPLXNTF1" little-endian
)

// waitSlice bounds every futex sleep. A peer that dies between publishing and
// waking (or a lost wake-up from a buggy peer) then costs at most one slice
// of latency instead of a hang; the sleeper re-checks its condition after
// each slice.
const waitSlice = 100 * time.Millisecond

// A Policy says what a push does when the ring is full.
type Policy uint32

// Overflow policies. The zero Policy is invalid so that a zeroed header is
// never mistaken for a formatted one.
const (
	// DiscardOldest makes the producer reclaim the oldest entry and hand it
	// back to its caller, who releases the chunk. Pushes never fail for
	// lack of space.
	DiscardOldest Policy = 1
	// BlockProducer makes TryPush fail with [ErrFull] and Push wait for the
	// consumer to make space.
	BlockProducer Policy = 2
	// Reject makes TryPush and Push fail with [ErrFull] on a full ring: they
	// neither discard nor wait. A connection's return ring uses it: its
	// consumer (the publisher) caps what can be in it, so a full return ring
	// means the consumer broke that cap, and the push fails rather than
	// lose a release or block the subscriber.
	Reject Policy = 3
)

// valid reports whether p is a known policy.
func (p Policy) valid() bool { return p == DiscardOldest || p == BlockProducer || p == Reject }

// String returns the policy name.
func (p Policy) String() string {
	switch p {
	case DiscardOldest:
		return "discard-oldest"
	case BlockProducer:
		return "block-producer"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("policy(%d)", uint32(p))
}

// A HeadWord is the raw head word of a ring: the head position in the low 32
// bits and the number of entries the consumer has popped (modulo 2^32) in the
// high 32 bits. A pop moves (pos, pops) to (pos+1, pops+1); a discard by the
// producer moves it to (pos+1, pops). Both are a single CAS on the word.
type HeadWord uint64

// Pos returns the head position (modulo 2^32).
func (h HeadWord) Pos() uint32 { return uint32(h) }

// Pops returns the consumer's pop count (modulo 2^32).
func (h HeadWord) Pops() uint32 { return uint32(h >> 32) }

func (h HeadWord) popped() HeadWord {
	return HeadWord(uint64(h.Pos()+1) | uint64(h.Pops()+1)<<32)
}

func (h HeadWord) discarded() HeadWord {
	return HeadWord(uint64(h.Pos()+1) | uint64(h.Pops())<<32)
}

// Size returns the number of bytes a ring of the given capacity occupies.
func Size(capacity int) int { return HeaderSize + 8*capacity }

// A Ring is a single-producer single-consumer queue of [parallax.ChunkRef]
// values living in a shared-memory region. See the package documentation for
// the layout and the ordering rules.
//
// Use [Format] or [Attach]; the zero value is invalid. A *Ring may be shared
// by the producer and the consumer goroutines of one process, or each side
// may attach its own *Ring to the same region from different processes.
// Exactly one goroutine (across all processes) may push (TryPush, Push) at a
// time and exactly one may pop (TryPop, PopBatch);
// the remaining methods are safe for concurrent use. A Ring must not be
// copied. It owns no resources: the caller keeps the region mapped for as
// long as the Ring is used.
type Ring struct {
	mem      []byte
	slots    []shmWord64
	mask     uint32
	capacity uint32
	policy   Policy

	head     *shmWord64 // HeadWord
	tail     *shmWord64
	dropped  *shmWord64
	waitFlag *shmWord32
	waitSeq  *shmWord32
	closed   *shmWord32

	// wakeLevel is the consumer's low-water mark (process-local, set by
	// SetWakeLevel before the first pop): a pop wakes a waiting producer
	// only when at most this many entries remain. capacity: every pop.
	wakeLevel uint32

	// Process-local views of the peer's index, so that neither side reads
	// the line the other writes on every operation (each such read is a
	// cache miss once the peer has written it). They are hints: a view is
	// only ever behind the real index, and a view that says "full" or
	// "empty" is refreshed from shared memory. Atomics because a Ring may
	// be used by several goroutines in turn (Go's memory model needs the
	// hand-over); loads compile to plain moves and the stores happen once
	// per refresh. Each sits on its own cache line: producer and consumer
	// of one Ring may be goroutines of this process.
	_        [lineSize]byte
	headView atomic.Uint32 // producer's view of Head.Pos()
	_        [lineSize - 4]byte
	tailView atomic.Uint32 // consumer's view of Tail
	_        [lineSize - 4]byte
}

// Format initialises a ring of the given capacity and policy in mem, which
// must be 8-byte aligned and at least [Size](capacity) bytes long, and
// returns it. capacity must be a power of two between 1 and [MaxCapacity].
// Format must run before any peer attaches: it zeroes the header and slots
// and stores the magic number last, so an [Attach] that sees the magic sees
// a complete header.
func Format(mem []byte, capacity int, policy Policy) (*Ring, error) {
	if capacity < 1 || capacity > MaxCapacity || capacity&(capacity-1) != 0 {
		return nil, fmt.Errorf("format ring: capacity %d is not a power of two in [1, %d]: %w", capacity, MaxCapacity, ErrInvalidArgument)
	}
	if !policy.valid() {
		return nil, fmt.Errorf("format ring: unknown %v: %w", policy, ErrInvalidArgument)
	}
	if len(mem) < Size(capacity) {
		return nil, fmt.Errorf("format ring: region of %d bytes, capacity %d needs %d: %w", len(mem), capacity, Size(capacity), ErrInvalidArgument)
	}
	if !aligned8(mem) {
		return nil, fmt.Errorf("format ring: region is not 8-byte aligned: %w", ErrInvalidArgument)
	}
	mem = mem[:Size(capacity)]
	// Nobody else may use the region yet: plain clearing is fine, and the
	// magic store below publishes it.
	clear(mem)
	word32(mem, offVersion).Store(LayoutVersion)
	word32(mem, offPolicy).Store(uint32(policy))
	word32(mem, offCapacity).Store(uint32(capacity))
	// Release: an Attach that loads the magic sees every store above.
	word64(mem, offMagic).Store(ringMagic)
	return newRing(mem, uint32(capacity), policy), nil
}

// Attach returns the ring formatted in mem, after checking its magic number,
// layout version, policy and capacity against len(mem). Errors wrap
// [parallax.ErrCorrupt]. Attach reads only the header, so it is safe against
// any content; the ring's state words are validated as they are used.
func Attach(mem []byte) (*Ring, error) {
	if len(mem) < HeaderSize {
		return nil, fmt.Errorf("attach ring: region of %d bytes is smaller than the %d-byte header: %w", len(mem), HeaderSize, parallax.ErrCorrupt)
	}
	if !aligned8(mem) {
		return nil, fmt.Errorf("attach ring: region is not 8-byte aligned: %w", parallax.ErrCorrupt)
	}
	// Acquire: pairs with the magic store in Format.
	if m := word64(mem, offMagic).Load(); m != ringMagic {
		return nil, fmt.Errorf("attach ring: bad magic %#x: %w", m, parallax.ErrCorrupt)
	}
	if v := word32(mem, offVersion).Load(); v != LayoutVersion {
		return nil, fmt.Errorf("attach ring: layout version %d, want %d: %w", v, LayoutVersion, parallax.ErrCorrupt)
	}
	policy := Policy(word32(mem, offPolicy).Load())
	if !policy.valid() {
		return nil, fmt.Errorf("attach ring: unknown %v: %w", policy, parallax.ErrCorrupt)
	}
	c := word32(mem, offCapacity).Load()
	if c == 0 || c > MaxCapacity || c&(c-1) != 0 {
		return nil, fmt.Errorf("attach ring: capacity %d is not a power of two in [1, %d]: %w", c, MaxCapacity, parallax.ErrCorrupt)
	}
	if len(mem) < Size(int(c)) {
		return nil, fmt.Errorf("attach ring: region of %d bytes, capacity %d needs %d: %w", len(mem), c, Size(int(c)), parallax.ErrCorrupt)
	}
	return newRing(mem[:Size(int(c))], c, policy), nil
}

func newRing(mem []byte, capacity uint32, policy Policy) *Ring {
	return &Ring{
		mem:      mem,
		slots:    slotWords(mem, uintptr(HeaderSize), int(capacity)),
		mask:     capacity - 1,
		capacity: capacity,
		policy:   policy,
		head:     word64(mem, offHead),
		tail:     word64(mem, offTail),
		dropped:  word64(mem, offDropped),
		waitFlag: word32(mem, offWaitFlag),
		waitSeq:  word32(mem, offWaitSeq),
		closed:   word32(mem, offClosed),

		wakeLevel: capacity,
	}
}

// SetWakeLevel sets the consumer's low-water mark on a [BlockProducer]
// ring: a pop (TryPop, PopBatch) wakes a producer waiting for space only
// when it leaves at most n entries in the ring, instead of at the first
// pop. A producer refilling a full ring then sleeps and is woken once per
// drain of Cap-n entries rather than once per pop (each wake is a futex
// system call here and a context switch there). n is clamped to [0, Cap];
// the default, Cap, wakes at every pop.
//
// Only a consumer that keeps popping while entries are queued (a drain
// loop) should lower it: a consumer that stops with more than n entries
// left leaves the producer asleep, though there is space, until its next
// pop reaches the mark or the producer's own re-check (every 100 ms, see
// Push) finds the space. The mark is local to this *Ring (the consumer's
// view of the shared region) and costs nothing while no producer waits:
// it is looked at only after the wait flag, which every pop loads anyway,
// is found set. Call it before the ring is used, from the consuming side.
func (r *Ring) SetWakeLevel(n int) {
	r.wakeLevel = uint32(min(max(n, 0), int(r.capacity)))
}

// Cap returns the ring's capacity.
func (r *Ring) Cap() int { return int(r.capacity) }

// Policy returns the ring's overflow policy.
func (r *Ring) Policy() Policy { return r.policy }

// Len returns the number of entries in the ring. With concurrent pushes and
// pops it is a snapshot that may already be stale. A ring whose indices are
// impossible (see [Ring.Check]) has no entry anyone can pop: Len is 0.
func (r *Ring) Len() int {
	hw := r.head.Load() // no ordering needed: a snapshot
	tw := r.tail.Load()
	if tw>>32 != 0 {
		return 0
	}
	if n := uint32(tw) - HeadWord(hw).Pos(); n <= r.capacity {
		return int(n)
	}
	if r.head.Load() == hw {
		return 0 // head did not move while we read tail: impossible indices
	}
	return int(r.capacity) // a discard moved head while we read tail: full
}

// Check validates a snapshot of the ring's indices: the tail word's unused
// half is zero and tail is at most a capacity ahead of head (head never
// passes tail). It returns nil or an error wrapping [ErrCorruptRing] that
// names what is wrong. Pops and pushes make the same checks as they go;
// Check is for the router, which inspects rings it does not use.
//
// A live producer that discards moves head while Check reads tail, so Check
// trusts only a snapshot during which head did not change; when head keeps
// moving it gives up and returns nil (whoever pops will see any fault).
func (r *Ring) Check() error {
	for range maxPopRetries {
		hw := r.head.Load() // seq-cst loads: head, tail, head again
		tw := r.tail.Load()
		if tw>>32 != 0 {
			return errTailHigh
		}
		err := r.distance(uint32(tw), HeadWord(hw).Pos())
		if err == nil || r.head.Load() == hw {
			return err
		}
	}
	return nil
}

// distance checks that tail t is at most a capacity ahead of head h.
func (r *Ring) distance(t, h uint32) error {
	if t-h <= r.capacity {
		return nil
	}
	return errDistance
}

// maxPushRetries bounds TryPush's discard loop. With an honest consumer a
// failed discard CAS means it popped, so the next look finds room: two
// rounds at most. More means somebody keeps rewriting head.
const maxPushRetries = 8

// maxPopRetries bounds pop's claim loop. A failed claim means the producer
// discarded the entry (DiscardOldest); losing this many races in a row is
// contention, not corruption, and the pop reports the ring empty for now.
const maxPopRetries = 64

// loadHead loads the shared head word on the producer side (acquire: pairs
// with the consumer's head CAS) and validates it against the producer's own
// tail t, which is exact (only the producer moves it): head may be neither
// past t nor more than a capacity behind it. A valid head becomes the
// producer's view. This is the only place the producer reads the consumer's
// index, so the check costs a compare on a path that already pays for a
// shared load. (The producer reloads head only when its view says full,
// t-view == capacity, so a head that moved backward from the view lands
// more than a capacity behind t and fails the same check.)
func (r *Ring) loadHead(t uint32) (HeadWord, error) {
	hw := HeadWord(r.head.Load())
	if err := r.distance(t, hw.Pos()); err != nil {
		return hw, err
	}
	sys.StoreRelease32(&r.headView, hw.Pos())
	return hw, nil
}

// Dropped returns how many entries the producer has discarded so far
// ([DiscardOldest] only).
func (r *Ring) Dropped() uint64 {
	// Producer-owned counter; any recent value is fine for reporting.
	return r.dropped.Load()
}

// TryPush appends ref without waiting.
//
// On a full [DiscardOldest] ring it first reclaims the oldest entry and
// returns it as discarded: the caller now owns that reference and must
// release it. Exactly one of producer and consumer obtains each entry, even
// while the consumer is popping concurrently. On a full [BlockProducer] ring
// or a full [Reject] ring it returns [ErrFull]. It returns an error wrapping [os.ErrClosed] after
// [Ring.Close], one wrapping [ErrInvalidArgument] for a nil ref and one
// wrapping [ErrCorruptRing] (and [parallax.ErrCorrupt]) when the head word is
// impossible (a faulty peer: see loadHead); the ring is then dead. TryPush
// allocates nothing, takes no lock and makes no system call.
func (r *Ring) TryPush(ref parallax.ChunkRef) (discarded parallax.ChunkRef, err error) {
	if ref == parallax.NilRef {
		return parallax.NilRef, errNilRef
	}
	// Any ordering: Close is advisory for pushes; a push racing with Close
	// may still land, and the consumer drains it.
	if r.closed.Load() != 0 {
		return parallax.NilRef, errRingClosed
	}
	// Producer-owned: only this goroutine stores tail, so the load sees our
	// own last store.
	t := uint32(r.tail.Load())
	// The view of head is a position the consumer had passed when we last
	// loaded it (acquire); head only moves forward, so while the view says
	// there is space, there is. It says nothing useful when it is stale by
	// more than a capacity (first use, or another Ring value moved head).
	if t-r.headView.Load() < r.capacity {
		if t%slotsPerLine == 0 {
			// Entering a new line of slots, which the consumer read a
			// lap ago: ask for it ahead of the stores that need it.
			sys.PrefetchW(r.mem[HeaderSize+int((t+slotsPerLine)&r.mask)*8:])
		}
		// Release only: the seq-cst tail store below publishes it.
		storeRelease(&r.slots[t&r.mask], uint64(ref))
		// Seq-cst: also the store half of Notify's Dekker handshake.
		r.tail.Store(uint64(t + 1))
		return parallax.NilRef, nil
	}
	for i := 0; ; i++ {
		if i == maxPushRetries {
			return parallax.NilRef, errHeadChurn
		}
		// Acquire (loadHead): pairs with the consumer's head CAS. Once head
		// has moved past position t-capacity, the consumer has finished
		// reading slot t&mask (it read the slot before its CAS), so we may
		// overwrite it.
		hw, err := r.loadHead(t)
		if err != nil {
			return parallax.NilRef, err
		}
		if t-hw.Pos() < r.capacity {
			break
		}
		if r.policy != DiscardOldest {
			return parallax.NilRef, ErrFull
		}
		// Full: reclaim the oldest entry. Read the slot first; the CAS
		// decides whether the value is ours. The consumer reads the same
		// slot before its own CAS on the same head word, so exactly one CAS
		// succeeds and exactly one side owns the value.
		old := r.slots[hw.Pos()&r.mask].Load()
		// Seq-cst CAS: on success the entry is ours and position hw.Pos()
		// is free; on failure the consumer popped it, so there is space now
		// (the loop re-reads head).
		if r.head.CompareAndSwap(uint64(hw), uint64(hw.discarded())) {
			discarded = parallax.ChunkRef(old)
			// Producer-owned counter; the atomic lets the consumer read it.
			r.dropped.Add(1)
			break
		}
	}
	// Nobody reads slot t&mask until tail moves past t (the consumer checks
	// tail first; a discarding producer is us). A consumer's stale,
	// CAS-failing read of the same slot may race with it: the store is
	// single-copy atomic (an aligned 8-byte store; atomic in race builds),
	// so that read sees the old or the new ref, never a mix, and discards it.
	storeRelease(&r.slots[t&r.mask], uint64(ref))
	// Release: publishes the slot store above to the consumer, whose load of
	// tail precedes its load of the slot.
	r.tail.Store(uint64(t + 1))
	return discarded, nil
}

// slotsPerLine is the number of 8-byte slots in a 64-byte cache line.
const slotsPerLine = 8

// Full reports whether a push would find no room (the producer's side: it
// reads the shared head only when its own view says full). A producer that
// sees false can push without waiting or discarding: only it adds entries.
// A ring with impossible indices counts as full: the push that follows
// reports the corruption.
func (r *Ring) Full() bool {
	t := uint32(r.tail.Load())
	if t-r.headView.Load() < r.capacity {
		return false
	}
	hw, err := r.loadHead(t)
	return err != nil || t-hw.Pos() >= r.capacity
}

// TryPop removes and returns the oldest entry. It returns [ErrEmpty] when the
// ring is empty, and an error wrapping [ErrCorruptRing] (and
// [parallax.ErrCorrupt]) when the indices are impossible — tail more than a
// capacity ahead of head, head past tail, garbage in the tail word — in
// which case nothing is popped and the ring is dead. On a [BlockProducer]
// ring it wakes a producer that waits for space (a system call made only
// when one waits, and only once the ring is down to [Ring.SetWakeLevel]'s
// mark). TryPop allocates nothing and takes no lock. The returned
// ref comes from shared memory: validate it before use.
//
// A drain loop needs no more than [Ring.Cap] pops: the ring never holds more
// (bound drain loops by it; a producer still pushing cannot keep them going).
func (r *Ring) TryPop() (parallax.ChunkRef, error) {
	for range maxPopRetries {
		// Acquire on both loads. Head first: head never passes tail, so
		// reading tail second keeps tail-head >= 0 (but not <= capacity:
		// see the distance check).
		hw := HeadWord(r.head.Load())
		// The view of tail is a tail we loaded (acquire) and validated
		// earlier: the slots below it were published. Refresh it when it
		// shows no entry at hw.Pos(): empty, stale by more than a
		// capacity, or behind a head that moved backward. Only here do we
		// read the producer's word, so only here is it checked: a
		// compare, on a path that already pays for the shared load.
		if t := r.tailView.Load(); t-hw.Pos()-1 >= r.capacity {
			tw := r.tail.Load()
			if tw>>32 != 0 {
				return parallax.NilRef, errTailHigh
			}
			t = uint32(tw)
			if err := r.distance(t, hw.Pos()); err != nil {
				// Honest only if a discard moved head after we loaded
				// it (then tail may be more than a capacity ahead of
				// our stale head): look again. Head unchanged means
				// head and tail were both current when tail was read.
				if r.head.Load() != uint64(hw) {
					continue
				}
				return parallax.NilRef, err
			}
			if t == hw.Pos() {
				return parallax.NilRef, ErrEmpty
			}
			sys.StoreRelease32(&r.tailView, t)
		}
		// Ordered after the tail load, so the producer's slot store is
		// visible. The value is ours only if the CAS below succeeds.
		v := r.slots[hw.Pos()&r.mask].Load()
		// Seq-cst CAS: claims position hw.Pos() against a discarding
		// producer. Failure means the producer discarded it; retry (at
		// most maxPopRetries times).
		if r.head.CompareAndSwap(uint64(hw), uint64(hw.popped())) {
			// Dekker with Push's wait loop: we stored head (CAS) and now
			// load the flag; the producer stores the flag and then loads
			// head. Go atomics are sequentially consistent, so at least one
			// side sees the other's store: either the producer sees the
			// space or we see the flag and wake it — once the ring is down
			// to the wake level. The tail view is at most the real tail
			// and shows an entry at hw.Pos() (refreshed above otherwise),
			// so view-(pos+1) is in [0, capacity) and never more than what
			// is left: the mark is reached no later than it should be.
			if r.policy == BlockProducer && r.waitFlag.Load() != 0 &&
				r.tailView.Load()-(hw.Pos()+1) <= r.wakeLevel {
				r.wakeProducer()
			}
			return parallax.ChunkRef(v), nil
		}
	}
	// Lost every claim to a discarding producer: report "nothing for now"
	// rather than spin; the entry stays for the next pop.
	return parallax.NilRef, ErrEmpty
}

// wakeProducer clears the wait flag and wakes the producer. Only the CAS
// winner makes the syscall; the producer re-arms the flag before each sleep.
func (r *Ring) wakeProducer() {
	if r.waitFlag.CompareAndSwap(1, 0) {
		// Seq-cst add before the wake: a producer that sampled WaitSeq
		// before arming the flag now fails its FutexWait with EAGAIN or is
		// woken by the call below.
		r.waitSeq.Add(1)
		_, _ = sys.FutexWake(rawWord32(r.waitSeq), math.MaxInt32)
	}
}

// Push appends ref. On a [DiscardOldest] ring it is [Ring.TryPush]. On a
// [BlockProducer] ring it waits for space until ctx is done: an error then
// wraps ctx.Err(), and also [parallax.ErrTimeout] when ctx's deadline passed.
// On a full [Reject] ring it returns [ErrFull] at once.
// It returns an error wrapping [os.ErrClosed] when the ring is closed while
// it waits. The fast path (space available) allocates nothing and makes no
// system call.
func (r *Ring) Push(ctx context.Context, ref parallax.ChunkRef) (discarded parallax.ChunkRef, err error) {
	discarded, err = r.TryPush(ref)
	if err != ErrFull || r.policy == Reject {
		return discarded, err
	}
	deadline, _ := ctx.Deadline()
	return r.pushSlow(ctx, deadline, ref)
}

// PushUntil is [Ring.Push] bounded by a deadline instead of a context (the
// zero time: none): when the deadline passes it returns an error wrapping
// [parallax.ErrTimeout] and [context.DeadlineExceeded]. Unlike Push with a
// cancellable context, it allocates nothing while it waits: it has no
// cancellation to watch.
func (r *Ring) PushUntil(deadline time.Time, ref parallax.ChunkRef) (discarded parallax.ChunkRef, err error) {
	discarded, err = r.TryPush(ref)
	if err != ErrFull || r.policy == Reject {
		return discarded, err
	}
	return r.pushSlow(context.Background(), deadline, ref)
}

// pushSlow waits for space until ctx is done or deadline (zero: none)
// passes. Watching a cancellable ctx allocates; Background costs nothing.
func (r *Ring) pushSlow(ctx context.Context, deadline time.Time, ref parallax.ChunkRef) (parallax.ChunkRef, error) {
	if ctx.Done() != nil {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			r.waitSeq.Add(1) // seq-cst: makes the producer's FutexWait fail or wake
			_, _ = sys.FutexWake(rawWord32(r.waitSeq), math.MaxInt32)
		})
		defer func() {
			if !stop() {
				<-fired // never return while the callback may touch the region
			}
		}()
	}
	hasDeadline := !deadline.IsZero()
	for {
		// Sample the futex word before arming the flag: any wake after the
		// flag is visible changes WaitSeq, so FutexWait cannot miss it.
		seen := r.waitSeq.Load()
		// Dekker: store the flag, then re-check head inside TryPush (see
		// pop). Seq-cst store.
		r.waitFlag.Store(1)
		d, err := r.TryPush(ref)
		if err != ErrFull {
			r.waitFlag.Store(0) // producer-owned when no wake is pending
			return d, err
		}
		if cerr := ctx.Err(); cerr != nil {
			r.waitFlag.Store(0)
			if errors.Is(cerr, context.DeadlineExceeded) {
				return parallax.NilRef, fmt.Errorf("push to full ring: %w: %w", parallax.ErrTimeout, cerr)
			}
			return parallax.NilRef, fmt.Errorf("push to full ring: %w", cerr)
		}
		if hasDeadline && !time.Now().Before(deadline) {
			r.waitFlag.Store(0)
			return parallax.NilRef, fmt.Errorf("push to full ring: %w: %w", parallax.ErrTimeout, context.DeadlineExceeded)
		}
		timeout := waitSlice
		if hasDeadline {
			timeout = min(timeout, max(time.Until(deadline), time.Microsecond))
		}
		// nil, EAGAIN (word changed), EINTR and ETIMEDOUT all mean "look
		// again"; anything else is a broken futex word.
		if err := sys.FutexWait(rawWord32(r.waitSeq), seen, timeout); err != nil &&
			!errors.Is(err, sys.EAGAIN) && !errors.Is(err, sys.EINTR) && !errors.Is(err, sys.ETIMEDOUT) {
			r.waitFlag.Store(0)
			return parallax.NilRef, fmt.Errorf("wait for ring space: %w", err)
		}
	}
}

// Close marks the ring closed: pushes fail with an error wrapping
// [os.ErrClosed] and a producer blocked in [Ring.Push] returns with it. Pops
// keep working so the consumer (or the router) can drain the entries. Close
// is idempotent and safe to call from any process.
func (r *Ring) Close() error {
	// Seq-cst swap; only the first Close wakes.
	if r.closed.Swap(1) == 0 {
		r.waitSeq.Add(1)
		if _, err := sys.FutexWake(rawWord32(r.waitSeq), math.MaxInt32); err != nil {
			return fmt.Errorf("wake producer on close: %w", err)
		}
	}
	return nil
}

// Closed reports whether [Ring.Close] was called (by any process).
func (r *Ring) Closed() bool { return r.closed.Load() != 0 }

// Head returns the raw head word.
func (r *Ring) Head() HeadWord { return HeadWord(r.head.Load()) }

// Tail returns the tail position (modulo 2^32).
func (r *Ring) Tail() uint32 { return uint32(r.tail.Load()) }

// TailWord returns the raw tail word: the position in the low 32 bits, and
// high bits an honest producer leaves zero.
func (r *Ring) TailWord() uint64 { return r.tail.Load() }
