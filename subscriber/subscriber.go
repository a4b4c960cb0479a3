package subscriber

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/internal/rpclink"
	"github.com/parallax-ipc/parallax/internal/wire"
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
	// queue before it yields the processor once (sched_yield: a publisher
	// waiting for this core runs, and its samples are seen without a
	// wake-up), looks again and sleeps on the futex. It is measured on the
	// monotonic clock so it means the same on every machine. 0 means
	// [DefaultSpin] (5 µs); a negative value disables spinning and the
	// yield: Take sleeps after one look. The spin ends early at Take's deadline. A longer spin catches
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
	// Coalesce later. At most MaxCoalesce.
	// Keep it well below the time the publishers need to fill the queue:
	// a full queue blocks them (BlockProducer) or drops (DiscardOldest).
	// With Coalesce every Take claims the taking side, so Takes from
	// several goroutines fail with parallax.ErrConcurrentUse while one
	// runs (without it only a Take that must wait does).
	//
	// 0 (the default) pauses [DefaultStreamPause] instead, and only in a
	// Take that must wait (the taking side is claimed then anyway): the
	// short pause is enough to take a stream that is faster than the
	// subscriber's sample-by-sample pace in small batches. A request/
	// response take pauses only when the last take that had to wait found
	// its sample at once (a burst just before it), and then for at most
	// the pause. A negative Coalesce pauses never: every look at an empty
	// queue is immediate.
	Coalesce time.Duration
	// MaxHeld is how many samples taken from one publisher may be held
	// (not yet released) at once; a take finding only publishers at that
	// bound fails with an error wrapping parallax.ErrLimit. 0 means the
	// router's [publishers] default_max_held (16).
	MaxHeld int
	// DrainWakes, with BlockProducer, wakes a publisher waiting on this
	// subscriber's full queue only once takes have drained the queue to
	// half its capacity, instead of at the first take: a publisher that
	// refills the queue as fast as it empties is then woken once per half
	// queue rather than once per take (each wake is a system call here and
	// a context switch in the publisher; ringbuf.Ring.SetWakeLevel). Meant
	// for a subscriber that drains what is queued whenever it takes, as a
	// gateway's exporter does: one that stops taking with more than half
	// a queue left keeps the publisher waiting, though there is room,
	// until its takes reach the mark or for up to 100 ms (the publisher's
	// own re-check). Takes cost the same either way.
	DrainWakes bool
}

// DefaultSpin is the spin budget of a zero [Options.Spin].
const DefaultSpin = ringbuf.DefaultSpin

// MaxCoalesce bounds [Options.Coalesce]: a Take does not notice its
// context's end while it coalesces.
const MaxCoalesce = time.Millisecond

// DefaultStreamPause is the pause of a zero [Options.Coalesce]: a Take
// that must wait right after one that found a sample waits this long
// before it looks at the queue again. One-way 64-byte streams between two
// cores that trade cache lines quickly ran at 0.69–0.76 of the raw ring
// without it and 0.91–1.05 with 0.5–2 µs; request/response latency is
// unchanged (its takes wait); see docs/design/memory-ownership.md §8.26.
const DefaultStreamPause = time.Microsecond

// A Subscriber receives the samples of one topic. Use [New]; the zero value
// is invalid. TryTake, and Take when a sample is queued (and
// Options.Coalesce is 0 or negative), may be called from several goroutines (the
// subscriber's lock serialises them; each sample goes to one of them);
// only one Take may wait at a time: another that would wait meanwhile
// fails with an error wrapping parallax.ErrConcurrentUse. Samples may be released from any goroutine.
// Close is idempotent.
type Subscriber struct {
	rt    *clientrt.Runtime
	id    uint32
	topic string
	opts  Options
	wait  ringbuf.WaitOptions
	// link is package rpc's or package event's (internal/rpclink), nil
	// for a pub/sub subscriber.
	link *rpclink.Sub

	// streaming: the last take that went to the waiting path found its
	// sample in its first, immediate look (written only by a take that
	// claimed the taking side; see Options.Coalesce). Takes that find a
	// sample at once leave it as it was.
	streaming bool
	// pause is how long a streaming take that must wait pauses first:
	// Options.Coalesce, DefaultStreamPause for 0, none for a negative one.
	pause   time.Duration
	busy    takeState   // one take at a time (takestate.go)
	ready   func() bool // cached method value: Take must not allocate
	changed clientrt.Signal

	// corruptConns counts connections that failed (owned.go).
	corruptConns atomic.Uint64

	// own is the subscriber's engine and connections (owned.go), set in
	// New before the endpoint registers.
	own atomic.Pointer[ownedState]

	closeOnce sync.Once
	closed    atomic.Bool
	// closeHold, a test seam (export_test.go), runs in Close once the
	// engine is closed and takes are over: before (stage 0) and after
	// (stage 1) the endpoint unregisters, before the router is told.
	closeHold atomic.Pointer[func(stage int)]
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
	if opts.Coalesce > MaxCoalesce {
		return nil, fmt.Errorf("subscriber %q: coalesce %v above %v: %w", topic, opts.Coalesce, MaxCoalesce, parallax.ErrInvalidArgument)
	}
	var kind uint8
	var pair uint32
	link := rpclink.SubFrom(ctx)
	if link != nil { // package rpc's and package event's endpoints only
		kind, pair = link.Kind, link.Pair
	}
	rt, sc, files, err := clientrt.AcquireCreate[*wire.SubscriberCreated](ctx, clientrt.Options{Domain: opts.Domain, Socket: opts.Socket},
		&wire.CreateSubscriber{Topic: topic, QueueCapacity: uint32(opts.QueueCapacity),
			History: uint32(opts.History), Policy: uint8(opts.Policy), MaxHeld: uint32(opts.MaxHeld), Kind: kind, Pair: pair,
			Type: wire.TypeInfo{Name: opts.TypeName, Size: opts.TypeSize, Align: opts.TypeAlign}})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %q: %w", topic, err)
	}
	defer rt.EndCreate()
	s := &Subscriber{rt: rt, topic: topic, opts: opts, link: link, wait: ringbuf.WaitOptions{Spin: opts.Spin, BusyPoll: opts.BusyPoll}}
	switch {
	case opts.Coalesce > 0:
		s.pause = opts.Coalesce
	case opts.Coalesce == 0:
		s.pause = DefaultStreamPause
	}
	s.ready = s.hasData
	s.id = sc.SubID
	// The connections' segments carry the wake words (owned.go); the
	// reply carries no fds.
	for _, f := range files {
		_ = f.Close()
	}
	s.initOwned()
	if link != nil {
		link.Report = s.reportLinked // owned.go
	}
	rt.RegisterSubscriber(s.id, endpoint{s})
	if err := rt.Wired(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("wire %q: %w", topic, err)
	}
	s.waitOwnedWired(ctx, s.own.Load()) // owned.go
	return s, nil
}

// ID returns the router-assigned subscriber id.
func (s *Subscriber) ID() uint32 { return s.id }

// Topic returns the topic name.
func (s *Subscriber) Topic() string { return s.topic }

// Publishers returns the number of publishers currently connected: live
// (not gone) and usable, their queue to this subscriber and their first
// data segment mapped in this process.
func (s *Subscriber) Publishers() int { return s.own.Load().publishers() }

// WaitForPublishers waits until at least n publishers are connected (as
// [Subscriber.Publishers] counts them), or ctx ends. Once it returned, a
// sample one of those publishers publishes is takeable (TryTake finds it)
// as soon as the publisher pushed it; samples from segments the publisher
// grows later may still need their segment to arrive (Take waits for it).
func (s *Subscriber) WaitForPublishers(ctx context.Context, n int) error {
	if err := s.changed.Wait(ctx, func() bool { return s.Publishers() >= n }); err != nil {
		return fmt.Errorf("subscriber %q: wait for %d publishers (have %d): %w", s.topic, n, s.Publishers(), err)
	}
	return nil
}

// Dropped returns how many samples publishers discarded from this
// subscriber's queues (discard-oldest overflow) on current connections.
func (s *Subscriber) Dropped() uint64 { return s.own.Load().dropped() }

// Header is the metadata of a sample.
type Header struct {
	Seq         uint64 // publisher's sequence number, from 1
	Timestamp   int64  // publish time, unix nanoseconds
	PublisherID uint32 // the publisher's id
	// UserSeq and Flags are the producer's own sequence and buffer flags
	// from the chunk header.
	// Package rpc carries a call's request id and end-of-stream flag in
	// them.
	UserSeq uint64
	Flags   uint32
}

// A Sample is a received message. Its bytes alias shared memory (mapped
// read-only) and are only valid until Release. A Sample is a small value;
// release it exactly once.
//
// It holds the engine's sample (payload view, ref and the chunk header as
// read at take time) and nothing copied from it: a take fills it once, and
// the accessors read from it (BenchmarkFanOut: building a Header at every
// take was ~3.5 % of a subscriber's CPU; design §8.18).
type Sample struct {
	sub *Subscriber
	own ownedsub.Sample // the engine's sample
}

// Bytes returns the payload (read-only shared memory: do not write).
func (x Sample) Bytes() []byte { return x.own.Bytes() }

// Header returns the sample's metadata (read from the chunk header when
// the sample was taken).
func (x Sample) Header() Header {
	m := x.own.Meta()
	h := Header{Seq: m.Seq, Timestamp: m.Stamp, UserSeq: m.UserSeq, Flags: m.Flags}
	if c := x.own.Conn(); c != nil {
		h.PublisherID = c.PubID()
	}
	return h
}

// Meta returns the media metadata its publisher set with
// publisher.Chunk.SetMeta, exactly as set, and true; false (and a zero
// SampleMeta) when the publisher set none.
func (x Sample) Meta() (parallax.SampleMeta, bool) {
	m := x.own.Meta()
	if m.Flags&dataseg.FlagMetaSet == 0 {
		return parallax.SampleMeta{}, false
	}
	return parallax.SampleMeta{PTS: time.Duration(m.PTS), DTS: time.Duration(m.DTS), Duration: time.Duration(m.Duration),
		Offset: m.Offset, Seq: m.UserSeq, Flags: m.Flags &^ dataseg.FlagMetaSet}, true
}

// Ref returns the chunk reference.
func (x Sample) Ref() parallax.ChunkRef { return x.own.Ref() }

// Release gives the sample back: it returns to its publisher over the
// connection it came on. Releasing a sample twice is an error wrapping
// parallax.ErrNotHeld, or os.ErrClosed once the subscriber is closed.
func (x Sample) Release() error {
	if x.sub == nil {
		return nil
	}
	// After Close x may be stale (released already) and the runtime
	// gone: the engine checks x against its held table (process memory)
	// before it touches a ring, and the last held sample's release lets
	// the runtime go (ownedsub OnIdle).
	return x.releaseOwned() // owned.go
}

// ErrNoData is returned by TryTake when no sample is queued.
var ErrNoData = fmt.Errorf("no sample available")

// TryTake returns the next queued sample without blocking, or ErrNoData.
func (s *Subscriber) TryTake() (x Sample, err error) {
	// No claim of the taking side: the engine's lock serialises takes,
	// and after Close the engine refuses them.
	err = s.takeOwned(&x, s.own.Load(), context.Background(), &s.wait, false) // owned.go
	return x, err
}

// busyErr is the error of a take that finds another one in progress (or
// Close at work).
func (s *Subscriber) busyErr() error {
	if s.closed.Load() {
		return clientrt.ErrClosed
	}
	return fmt.Errorf("subscriber %q: %w", s.topic, parallax.ErrConcurrentUse)
}

// hasData is the readiness check of Take and of wait sets.
func (s *Subscriber) hasData() bool { return s.own.Load().eng.Ready() }

// Take returns the next sample, waiting until one arrives, ctx ends
// (an error wrapping ctx.Err()) or the subscriber closes. With a ctx that
// is never done (context.Background()) it allocates nothing, also when it
// sleeps.
func (s *Subscriber) Take(ctx context.Context) (x Sample, err error) {
	err = s.take(&x, ctx, &s.wait)
	return x, err
}

// TakeTimeout is Take with a relative timeout: when it passes, the error
// wraps parallax.ErrTimeout. It allocates nothing.
func (s *Subscriber) TakeTimeout(d time.Duration) (x Sample, err error) {
	w := s.wait
	w.Timeout = d // the notifier reads the clock only if it has to wait
	err = s.take(&x, context.Background(), &w)
	return x, err
}

// take is Take with wait options *w (read only), filling *x: the sample
// is written once, into the caller's result, not copied back through
// each call (a Sample is 120 bytes; the copies were ~20 % of a take's CPU
// in a one-way stream). On error *x is the zero Sample.
func (s *Subscriber) take(x *Sample, ctx context.Context, w *ringbuf.WaitOptions) error {
	o := s.own.Load()
	if s.opts.Coalesce <= 0 {
		// A sample queued already: taken as TryTake takes it, with the
		// engine's lock as the only guard. Only a take that waits claims
		// the taking side (one waiter at a time; Close waits it out).
		if err := s.takeOwned(x, o, ctx, w, false); err != ErrNoData {
			return err
		}
	}
	if !s.busy.begin() {
		return s.busyErr()
	}
	defer s.busy.end()
	return s.takeOwnedWait(x, o, ctx, w)
}

// connectionAdded handles clientrt.Endpoint.ConnectionAdded: the
// connection is used once its segment arrives (owned.go).
func (s *Subscriber) connectionAdded(m *wire.ConnectionAdded) {
	s.ownedConnAdded(s.own.Load(), m) // owned.go
}

// connectionRemoved handles clientrt.Endpoint.ConnectionRemoved: what the
// publisher already queued is still taken (owned.go).
func (s *Subscriber) connectionRemoved(m *wire.ConnectionRemoved) {
	s.ownedConnRemoved(s.own.Load(), m) // owned.go
}

// Close unsubscribes: queued samples are released, the router is told, and
// a blocked Take returns an error wrapping os.ErrClosed. Samples already
// taken stay valid until released.
func (s *Subscriber) Close() error {
	var err error
	s.closeOnce.Do(func() {
		// Close holds the engine while it works: a sample released
		// concurrently must not let the runtime go (OnIdle) under the
		// ring drain below.
		o := s.own.Load()
		o.eng.Hold() // cannot fail before the engine is closed
		s.closed.Store(true)
		// Closing the engine wakes a Take sleeping in it; each
		// connection goes once nothing taken from it is held.
		s.closeOwned(o) // owned.go
		// Wait out a waiting Take of another goroutine: it sees closed
		// (it was woken above) and returns at once. A TryTake, or a Take
		// that finds a sample, claims nothing: the engine's lock and its
		// closed flag keep it off the closing connections. From here no
		// take touches the rings, and later ones fail.
		s.busy.claim()
		defer s.busy.end()
		if h := s.closeHold.Load(); h != nil {
			(*h)(0)
		}
		// Only then stop taking pushes (Unregister): from there on the
		// runtime releases removed connections without asking us.
		s.rt.Unregister(false, s.id)
		if h := s.closeHold.Load(); h != nil {
			(*h)(1)
		}
		err = s.closeRemote(o)
		o.eng.Unhold() // the runtime goes now unless samples are held
	})
	return err
}

// closeRemote tells the router the subscriber closed and releases what
// it can release already (remoteClosedOwned, owned.go), pipelined: every
// request is written before the first answer is awaited, one round trip
// in all rather than one per request.
func (s *Subscriber) closeRemote(o *ownedState) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	call, err := s.rt.StartClose(false, s.id, &wire.CloseSubscriber{SubID: s.id})
	wait := s.remoteClosedOwned(o)
	if err == nil && call != nil { // nil: a router resume closed it already
		_, _, err = call.Wait(ctx)
		// The router pushes nothing for the subscriber after its answer:
		// once the pushes received before it are routed (each connection
		// released, closedsub.go), the runtime forgets the subscriber.
		if err == nil {
			_ = s.rt.Barrier(ctx)
		}
	}
	s.rt.ForgetClosed(s.id)
	wait()
	if err != nil && clientrt.IsClosed(err) {
		return nil
	}
	return err
}

// WakeStats returns the counters of this subscriber's wake-up channel:
// futex sleeps it made and wake calls its publishers made for it.
func (s *Subscriber) WakeStats() ringbuf.NotifierStats { return s.own.Load().wakeStats() }
