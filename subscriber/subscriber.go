package subscriber

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/internal/rpclink"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// Policy is what a publisher does when this subscriber's queue is full: it
// is [parallax.Policy], named here for convenience.
type Policy = parallax.Policy

const (
	// DiscardOldest makes the publisher drop the oldest queued sample
	// (counted in [Subscriber.Dropped]).
	DiscardOldest = parallax.DiscardOldest
	// BlockProducer makes the publisher wait for space, up to its
	// BlockTimeout.
	BlockProducer = parallax.BlockProducer
)

// Options configure a [Subscriber]. The zero value is a valid default:
// the default router, untyped bytes, the router's default queue capacity,
// no history, discard-oldest, futex waiting after a short spin.
type Options struct {
	Domain, Socket string
	// TypeName, TypeSize and TypeAlign must match the topic's publishers.
	TypeName  string
	TypeSize  uint32
	TypeAlign uint32
	// QueueCapacity is the ring capacity per publisher (rounded up to a
	// power of two); 0 means the router's default.
	QueueCapacity int
	// History asks publishers for up to this many past samples on connect.
	History int
	// Policy is the queue-full policy.
	Policy Policy
	// Spin is how long Take (and a [WaitSet]) keeps looking at an empty
	// queue before it sleeps on the futex, measured on the monotonic clock
	// so it means the same on every machine. 0 means [DefaultSpin]
	// (5 µs); a negative value disables spinning: Take sleeps after one
	// look. The spin ends early at Take's deadline. A longer spin catches
	// samples that arrive a little later without a futex wake-up (tens of
	// microseconds) at the price of a busy core meanwhile.
	Spin time.Duration
	// BusyPoll makes Take poll without ever sleeping: lowest latency, one
	// core burnt. Meant for dedicated cores. It is a spin without a
	// budget: Spin is ignored.
	BusyPoll bool
	// Coalesce trades latency for throughput on fast streams. When a Take
	// finds the queue empty right after a Take that found a sample
	// waiting (the subscriber is keeping up with a stream), it waits this
	// long, on this core and without looking at the queue, before it looks
	// again; samples published meanwhile are then taken in a batch. Each
	// look at an empty queue pulls the publisher's ring lines over to this
	// core, so a subscriber that keeps up sample by sample slows the
	// publisher down on every message; batches avoid that. A Take that
	// had to wait (request/response, slow streams) never coalesces, so
	// their latency is unchanged; a fast stream's samples arrive up to
	// Coalesce later. 0 (the default) disables it; at most MaxCoalesce.
	// Keep it well below the time the publishers need to fill the queue:
	// a full queue blocks them (BlockProducer) or drops (DiscardOldest).
	Coalesce time.Duration
	// MaxHeld is how many samples taken from one publisher may be held
	// (not yet released) at once in the owned memory model (router
	// [memory] model = "owned"); a take finding only publishers at that
	// bound fails with an error wrapping parallax.ErrLimit. 0 means the
	// router's [publishers] default_max_held (16). The shared model
	// ignores it (its bound is the process's hold table).
	MaxHeld int
}

// DefaultSpin is the spin budget of a zero [Options.Spin].
const DefaultSpin = ringbuf.DefaultSpin

// MaxCoalesce bounds [Options.Coalesce]: a Take does not notice its
// context's end while it coalesces.
const MaxCoalesce = time.Millisecond

// A Subscriber receives the samples of one topic. Use [New]; the zero value
// is invalid. TryTake and Take must not be called concurrently (an error
// wrapping parallax.ErrConcurrentUse); samples may be released from any
// goroutine. Close is idempotent.
type Subscriber struct {
	rt       *clientrt.Runtime
	pools    *mempool.Set
	id       uint32
	topic    string
	opts     Options
	notifier *ringbuf.Notifier
	wait     ringbuf.WaitOptions
	// link is package rpc's or package event's (internal/rpclink), nil
	// for a pub/sub subscriber.
	link *rpclink.Sub
	// notifierOff is the notifier's offset in the management segment.
	notifierOff uint64

	conns atomic.Pointer[[]*conn]
	// connMu serializes the changes of conns (pushes, Close) and the
	// ring drains that go with them.
	connMu sync.Mutex
	next   int // round-robin start, owned by the taking goroutine
	// streaming: the last take found its sample without waiting (owned
	// by the taking goroutine; see Options.Coalesce).
	streaming bool
	busy      takeState   // one take at a time, and whether it looks at the rings (takestate.go)
	ready     func() bool // cached method value: Take must not allocate
	removed   atomic.Uint64
	changed   clientrt.Signal

	holds   *mempool.HoldTable
	reports reporter // bad refs told to the router (report.go)
	// corruptConns counts connections whose ring was found corrupt
	// (corrupt.go).
	corruptConns atomic.Uint64

	backlogMu sync.Mutex
	// backlog holds what was queued on removed connections: refs recorded
	// as held, and the errors of bad refs among them, in ring order, so a
	// take reports each bad ref whether or not its connection is still
	// there.
	backlog []backlogEntry
	// backlogN mirrors len(backlog) so the take path checks it without
	// the lock (it is written under backlogMu).
	backlogN atomic.Int64

	// own is the owned-model state (owned.go), nil in the shared model;
	// set before the endpoint registers.
	own atomic.Pointer[ownedState]

	closeOnce sync.Once
	closed    atomic.Bool
	// taken counts samples handed out and not yet released; the runtime
	// (segments, control connection) is kept until it drops to 0 after
	// Close.
	taken clientrt.Shares
}

// backlogEntry is a held ref, or the error of a bad one, drained from a
// removed connection.
type backlogEntry struct {
	h   held
	err error
}

// held is a reference recorded in the process's hold table.
type held struct {
	ref  parallax.ChunkRef
	hold int
	data []byte       // the chunk's used bytes
	meta mempool.Meta // read once, when the ref was validated
}

type conn struct {
	id    uint32
	pub   uint32
	ring  *ringbuf.Ring
	added wire.ConnectionAdded // as the router announced it (for resuming)
	// corrupt is set once the ring's indices were found impossible
	// (corrupt.go); written and read off the take fast path only.
	corrupt atomic.Bool
}

// New subscribes to topic.
func New(ctx context.Context, topic string, opts Options) (_ *Subscriber, err error) {
	if err := wire.ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("subscriber: %w", err) // wraps parallax.ErrInvalidArgument
	}
	if opts.QueueCapacity < 0 || opts.History < 0 {
		return nil, fmt.Errorf("subscriber %q: negative queue capacity %d or history %d: %w", topic, opts.QueueCapacity, opts.History, parallax.ErrInvalidArgument)
	}
	if !opts.Policy.Valid() {
		return nil, fmt.Errorf("subscriber %q: %v: %w", topic, opts.Policy, parallax.ErrInvalidArgument)
	}
	if opts.MaxHeld < 0 || opts.MaxHeld > wire.MaxHeldLimit {
		return nil, fmt.Errorf("subscriber %q: max held %d outside [0, %d]: %w", topic, opts.MaxHeld, wire.MaxHeldLimit, parallax.ErrInvalidArgument)
	}
	if opts.Coalesce < 0 || opts.Coalesce > MaxCoalesce {
		return nil, fmt.Errorf("subscriber %q: coalesce %v outside [0, %v]: %w", topic, opts.Coalesce, MaxCoalesce, parallax.ErrInvalidArgument)
	}
	var kind uint8
	var pair uint32
	link := rpclink.SubFrom(ctx)
	if link != nil { // package rpc's and package event's endpoints only
		kind, pair = link.Kind, link.Pair
	}
	rt, err := clientrt.Acquire(ctx, clientrt.Options{Domain: opts.Domain, Socket: opts.Socket})
	if err != nil {
		return nil, fmt.Errorf("subscriber %q: %w", topic, err)
	}
	s := &Subscriber{rt: rt, topic: topic, opts: opts, holds: rt.Holds(), link: link, wait: ringbuf.WaitOptions{Spin: opts.Spin, BusyPoll: opts.BusyPoll}}
	s.conns.Store(&[]*conn{})
	s.ready = s.hasData
	rt.BeginCreate()
	defer rt.EndCreate()
	sc, files, err := clientrt.Create[*wire.SubscriberCreated](ctx, rt, &wire.CreateSubscriber{Topic: topic, QueueCapacity: uint32(opts.QueueCapacity),
		History: uint32(opts.History), Policy: uint8(opts.Policy), MaxHeld: uint32(opts.MaxHeld), Kind: kind, Pair: pair,
		Type: wire.TypeInfo{Name: opts.TypeName, Size: opts.TypeSize, Align: opts.TypeAlign}})
	if err != nil {
		rt.Release()
		return nil, fmt.Errorf("subscribe to %q: %w", topic, err)
	}
	s.id = sc.SubID
	fail := func(err error) (*Subscriber, error) {
		_ = s.closeRemote()
		rt.Release()
		return nil, fmt.Errorf("subscribe to %q: %w", topic, err)
	}
	if rt.Owned() {
		// No router-wide pools and no notifier in a management segment:
		// the connections' segments carry the wake words (owned.go).
		for _, f := range files {
			_ = f.Close()
		}
		s.initOwned()
	} else {
		if s.pools, err = rt.Grant(sc.Segments, files, true); err != nil {
			return fail(err)
		}
		s.notifierOff = sc.NotifierOffset
		if s.notifier, err = rt.Notifier(sc.NotifierOffset); err != nil {
			return fail(err)
		}
	}
	rt.RegisterSubscriber(s.id, endpoint{s})
	if err := rt.Wired(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("wire %q: %w", topic, err)
	}
	if o := s.own.Load(); o != nil {
		s.waitOwnedWired(ctx, o) // owned.go
	}
	return s, nil
}

// ID returns the router-assigned subscriber id.
func (s *Subscriber) ID() uint32 { return s.id }

// Topic returns the topic name.
func (s *Subscriber) Topic() string { return s.topic }

// Publishers returns the number of publishers currently connected.
func (s *Subscriber) Publishers() int {
	if o := s.own.Load(); o != nil {
		return o.publishers()
	}
	return len(*s.conns.Load())
}

// WaitForPublishers waits until at least n publishers are connected, or
// ctx ends.
func (s *Subscriber) WaitForPublishers(ctx context.Context, n int) error {
	if err := s.changed.Wait(ctx, func() bool { return s.Publishers() >= n }); err != nil {
		return fmt.Errorf("subscriber %q: wait for %d publishers (have %d): %w", s.topic, n, s.Publishers(), err)
	}
	return nil
}

// Dropped returns how many samples publishers discarded from this
// subscriber's queues (discard-oldest overflow) on current connections.
func (s *Subscriber) Dropped() uint64 {
	if o := s.own.Load(); o != nil {
		return o.dropped()
	}
	var n uint64
	for _, c := range *s.conns.Load() {
		n += c.ring.Dropped()
	}
	return n + s.removed.Load()
}

// Header is the metadata of a sample.
type Header struct {
	Seq         uint64 // publisher's sequence number, from 1
	Timestamp   int64  // publish time, unix nanoseconds
	PublisherID uint32 // the publisher's id
	// UserSeq and Flags are the producer's own sequence and buffer flags
	// from the chunk header (owned memory model; 0 in the shared model).
	// Package rpc carries a call's request id and end-of-stream flag in
	// them.
	UserSeq uint64
	Flags   uint32
}

// A Sample is a received message. Its bytes alias shared memory (mapped
// read-only) and are only valid until Release. A Sample is a small value;
// release it exactly once.
type Sample struct {
	ref  parallax.ChunkRef
	data []byte
	hdr  Header
	sub  *Subscriber
	hold int             // entry in the process's hold table
	own  ownedsub.Sample // the engine's sample, in the owned model
}

// Bytes returns the payload (read-only shared memory: do not write).
func (x Sample) Bytes() []byte { return x.data }

// Header returns the sample's metadata.
func (x Sample) Header() Header { return x.hdr }

// Meta returns the media metadata its publisher set with
// publisher.Chunk.SetMeta, exactly as set, and true; false (and a zero
// SampleMeta) when the publisher set none, or when the router runs the
// shared memory model, whose chunk header has no room for it.
func (x Sample) Meta() (parallax.SampleMeta, bool) {
	m := x.own.Meta()
	if m.Flags&dataseg.FlagMetaSet == 0 {
		return parallax.SampleMeta{}, false
	}
	return parallax.SampleMeta{PTS: time.Duration(m.PTS), DTS: time.Duration(m.DTS), Duration: time.Duration(m.Duration),
		Offset: m.Offset, Seq: m.UserSeq, Flags: m.Flags &^ dataseg.FlagMetaSet}, true
}

// Ref returns the chunk reference.
func (x Sample) Ref() parallax.ChunkRef { return x.ref }

// Release gives the sample back; the chunk returns to its pool when its
// last holder releases it.
func (x Sample) Release() error {
	if x.sub == nil {
		return nil
	}
	s := x.sub
	if s.closed.Load() {
		// After Close x may be stale (released already) and the runtime
		// gone: work under a share of our own, which fails then.
		if !s.taken.Take() {
			return fmt.Errorf("release sample of %q: %w", s.topic, clientrt.ErrClosed)
		}
		defer s.dropShare()
	}
	if x.own.Conn() != nil {
		return x.releaseOwned() // owned.go
	}
	// The record goes first: a crash in between leaks the chunk (recovered
	// when the domain is idle) rather than releasing it twice.
	if err := s.holds.Remove(x.hold, x.ref); err != nil {
		return fmt.Errorf("release sample of %q: %w", s.topic, err)
	}
	_, err := s.pools.Release(x.ref)
	// The last sample released after Close lets the runtime go (and the
	// segments be unmapped): taken samples outlive Close, as documented.
	s.dropShare()
	return err
}

// dropShare ends one share of taken; the last one after Close lets this
// subscriber's share of the process runtime go.
func (s *Subscriber) dropShare() {
	if s.taken.Drop(&s.closed) {
		s.rt.Release()
	}
}

// ErrNoData is returned by TryTake when no sample is queued.
var ErrNoData = fmt.Errorf("no sample available")

// TryTake returns the next queued sample without blocking, or ErrNoData.
func (s *Subscriber) TryTake() (Sample, error) {
	if !s.busy.begin() {
		return Sample{}, s.busyErr()
	}
	defer s.busy.end()
	if o := s.own.Load(); o != nil {
		return s.takeOwned(o, context.Background(), s.wait, false) // owned.go
	}
	return s.tryTake()
}

// busyErr is the error of a take that finds another one in progress (or
// Close at work).
func (s *Subscriber) busyErr() error {
	if s.closed.Load() {
		return clientrt.ErrClosed
	}
	return fmt.Errorf("subscriber %q: %w", s.topic, parallax.ErrConcurrentUse)
}

func (s *Subscriber) tryTake() (Sample, error) {
	if s.closed.Load() {
		return Sample{}, clientrt.ErrClosed
	}
	if x, err := s.takeRings(); err != ErrNoData {
		return x, err
	}
	if e, ok := s.popBacklog(); ok {
		if e.err != nil {
			return Sample{}, e.err
		}
		return s.sample(e.h), nil
	}
	return Sample{}, ErrNoData
}

// takeRings takes from the first ring with an entry, round robin, or
// returns ErrNoData. Call it inside a pass (see takeState).
func (s *Subscriber) takeRings() (Sample, error) {
	conns := *s.conns.Load()
	n := len(conns)
	for i := 0; i < n; i++ {
		c := conns[(s.next+i)%n]
		// A tracked pop: the ring records the intent, so if this process
		// dies before the hold is recorded the router can tell.
		ref, err := c.ring.TryPopTracked()
		if err != nil {
			if err != ringbuf.ErrEmpty {
				s.corruptRing(c, err, true) // corrupt.go: stop using it, tell the router
			}
			continue
		}
		s.next = (s.next + i + 1) % n
		h, err := s.hold(ref)
		c.ring.ClearPopIntent()
		if err != nil {
			s.report(c, ref, err) // report.go: tell the router about a bad ref
			return Sample{}, err
		}
		return s.sample(h), nil
	}
	return Sample{}, ErrNoData
}

// hold validates a popped ref, reads its bytes and metadata (one step)
// and records it in the hold table. The ref comes from shared memory: one
// that names no held chunk (a faulty peer's garbage) is not recorded and
// yields an error, never a crash or someone else's chunk.
func (s *Subscriber) hold(ref parallax.ChunkRef) (held, error) {
	_ = s.rt.MapPool(s.pools, ref, true) // a pool added at run time is mapped on first sight; View reports failures
	data, meta, err := s.pools.View(ref)
	if err != nil {
		if !badRef(err) {
			// A chunk the ring did hold, with corrupt metadata: the
			// ring's reference is ours to give back.
			_, _ = s.pools.Release(ref)
		}
		return held{}, fmt.Errorf("subscriber %q: %w", s.topic, err)
	}
	idx, err := s.holds.Add(ref)
	if err != nil {
		_, _ = s.pools.Release(ref)
		return held{}, fmt.Errorf("subscriber %q: %w (%w: release samples)", s.topic, err, parallax.ErrLimit)
	}
	return held{ref: ref, hold: idx, data: data, meta: meta}, nil
}

// sample hands out a held ref.
func (s *Subscriber) sample(h held) Sample {
	s.taken.Take() // cannot fail: Close, which ends the runtime, waits for takes
	m := h.meta
	return Sample{ref: h.ref, data: h.data, hdr: Header{Seq: m.Seq, Timestamp: m.Timestamp, PublisherID: uint32(m.Origin)}, sub: s, hold: h.hold}
}

// hasData is the readiness check of Take and of wait sets. It only reads
// ring indices, so it needs no pass: a ring just removed, even reused,
// yields at worst a spurious wake-up.
func (s *Subscriber) hasData() bool {
	if o := s.own.Load(); o != nil {
		return o.eng.Ready()
	}
	for _, c := range *s.conns.Load() {
		if c.ring.Len() > 0 {
			return true
		}
	}
	return s.closed.Load() || s.hasBacklog()
}

// Take returns the next sample, waiting until one arrives, ctx ends
// (an error wrapping ctx.Err()) or the subscriber closes. With a ctx that
// is never done (context.Background()) it allocates nothing, also when it
// sleeps.
func (s *Subscriber) Take(ctx context.Context) (Sample, error) {
	return s.take(ctx, s.wait)
}

// TakeTimeout is Take with a relative timeout: when it passes, the error
// wraps parallax.ErrTimeout. It allocates nothing.
func (s *Subscriber) TakeTimeout(d time.Duration) (Sample, error) {
	w := s.wait
	w.Timeout = d // the notifier reads the clock only if it has to wait
	return s.take(context.Background(), w)
}

func (s *Subscriber) take(ctx context.Context, w ringbuf.WaitOptions) (Sample, error) {
	if !s.busy.begin() {
		return Sample{}, s.busyErr()
	}
	defer s.busy.end()
	if o := s.own.Load(); o != nil {
		return s.takeOwnedWait(o, ctx, w)
	}
	waited, coalesced := false, false
	for {
		x, err := s.tryTake()
		if err != ErrNoData {
			s.streaming = !waited
			return x, err
		}
		if s.streaming && !coalesced && s.opts.Coalesce > 0 {
			// Options.Coalesce: let the stream's next samples pile up.
			coalesced = true
			s.busy.pause()
			sys.SpinFor(s.opts.Coalesce)
			s.busy.resume()
			continue
		}
		waited = true
		if w.Timeout > 0 {
			// TakeTimeout: the clock is read only once a wait is due,
			// and once, so wake-ups that find nothing do not extend it.
			w.Deadline, w.Timeout = time.Now().Add(w.Timeout), 0
		}
		s.busy.pause()
		err = s.notifier.Wait(ctx, s.ready, w)
		s.busy.resume()
		if err != nil {
			return Sample{}, fmt.Errorf("take from %q: %w", s.topic, err)
		}
	}
}

func (s *Subscriber) hasBacklog() bool { return s.backlogN.Load() > 0 }

func (s *Subscriber) popBacklog() (backlogEntry, bool) {
	if s.backlogN.Load() == 0 { // the common case: no lock on the take path
		return backlogEntry{}, false
	}
	s.backlogMu.Lock()
	defer s.backlogMu.Unlock()
	if len(s.backlog) == 0 {
		return backlogEntry{}, false
	}
	e := s.backlog[0]
	s.backlog = s.backlog[1:]
	s.backlogN.Store(int64(len(s.backlog)))
	return e, true
}

// connectionAdded handles clientrt.Endpoint.ConnectionAdded.
func (s *Subscriber) connectionAdded(m *wire.ConnectionAdded) {
	if o := s.own.Load(); o != nil {
		s.ownedConnAdded(o, m) // owned.go
		return
	}
	ring, err := s.rt.Ring(m.RingOffset, m.RingSize)
	if err != nil {
		// The router handed a ring we cannot use: nothing of this
		// publisher will arrive. Say so rather than wait silently.
		slog.Warn("parallax: subscriber cannot attach connection ring", "topic", s.topic, "conn", m.ConnID, "pub", m.PubID, "err", err)
		return
	}
	s.connMu.Lock()
	if s.closed.Load() {
		s.connMu.Unlock()
		return // Close has drained and forgotten the rings; the router frees this one
	}
	old := *s.conns.Load()
	next := append(append(make([]*conn, 0, len(old)+1), old...), &conn{id: m.ConnID, pub: m.PubID, ring: ring, added: *m})
	s.conns.Store(&next)
	s.connMu.Unlock()
	_ = s.notifier.Notify()
	s.changed.Broadcast()
}

// connectionRemoved handles clientrt.Endpoint.ConnectionRemoved: the publisher is gone, so
// nothing more arrives on its ring; what it already queued moves to a
// private backlog (still held, still delivered in order) so the router can
// recycle the ring.
func (s *Subscriber) connectionRemoved(m *wire.ConnectionRemoved) {
	if o := s.own.Load(); o != nil {
		s.ownedConnRemoved(o, m) // owned.go
		return
	}
	s.connMu.Lock()
	defer s.connMu.Unlock()
	old := *s.conns.Load()
	next := make([]*conn, 0, len(old))
	var gone *conn
	for _, c := range old {
		if c.id == m.ConnID {
			gone = c
		} else {
			next = append(next, c)
		}
	}
	if gone == nil {
		return
	}
	s.conns.Store(&next)
	// Once this returns, the runtime tells the router that this process
	// let go of the ring: no take may still be popping from it.
	s.busy.waitPass()
	s.removed.Add(gone.ring.Dropped())
	s.backlogMu.Lock()
	// At most a capacity of entries: the ring never holds more, and a
	// corrupt one (impossible indices) stops the drain, so the backlog
	// never grows with a number the peer wrote.
	for range gone.ring.Cap() {
		ref, err := gone.ring.TryPopTracked()
		if err != nil {
			if err != ringbuf.ErrEmpty {
				s.corruptRing(gone, err, false) // removed already: just count it
			}
			break
		}
		h, err := s.hold(ref)
		gone.ring.ClearPopIntent()
		// A bad ref is kept as its error: the taker sees it as it would
		// have on the live connection (the router, which removed the
		// connection, needs no report).
		s.backlog = append(s.backlog, backlogEntry{h: h, err: err})
		s.backlogN.Store(int64(len(s.backlog)))
	}
	s.backlogMu.Unlock()
	_ = s.notifier.Notify()
	s.changed.Broadcast()
}

// Close unsubscribes: queued samples are released, the router is told, and
// a blocked Take returns an error wrapping os.ErrClosed. Samples already
// taken stay valid until released.
func (s *Subscriber) Close() error {
	var err error
	s.closeOnce.Do(func() {
		// Close holds a share of the runtime while it works: a sample
		// released concurrently must not tear the mappings down under
		// the ring drain below.
		s.taken.Take()
		s.closed.Store(true)
		if o := s.own.Load(); o == nil {
			_ = s.notifier.Notify()
		} else {
			// Closing the engine wakes a Take sleeping in it; each
			// connection goes once nothing taken from it is held.
			s.closeOwned(o) // owned.go
		}
		// Wait out a Take or TryTake of another goroutine: it sees closed
		// (a sleeping Take was woken above) and returns at once. From
		// here no take touches the rings, and later ones fail.
		s.busy.claim()
		defer s.busy.end()
		// Drain what is queued and forget the rings, and only then stop
		// taking pushes (Unregister): from there on the runtime releases
		// removed connections without asking us, and the router frees
		// their rings (releasing what was pushed after this drain).
		s.connMu.Lock()
		for _, c := range *s.conns.Load() {
			for range c.ring.Cap() { // bounded: see ConnectionRemoved
				ref, err := c.ring.TryPop()
				if err != nil {
					break
				}
				_, _ = s.pools.Release(ref)
			}
			s.removed.Add(c.ring.Dropped())
		}
		s.conns.Store(&[]*conn{})
		s.connMu.Unlock()
		s.rt.Unregister(false, s.id)
		err = s.closeRemote()
		if o := s.own.Load(); o != nil {
			s.remoteClosedOwned(o) // owned.go
		}
		s.backlogMu.Lock()
		for _, e := range s.backlog {
			if e.err == nil && s.holds.Remove(e.h.hold, e.h.ref) == nil {
				_, _ = s.pools.Release(e.h.ref)
			}
		}
		s.backlog = nil
		s.backlogN.Store(0)
		s.backlogMu.Unlock()
		s.dropShare()
	})
	return err
}

func (s *Subscriber) closeRemote() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, err := s.rt.Request(ctx, &wire.CloseSubscriber{SubID: s.id})
	if err != nil && clientrt.IsClosed(err) {
		return nil
	}
	return err
}

// WakeStats returns the counters of this subscriber's wake-up channel:
// futex sleeps it made and wake calls its publishers made for it.
func (s *Subscriber) WakeStats() ringbuf.NotifierStats {
	if o := s.own.Load(); o != nil {
		return o.wakeStats()
	}
	return s.notifier.Stats()
}
