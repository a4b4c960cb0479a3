package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/rpclink"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// Options configure a [Publisher]. The zero value is a valid default: the
// router of $PARALLAX_DOMAIN (or "default"), an untyped byte payload, no
// history.
type Options struct {
	// Domain and Socket select the router ("" = defaults).
	Domain, Socket string
	// TypeName, TypeSize and TypeAlign describe the payload type; a
	// subscriber that asks for a different type is refused with
	// parallax.ErrIncompatibleType. TypeSize 0 means variable-size bytes.
	TypeName  string
	TypeSize  uint32
	TypeAlign uint32
	// History keeps the last History samples for subscribers that join
	// later and ask for history.
	History int
	// BlockTimeout bounds how long Publish waits for space on a
	// block-producer subscriber's full queue; 0 means 1 s. When it passes,
	// that subscriber misses the sample and Publish returns an error
	// wrapping parallax.ErrTimeout (the others got it).
	BlockTimeout time.Duration
	// Spin is how long Publish keeps retrying a full block-producer queue
	// (yielding now and then, so a consumer on the same core can run)
	// before it sleeps on the queue's futex, measured on the monotonic
	// clock so it means the same on every machine. 0 means [DefaultSpin];
	// a negative value disables spinning: Publish sleeps at once. A
	// consumer that is awake frees a slot within microseconds, and each
	// sleep costs the consumer a wake system call per slot it frees.
	Spin time.Duration
	// MaxPayload, MaxLoans and ExpectedSubscribers size the publisher's own
	// data segment in the owned memory model (router [memory] model =
	// "owned"): the chunk size of an untyped publisher (a larger Loan
	// fails), the chunks loaned and not yet published or released at once
	// (a Loan beyond fails with an error wrapping parallax.ErrLimit), and
	// the subscribers the first segment makes room for. 0 means the
	// router's [publishers] defaults (4 KiB, 4, 1); MaxLoans 0 also means
	// the publisher itself caps no loans. A Loan that finds no free chunk
	// (within MaxLoans), or one larger than MaxPayload, gets more memory
	// from the router (see the package doc, "Memory"). The shared model
	// ignores them.
	MaxPayload          int
	MaxLoans            int
	ExpectedSubscribers int
	// RetireAfter is how long a dedicated segment (made for loans larger
	// than MaxPayload) stays completely free before the publisher gives
	// it back to the router, in the owned model. 0 means
	// [DefaultRetireAfter]; a negative value keeps dedicated segments
	// until Close.
	RetireAfter time.Duration
}

// DefaultSpin is the spin budget of a zero [Options.Spin].
const DefaultSpin = 20 * time.Microsecond

// A Publisher publishes samples on one topic. Use [New]; the zero value is
// invalid. Loan, Publish and Send must not be called concurrently (doing
// so returns an error wrapping parallax.ErrConcurrentUse); Close may be
// called from any goroutine and is idempotent.
type Publisher struct {
	rt    *clientrt.Runtime
	pools *mempool.Set
	id    uint32
	topic string
	owner uint16
	opts  Options

	// state serialises the publishing goroutine (stPublishing) with the
	// control goroutine that adds and removes connections (stControl).
	state atomic.Uint32
	conns atomic.Pointer[[]*conn]
	seq   uint64

	history []held // ring of the last len(history) refs, each held once
	holds   *mempool.HoldTable
	histN   int // refs in history
	histAt  int // next write index

	changed   clientrt.Signal
	published atomic.Uint64
	// delivered counts pushes into subscribers' rings, added once per
	// publish (beside published, on the same line); pushed counts them
	// within one publish (owned by the publishing goroutine).
	delivered atomic.Uint64
	pushed    int
	// unconnected counts publishes made with no connection at all (the
	// samples nobody could receive); added only on that path.
	unconnected atomic.Uint64
	timeouts    atomic.Uint64
	// corruptConns counts connections whose ring was found corrupt
	// (corrupt.go).
	corruptConns atomic.Uint64
	// removed counts connections that ended (control path only).
	removed   atomic.Uint64
	closeOnce sync.Once
	closed    atomic.Bool
	// own is the owned-model state (owned.go), nil in the shared model;
	// set once, before the endpoint sees its first connection.
	own atomic.Pointer[owned]
	// loans counts the runtime shares of chunks loaned and not yet
	// published or released, plus one while Close or a late Release
	// works: a loan made before Close can still be published (refused)
	// or released.
	loans clientrt.Shares
	// link is package rpc's (internal/rpclink), nil for a pub/sub
	// publisher.
	link *rpclink.Pub
}

// share takes a share of the runtime, or reports false when it is gone.
func (p *Publisher) share() bool { return p.loans.Take() }

// loanDone ends one share; the last one after Close releases this
// publisher's share of the process runtime.
func (p *Publisher) loanDone() {
	if p.loans.Drop(&p.closed) {
		if p.own.Load() != nil {
			p.rt.CloseOwnedPublisher(p.id) // no loan touches the segments any more
		}
		p.rt.Release()
	}
}

// blockSpinPause bounds the spin-wait hints between two TryPush attempts
// on a full block-producer queue, and blockSpinYield is how many attempts
// go between two yields of the processor.
const (
	blockSpinPause = 4
	blockSpinYield = 64
)

const (
	stIdle uint32 = iota
	stPublishing
	stControl
)

// held is a reference recorded in the process's hold table.
type held struct {
	ref  parallax.ChunkRef
	hold int
}

type conn struct {
	id       uint32
	sub      uint32
	ring     *ringbuf.Ring
	notifier *ringbuf.Notifier
	block    bool
	dropped  atomic.Uint64        // samples this publisher discarded (oldest) or timed out on
	added    wire.ConnectionAdded // as the router announced it (for resuming)
	corrupt  atomic.Bool          // the ring's indices were found impossible (corrupt.go)

	// The block-producer spin (pushBlocking), owned by the publishing
	// goroutine: spinPush is a cached method value, so spinning allocates
	// nothing.
	spinPush  func() bool
	spinRef   parallax.ChunkRef
	spinOld   parallax.ChunkRef
	spinErr   error
	spinLooks int
}

// trySpinPush is one attempt of the block-producer spin: it reports true
// when the push of spinRef is done (or failed for another reason than a
// full ring), with its outcome in spinOld and spinErr.
func (c *conn) trySpinPush() bool {
	old, err := c.ring.TryPush(c.spinRef)
	if !errors.Is(err, ringbuf.ErrFull) {
		c.spinOld, c.spinErr = old, err
		return true
	}
	if c.spinLooks++; c.spinLooks%blockSpinYield == 0 {
		spinYield()
	}
	return false
}

// New creates a publisher on topic.
func New(ctx context.Context, topic string, opts Options) (_ *Publisher, err error) {
	if err := wire.ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("publisher: %w", err) // wraps parallax.ErrInvalidArgument
	}
	if opts.History < 0 {
		return nil, fmt.Errorf("publisher %q: negative history %d: %w", topic, opts.History, parallax.ErrInvalidArgument)
	}
	if opts.MaxPayload < 0 || opts.MaxPayload > wire.MaxPayloadSize || opts.MaxLoans < 0 || opts.MaxLoans > wire.MaxLoansLimit ||
		opts.ExpectedSubscribers < 0 || opts.ExpectedSubscribers > wire.MaxExpectedSubs {
		return nil, fmt.Errorf("publisher %q: max payload %d (limit %d), max loans %d (limit %d) or expected subscribers %d (limit %d) out of range: %w",
			topic, opts.MaxPayload, wire.MaxPayloadSize, opts.MaxLoans, wire.MaxLoansLimit, opts.ExpectedSubscribers, wire.MaxExpectedSubs, parallax.ErrInvalidArgument)
	}
	if opts.BlockTimeout <= 0 {
		opts.BlockTimeout = time.Second
	}
	if opts.Spin == 0 {
		opts.Spin = DefaultSpin
	}
	link := rpclink.PubFrom(ctx) // package rpc's endpoints only
	if link != nil && opts.History != 0 {
		return nil, fmt.Errorf("publisher %q: history on a request/response endpoint: %w", topic, parallax.ErrInvalidArgument)
	}
	rt, err := clientrt.Acquire(ctx, clientrt.Options{Domain: opts.Domain, Socket: opts.Socket})
	if err != nil {
		return nil, fmt.Errorf("publisher %q: %w", topic, err)
	}
	p := &Publisher{rt: rt, topic: topic, owner: rt.ClientID(), opts: opts, holds: rt.Holds(), link: link}
	var kind uint8
	if link != nil {
		kind = link.Kind
	}
	p.conns.Store(&[]*conn{})
	if opts.History > 0 {
		p.history = make([]held, opts.History)
	}
	rt.BeginCreate()
	defer rt.EndCreate()
	pc, files, err := clientrt.Create[*wire.PublisherCreated](ctx, rt, &wire.CreatePublisher{Topic: topic, History: uint32(opts.History),
		Type:       wire.TypeInfo{Name: opts.TypeName, Size: opts.TypeSize, Align: opts.TypeAlign},
		MaxPayload: uint32(opts.MaxPayload), MaxLoans: uint32(opts.MaxLoans), ExpectedSubscribers: uint16(opts.ExpectedSubscribers), Kind: kind})
	if err != nil {
		rt.Release()
		return nil, fmt.Errorf("create publisher on %q: %w", topic, err)
	}
	p.id = pc.PubID
	if rt.Owned() {
		for _, f := range files { // the owned model grants no router-wide pools
			_ = f.Close()
		}
	} else if p.pools, err = rt.Grant(pc.Segments, files, false); err != nil {
		_ = p.closeRemote()
		rt.Release()
		return nil, fmt.Errorf("create publisher on %q: %w", topic, err)
	}
	if rt.Owned() {
		// The data segments came before the reply; wait until the push
		// goroutine mapped them, before any connection reaches us.
		err := rt.Wired(ctx)
		if err == nil {
			err = p.initOwned() // owned.go
		}
		if err != nil {
			_ = p.closeRemote()
			rt.CloseOwnedPublisher(p.id)
			rt.Release()
			return nil, fmt.Errorf("create publisher on %q: %w", topic, err)
		}
	}
	rt.RegisterPublisher(p.id, endpoint{p})
	if err := rt.Wired(ctx); err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("wire %q: %w", topic, err)
	}
	if o := p.own.Load(); o != nil {
		p.waitOwnedWired(ctx, o) // owned.go
	}
	return p, nil
}

// ID returns the router-assigned publisher id (the origin in sample headers).
func (p *Publisher) ID() uint32 { return p.id }

// Topic returns the topic name.
func (p *Publisher) Topic() string { return p.topic }

// Subscribers returns the number of subscribers currently connected.
func (p *Publisher) Subscribers() int {
	if o := p.own.Load(); o != nil {
		return int(o.live.Load())
	}
	return len(*p.conns.Load())
}

// WaitForSubscribers waits until at least n subscribers are connected, or
// ctx ends.
func (p *Publisher) WaitForSubscribers(ctx context.Context, n int) error {
	if err := p.changed.Wait(ctx, func() bool { return p.Subscribers() >= n }); err != nil {
		return fmt.Errorf("publisher %q: wait for %d subscribers (have %d): %w", p.topic, n, p.Subscribers(), err)
	}
	return nil
}

// Published returns the number of samples published.
func (p *Publisher) Published() uint64 { return p.published.Load() }

// Dropped returns the samples that subscribers missed because of this
// publisher's discards (discard-oldest) or block timeouts.
func (p *Publisher) Dropped() uint64 {
	if p.own.Load() != nil {
		return p.Stats().Dropped
	}
	var n uint64
	for _, c := range *p.conns.Load() {
		n += c.dropped.Load()
	}
	return n + p.timeouts.Load()
}

// enter claims the publishing side; the control goroutine may hold it
// briefly while it changes connections.
func (p *Publisher) enter() error {
	for {
		if p.state.CompareAndSwap(stIdle, stPublishing) {
			return nil
		}
		switch p.state.Load() {
		case stPublishing:
			return fmt.Errorf("publisher %q: %w", p.topic, parallax.ErrConcurrentUse)
		default:
			spinYield()
		}
	}
}

func (p *Publisher) exit() { p.state.Store(stIdle) }

// control runs fn while holding off the publishing goroutine.
func (p *Publisher) control(fn func()) {
	for !p.state.CompareAndSwap(stIdle, stControl) {
		spinYield()
	}
	defer p.state.Store(stIdle)
	fn()
}

// A Chunk is a loaned piece of shared memory. Its bytes alias the pool
// and are only valid until it is published or released. A Chunk is a small
// value; copying it does not copy the loan (publish or release it once).
type Chunk struct {
	ref  parallax.ChunkRef
	buf  []byte
	hold int           // entry in the process's hold table
	ol   ownedpub.Loan // the engine's loan, in the owned model
}

// Bytes returns the chunk's payload bytes (in shared memory).
func (c Chunk) Bytes() []byte { return c.buf }

// Len returns the payload length that Publish will announce.
func (c Chunk) Len() int { return len(c.buf) }

// Ref returns the chunk reference.
func (c Chunk) Ref() parallax.ChunkRef { return c.ref }

// SetMeta sets the media metadata Publish carries in the chunk header, for
// subscribers to read back exactly with subscriber.Sample.Meta (PTS, DTS,
// duration, offset, the producer's own sequence number and flags; bit 31 of
// the flags, [parallax.MetaFlagsReserved], is not carried). Only the owned
// memory model carries it: the shared model's chunk header has no room, and
// Publish there ignores it. It costs nothing when not called.
func (c *Chunk) SetMeta(m parallax.SampleMeta) {
	c.ol.SetMeta(dataseg.Meta{Flags: m.Flags&^dataseg.FlagMetaSet | dataseg.FlagMetaSet,
		PTS: int64(m.PTS), DTS: int64(m.DTS), Duration: int64(m.Duration), Offset: m.Offset, UserSeq: m.Seq})
}

// Truncate returns c announcing only the first n bytes.
func (c Chunk) Truncate(n int) Chunk {
	if n >= 0 && n <= len(c.buf) {
		c.buf = c.buf[:n]
	}
	return c
}

// Loan returns a chunk of at least n bytes from the smallest fitting pool.
// When the pool is exhausted it returns an error wrapping
// parallax.ErrPoolExhausted at once.
func (p *Publisher) Loan(n int) (Chunk, error) {
	if p.opts.TypeSize != 0 && n != int(p.opts.TypeSize) {
		return Chunk{}, fmt.Errorf("loan %d bytes on %q of type %q (%d bytes): %w", n, p.topic, p.opts.TypeName, p.opts.TypeSize, parallax.ErrIncompatibleType)
	}
	// Count the loan before looking at closed: a Close that finishes
	// after this keeps the runtime for it (see loans).
	if !p.share() {
		return Chunk{}, clientrt.ErrClosed
	}
	if p.closed.Load() {
		p.loanDone()
		return Chunk{}, clientrt.ErrClosed
	}
	if o := p.own.Load(); o != nil {
		return p.loanOwned(o, n) // owned.go
	}
	ref, err := p.pools.Loan(n, p.owner)
	if err != nil {
		if ref, err = p.grow(n, err); err != nil { // grow.go
			p.loanDone()
			return Chunk{}, err
		}
	}
	// Record the loan before anything else can fail: from here on a
	// crash of this process leaves the router a record of the chunk.
	idx, err := p.holds.Add(ref)
	if err != nil {
		_, _ = p.pools.Release(ref)
		p.loanDone()
		return Chunk{}, fmt.Errorf("loan on %q: %w (%w: publish or release loans and samples)", p.topic, err, parallax.ErrLimit)
	}
	b, err := p.pools.Payload(ref)
	if err != nil {
		p.drop(held{ref, idx})
		p.loanDone()
		return Chunk{}, err
	}
	return Chunk{ref: ref, buf: b[:n], hold: idx}, nil
}

// drop gives up one recorded reference: the record goes first, so a crash
// in between leaks the chunk (recovered when the domain is idle) instead of
// releasing it twice.
func (p *Publisher) drop(h held) {
	if p.holds.Remove(h.hold, h.ref) == nil {
		_, _ = p.pools.Release(h.ref)
	}
}

// Release gives back a loaned chunk without publishing it.
func (p *Publisher) Release(c Chunk) error {
	if o := p.own.Load(); o != nil {
		return p.releaseOwned(o, c) // owned.go
	}
	// A share of our own: c may be stale (released already) after Close.
	if !p.share() {
		return fmt.Errorf("release chunk on %q: %w", p.topic, clientrt.ErrClosed)
	}
	defer p.loanDone()
	if err := p.holds.Remove(c.hold, c.ref); err != nil {
		return fmt.Errorf("release chunk on %q: %w", p.topic, err)
	}
	_, err := p.pools.Release(c.ref)
	p.loanDone() // the loan's share
	return err
}

// Publish delivers c to every connected subscriber and to the history, and
// gives up the loan. It never copies payload bytes. After Close it gives
// the chunk back and returns an error wrapping os.ErrClosed.
func (p *Publisher) Publish(c Chunk) error {
	if err := p.enter(); err != nil {
		return err
	}
	err := p.publish(c)
	p.exit()
	return err
}

func (p *Publisher) publish(c Chunk) error {
	if o := p.own.Load(); o != nil {
		return p.publishOwned(o, c) // owned.go
	}
	// Close changes closed only under control, which excludes us: while
	// it is false the runtime is there.
	if p.closed.Load() {
		return p.publishClosed(c)
	}
	if !p.holds.Has(c.hold, c.ref) {
		return fmt.Errorf("publish on %q: chunk %v is not a current loan (published or released already): %w", p.topic, c.ref, parallax.ErrNotHeld)
	}
	defer p.loanDone()
	p.seq++
	if err := p.pools.SetMeta(c.ref, mempool.Meta{Length: uint64(len(c.buf)), Seq: p.seq, Timestamp: sys.UnixNano(), Origin: uint64(p.id)}); err != nil {
		return err
	}
	var firstErr error
	conns := *p.conns.Load()
	p.pushed = 0
	// Without history the loan's own reference can go to the last
	// subscriber instead of taking one more and dropping the loan's: two
	// fewer writes to the chunk's ctl word, a line the subscriber (on
	// another core) reads and writes too.
	last, moved := -1, false
	if p.history == nil {
		last = len(conns) - 1
	}
	for i, cn := range conns {
		var err error
		if i == last && (cn.ring.Policy() == ringbuf.DiscardOldest || !cn.ring.Full()) {
			moved = true
			err = p.transfer(cn, c)
		} else {
			err = p.deliver(cn, c.ref)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	switch {
	case moved: // the loan's reference went to the last ring
	case p.history != nil:
		// The loan's reference becomes the history's: the hold record
		// stays, only its owner (loan or history) changes.
		if p.histN == len(p.history) {
			p.drop(p.history[p.histAt])
		} else {
			p.histN++
		}
		p.history[p.histAt] = held{c.ref, c.hold}
		p.histAt = (p.histAt + 1) % len(p.history)
	default:
		p.drop(held{c.ref, c.hold})
	}
	p.published.Add(1)
	if p.pushed > 0 {
		p.delivered.Add(uint64(p.pushed))
	} else if len(conns) == 0 {
		p.unconnected.Add(1)
	}
	return firstErr
}

// publishClosed refuses a publish after Close, giving the loan back.
func (p *Publisher) publishClosed(c Chunk) error {
	if !p.share() {
		return fmt.Errorf("publish on %q: %w", p.topic, clientrt.ErrClosed)
	}
	defer p.loanDone()
	if p.holds.Remove(c.hold, c.ref) == nil {
		_, _ = p.pools.Release(c.ref)
		p.loanDone() // the loan's share
	}
	return fmt.Errorf("publish on %q: %w", p.topic, clientrt.ErrClosed)
}

// transfer pushes the loan's own reference into cn's ring, which has room
// (a push cannot block). The hold record goes first, as when giving a
// reference up (see mempool.HoldTable): a death between the two leaks the
// chunk until the domain is idle rather than counting it twice.
func (p *Publisher) transfer(cn *conn, c Chunk) error {
	if err := p.holds.Remove(c.hold, c.ref); err != nil {
		return fmt.Errorf("publish on %q: %w", p.topic, err)
	}
	old, err := cn.ring.TryPush(c.ref)
	return p.settle(cn, c.ref, old, err)
}

// deliver pushes ref into one subscriber's ring: the ring entry holds one
// reference, taken before the push.
func (p *Publisher) deliver(cn *conn, ref parallax.ChunkRef) error {
	if err := p.pools.AddRef(ref, 1); err != nil {
		return err
	}
	old, err := cn.ring.TryPush(ref)
	if errors.Is(err, ringbuf.ErrFull) && cn.block {
		old, err = p.pushBlocking(cn, ref)
	}
	return p.settle(cn, ref, old, err)
}

// settle completes the push of ref, one reference the caller owned: a
// failed push gives the reference back, the reference of an entry the push
// discarded is released, the consumer is notified.
func (p *Publisher) settle(cn *conn, ref, old parallax.ChunkRef, err error) error {
	if err != nil {
		_, _ = p.pools.Release(ref)
		if errors.Is(err, ringbuf.ErrFull) || errors.Is(err, parallax.ErrTimeout) {
			cn.dropped.Add(1)
			return fmt.Errorf("publish on %q to subscriber %d: queue full for %v: %w", p.topic, cn.sub, p.opts.BlockTimeout, parallax.ErrTimeout)
		}
		if errors.Is(err, os.ErrClosed) {
			return nil // subscriber went away; the router tells us shortly
		}
		if errors.Is(err, ringbuf.ErrCorruptRing) {
			p.corruptRing(cn, err) // corrupt.go: the ring is dead
		}
		return fmt.Errorf("publish on %q to subscriber %d: %w", p.topic, cn.sub, err)
	}
	p.pushed++
	if !old.IsNil() {
		cn.dropped.Add(1)
		_, _ = p.pools.Release(old)
	}
	_ = cn.notifier.Notify()
	return nil
}

// pushBlocking is the slow path of a full block-producer queue.
func (p *Publisher) pushBlocking(cn *conn, ref parallax.ChunkRef) (parallax.ChunkRef, error) {
	_ = cn.notifier.Notify() // make sure the consumer is awake to drain
	// BlockTimeout bounds the spin and the sleep together. A deadline, not
	// a context: waiting allocates nothing.
	deadline := time.Now().Add(p.opts.BlockTimeout)
	// A consumer that is awake frees a slot within microseconds: spin for
	// it first (yielding, so a consumer on the same core can run), and only
	// then sleep on the ring's futex, which costs the consumer a wake
	// system call per slot it frees.
	cn.spinRef, cn.spinOld, cn.spinErr, cn.spinLooks = ref, parallax.NilRef, nil, 0
	if sys.SpinUntil(min(p.opts.Spin, p.opts.BlockTimeout), nil, blockSpinPause, cn.spinPush) {
		return cn.spinOld, cn.spinErr
	}
	return cn.ring.PushUntil(deadline, ref)
}

// Send copies b into a loaned chunk and publishes it.
func (p *Publisher) Send(b []byte) error {
	c, err := p.Loan(len(b))
	if err != nil {
		return err
	}
	copy(c.buf, b)
	return p.Publish(c)
}

// connectionAdded handles clientrt.Endpoint.ConnectionAdded: it attaches the ring,
// replays history when asked, and starts delivering to the subscriber.
func (p *Publisher) connectionAdded(m *wire.ConnectionAdded) {
	if o := p.own.Load(); o != nil {
		p.ownedConnAdded(o, m) // owned.go
		return
	}
	ring, err := p.rt.Ring(m.RingOffset, m.RingSize)
	if err == nil {
		var nt *ringbuf.Notifier
		if nt, err = p.rt.Notifier(m.NotifierOffset); err == nil {
			p.addConn(m, ring, nt)
			return
		}
	}
	slog.Warn("parallax: publisher cannot attach connection", "topic", p.topic, "conn", m.ConnID, "sub", m.SubID, "err", err)
}

func (p *Publisher) addConn(m *wire.ConnectionAdded, ring *ringbuf.Ring, nt *ringbuf.Notifier) {
	cn := &conn{id: m.ConnID, sub: m.SubID, ring: ring, notifier: nt, block: m.Policy == wire.PolicyBlockProducer, added: *m}
	cn.spinPush = cn.trySpinPush
	p.control(func() {
		if p.closed.Load() {
			return
		}
		// History, oldest first, at most what the subscriber asked for.
		n := min(int(m.History), p.histN)
		for i := n; i > 0; i-- {
			idx := (p.histAt - i + len(p.history)) % len(p.history)
			ref := p.history[idx].ref
			if p.pools.AddRef(ref, 1) != nil {
				continue
			}
			if old, err := ring.TryPush(ref); err != nil {
				_, _ = p.pools.Release(ref)
			} else if !old.IsNil() {
				_, _ = p.pools.Release(old)
			}
		}
		if n > 0 {
			_ = nt.Notify()
		}
		old := *p.conns.Load()
		next := make([]*conn, 0, len(old)+1)
		next = append(append(next, old...), cn)
		if len(next) < len(old) {
			p.removed.Add(1)
		}
		p.conns.Store(&next)
	})
	p.changed.Broadcast()
}

// connectionRemoved handles clientrt.Endpoint.ConnectionRemoved.
func (p *Publisher) connectionRemoved(m *wire.ConnectionRemoved) {
	if o := p.own.Load(); o != nil {
		p.ownedConnRemoved(o, m) // owned.go
		return
	}
	p.control(func() {
		old := *p.conns.Load()
		next := make([]*conn, 0, len(old))
		for _, c := range old {
			if c.id != m.ConnID {
				next = append(next, c)
			}
		}
		p.conns.Store(&next)
	})
	p.changed.Broadcast()
}

// Close releases the history, tells the router the publisher is gone and
// drops this publisher's share of the process runtime. Samples already
// delivered stay readable by subscribers until they release them.
func (p *Publisher) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.share() // Close's own share, ended by loanDone below
		p.control(func() {
			p.closed.Store(true)
			for i := 0; i < p.histN; i++ {
				p.drop(p.history[(p.histAt-1-i+2*len(p.history))%len(p.history)])
			}
			p.histN = 0
			p.conns.Store(&[]*conn{})
		})
		// Only now stop taking pushes: from there on the runtime releases
		// removed connections without asking us, and no publish touches
		// a ring any more.
		p.rt.Unregister(true, p.id)
		if o := p.own.Load(); o != nil {
			p.closeOwned(o) // owned.go
		}
		err = p.closeRemote()
		p.loanDone()
	})
	return err
}

func (p *Publisher) closeRemote() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, err := p.rt.Request(ctx, &wire.ClosePublisher{PubID: p.id})
	if err != nil && clientrt.IsClosed(err) {
		return nil // router gone: nothing left to tell
	}
	return err
}
